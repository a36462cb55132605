package format

import (
	"errors"
	"fmt"
	"io"

	"github.com/ckpt/ckpt/format/criuimg"
)

// VerifyOptions configure Verify. nil means the defaults.
type VerifyOptions struct {
	// Reader are the reader's limits and options.
	Reader ReaderOptions
	// PageSize is the page size of the source machine for the pagemap and
	// pages consistency check; 0 means 4096.
	PageSize int
	// Mounts, when set, is the restoring engine's mount policy (see
	// ImageOptions.Mounts); nil applies the default mount rules.
	Mounts *criuimg.MountPolicy
}

// Report is the result of Verify: every problem found in one pass.
type Report struct {
	// Manifest is the archive's manifest; synthesized for legacy archives.
	Manifest *Manifest
	// ManifestDigest is the digest of the stored manifest; empty for legacy
	// archives.
	ManifestDigest Digest
	// Legacy reports an archive without a manifest: its contents could be
	// checked for structure but not verified against digests.
	Legacy bool
	// Compression is the archive's compression.
	Compression Compression
	// Problems lists every problem, each an *Error naming the member where
	// one is concerned.
	Problems []error
	// Images summarizes each CRIU image set (checkpoint/, pre-checkpoint/).
	Images []ImageSet
	// Stale lists the CRIU images the dump does not lead to
	// (criuimg.FindStale), sorted by member: CRIU never reads them, so
	// they are not checked and are no problem.
	Stale []StaleImage
}

// ImageSet summarizes one directory of CRIU images.
type ImageSet struct {
	// Dir is CheckpointDir or PreCheckpointDir.
	Dir string
	// Files is the number of files in the set, stale images included.
	Files int
	// Stale is the number of stale images (Report.Stale); the figures
	// below leave them out.
	Stale int
	// Processes is the number of tasks pstree.img lists.
	Processes int
	// PagesSize is the total size of the pages-*.img files.
	PagesSize int64
	// ParentPages is the number of pages the pagemaps mark as in the
	// parent.
	ParentPages int64
}

// Err returns nil when the report has no problems, otherwise an error
// with one line per problem.
func (r *Report) Err() error { return errors.Join(r.Problems...) }

// Verify reads the whole archive once and reports every problem: members
// whose size or digest differ from the manifest (named), missing and
// unlisted members, and every problem of their contents that Extract
// refuses too (the same checks, see the package documentation): CRIU
// images that are malformed or inconsistent or that a container may not
// get from an archive (criuimg.CheckImages, with opts.Mounts when set),
// pages marked in a parent that the archive does not reference, a
// deleted.files or metadata member over its limits. Structural errors that
// make further reading impossible (a corrupt tar or compressed stream, an
// insecure name, a limit exceeded) end the pass and are reported as the
// last problem.
//
// The returned error is non-nil only for trouble reading r itself (I/O);
// problems of the archive are in the Report.
func Verify(r io.Reader, opts *VerifyOptions) (*Report, error) {
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	ro := o.Reader
	ro.collect = true
	rep := &Report{}
	zr, err := NewReader(r, &ro)
	if err != nil {
		return rep, rep.fatal(err)
	}
	defer zr.Close()
	rep.Legacy, rep.Compression = zr.Legacy(), zr.Compression()
	rep.Manifest, rep.ManifestDigest = zr.Manifest(), zr.ManifestDigest()

	cc := newContentChecker(ImageOptions{PageSize: o.PageSize, Mounts: o.Mounts})
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rep.Problems = append(rep.Problems, zr.problemsSeen()...)
			return rep, rep.fatal(err)
		}
		if scan := cc.scan(h); scan != nil {
			scan(zr)
		}
		data, err := readWanted(zr, h, cc.want(h))
		if err != nil && !errors.Is(err, ErrChecksum) {
			rep.Problems = append(rep.Problems, zr.problemsSeen()...)
			return rep, rep.fatal(err)
		}
		cc.member(h, data)
	}
	rep.Problems = append(rep.Problems, zr.problemsSeen()...)
	rep.Manifest = zr.Manifest()
	rep.Images = cc.finish(rep.Manifest, rep.Legacy)
	rep.Problems = append(rep.Problems, cc.problems...)
	rep.Stale = cc.stale
	return rep, nil
}

