package incremental

import "errors"

// Sentinel errors. Errors returned by the package wrap one of them (or an
// error of the os or criuimg packages) and name the image directory.
var (
	// ErrImage reports an image set that cannot be deduplicated or read:
	// a pagemap that criuimg rejects, entries that are not page-aligned,
	// sorted and disjoint, or a pages file whose size disagrees with its
	// pagemap.
	ErrImage = errors.New("incremental: invalid image set")
	// ErrTooLarge reports an image over one of the package's limits
	// ([MaxPagemapSize], [MaxMetadataSize]).
	ErrTooLarge = errors.New("incremental: image too large")
	// ErrChain reports a broken parent chain: pages marked in parent with
	// no parent link, a link that does not name a directory, a cyclic
	// chain or one longer than format.MaxParentDepth.
	ErrChain = errors.New("incremental: broken parent chain")
	// ErrParentLink reports a final image set that already has a "parent"
	// entry naming another directory than the parent given to [Dedup], or a
	// link target that does not name the parent directory.
	ErrParentLink = errors.New("incremental: parent link mismatch")
)
