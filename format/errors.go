package format

import (
	"errors"
	"fmt"
)

var (
	// ErrFormat reports a structurally invalid archive: a bad tar stream, a
	// member of a type the format does not allow, an unlisted or missing
	// member, or trailing data.
	ErrFormat = errors.New("format: invalid archive")
	// ErrChecksum reports a member whose content does not match the size or
	// digest the manifest lists for it.
	ErrChecksum = errors.New("format: checksum mismatch")
	// ErrInsecurePath reports a member name that is not local, not clean, not
	// valid UTF-8, too long or too deep, or that collides with another name.
	ErrInsecurePath = errors.New("format: insecure path")
	// ErrTooLarge reports an archive, member or manifest over one of the
	// limits in limits.go (or the lower ones in ReaderOptions).
	ErrTooLarge = errors.New("format: too large")
	// ErrUnsupportedVersion reports an archive written by a newer major
	// version of the format than this reader knows.
	ErrUnsupportedVersion = errors.New("format: written by a newer version of ckpt")
	// ErrManifest reports a manifest that is not valid JSON, has unknown
	// fields or trailing data, or breaks one of Manifest.Validate's rules.
	ErrManifest = errors.New("format: invalid manifest")
	// ErrNoManifest reports an archive whose first member is not the
	// manifest: a legacy (podman, CRI-O, containerd) archive, or not a ckpt
	// archive at all.
	ErrNoManifest = errors.New("format: no manifest")
	// ErrNotCheckpoint reports a file that is not a checkpoint archive at
	// all; the error says what it looks like ([Sniff]).
	ErrNotCheckpoint = errors.New("format: not a checkpoint archive")
	// ErrCompression reports a compressed stream that is corrupt, truncated,
	// or needs more decoder memory than allowed.
	ErrCompression = errors.New("format: bad compression")
	// ErrParent reports a missing, mismatched, cyclic or over-deep parent
	// (pre-checkpoint) chain.
	ErrParent = errors.New("format: bad parent chain")
	// ErrImage reports a CRIU image with a wrong magic, a missing required
	// image, or pagemap and pages files that disagree.
	ErrImage = errors.New("format: bad CRIU image")
	// ErrNoSpace reports an archive that unpacks to more than the file
	// system Extract writes to has room for (ExtractOptions.FreeSpace).
	ErrNoSpace = errors.New("format: not enough space")
	// ErrWriteAfterClose is returned by Writer methods called after Close.
	ErrWriteAfterClose = errors.New("format: write after close")
	// ErrSourceChanged reports a writer source that produced different
	// bytes on its second read than on its first.
	ErrSourceChanged = errors.New("format: source changed while writing")
)

// Error locates a problem in an archive. It wraps one of the package's
// sentinel errors, so errors.Is(err, ErrChecksum) works on it.
type Error struct {
	// Op is the operation: "read", "write", "extract", "verify".
	Op string
	// Member is the archive member concerned, or empty.
	Member string
	// Err is the underlying error; it wraps a sentinel.
	Err error
}

func (e *Error) Error() string {
	if e.Member == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Member, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errorf builds an error wrapping sentinel with a formatted detail.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