// readWanted reads what a contentChecker wants of the current member: all
// of it (n < 0), a prefix of n bytes, or nothing. A member shorter than n
// gives what it has.
func readWanted(r io.Reader, h *Header, n int64) ([]byte, error) {
	switch {
	case n < 0:
		return io.ReadAll(io.LimitReader(r, h.Size))
	case n > 0:
		b := make([]byte, min(n, h.Size))
		k, err := io.ReadFull(r, b)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
		return b[:k], err
	}
	return nil, nil
}

// fatal records err as the report's last problem, or returns it when it is
// trouble with the source rather than a problem of the archive.
func (r *Report) fatal(err error) error {
	var se *sourceError
	if errors.As(err, &se) {
		return err
	}
	r.Problems = append(r.Problems, err)
	return nil
}

// Link is one archive of a checkpoint chain: its manifest and the digest
// of its stored manifest.
type Link struct {
	Manifest *Manifest
	Digest   Digest
}

// CheckChain checks a chain of incremental checkpoints, chain[0] the final
// checkpoint and chain[i+1] the parent of chain[i]: every parent reference
// is satisfied by the next link (manifest digest, image-set digest and
// depth), the last link has no parent, no manifest appears twice, and the
// chain is at most MaxParentDepth long. Errors wrap ErrParent.
func CheckChain(chain []Link) error {
	if len(chain) > MaxParentDepth+1 {
		return fmt.Errorf("%w: chain of %d checkpoints is longer than %d", ErrParent, len(chain), MaxParentDepth+1)
	}
	seen := map[Digest]int{}
	for i, l := range chain {
		if l.Manifest == nil {
			return fmt.Errorf("%w: link %d has no manifest (legacy archives cannot be verified as parents)", ErrParent, i)
		}
		if j, dup := seen[l.Digest]; dup {
			return fmt.Errorf("%w: checkpoint %s appears twice (links %d and %d): the chain is cyclic", ErrParent, l.Digest, j, i)
		}
		seen[l.Digest] = i
		p := l.Manifest.Parent
		if p == nil {
			if i != len(chain)-1 {
				return fmt.Errorf("%w: link %d has no parent but %d more were given", ErrParent, i, len(chain)-1-i)
			}
			return nil
		}
		if i+1 >= len(chain) {
			return fmt.Errorf("%w: parent %s is missing: pass the pre-checkpoint archive (--import-previous)", ErrParent, p.Manifest)
		}
		parent := chain[i+1]
		if parent.Manifest == nil {
			return fmt.Errorf("%w: link %d has no manifest (legacy archives cannot be verified as parents)", ErrParent, i+1)
		}
		if parent.Digest != p.Manifest {
			return fmt.Errorf("%w: parent manifest is %s, the checkpoint expects %s: wrong pre-checkpoint archive", ErrParent, parent.Digest, p.Manifest)
		}
		if got := ImagesDigest(parent.Manifest.Members, parent.Manifest.ImagesDir()); got != p.Images {
			return fmt.Errorf("%w: parent images digest is %s, the checkpoint expects %s", ErrParent, got, p.Images)
		}
		want := 1
		if parent.Manifest.Parent != nil {
			want = parent.Manifest.Parent.Depth + 1
		}
		if p.Depth != want {
			return fmt.Errorf("%w: parent depth %d, the chain gives %d", ErrParent, p.Depth, want)
		}
	}
	return nil
}

// ImagesDir returns the directory holding the archive's CRIU images:
// PreCheckpointDir for a pre-checkpoint archive, else CheckpointDir.
func (m *Manifest) ImagesDir() string {
	for _, e := range m.Members {
		if e.Kind == KindImage {
			return CheckpointDir
		}
	}
	for _, e := range m.Members {
		if e.Kind == KindPreImage {
			return PreCheckpointDir
		}
	}
	return CheckpointDir
}
