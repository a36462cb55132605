package inspect

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fileio"
)

// UnverifiableNote is how Verify describes a legacy archive.
const UnverifiableNote = "no manifest: contents unverifiable"

// VerifyOptions configure Verify. nil means the defaults.
type VerifyOptions struct {
	// RequireManifest makes a legacy archive a problem rather than a note.
	RequireManifest bool
	// Parents are the parent archives of an incremental checkpoint,
	// nearest first; the chain is checked with format.CheckChain.
	Parents []string
	// PageSize is the source machine's page size; 0 means 4096.
	PageSize int
}

// VerifyResult is the outcome of verifying one archive.
type VerifyResult struct {
	// Path is the archive's file name.
	Path string `json:"path"`
	// Format is "ckpt v1" or "legacy".
	Format string `json:"format"`
	// Legacy reports an archive without manifest.
	Legacy bool `json:"legacy"`
	// ManifestDigest is the digest of the stored manifest (v1 only).
	ManifestDigest string `json:"manifestDigest,omitempty"`
	// Problems lists every problem found, one line each, naming the member
	// concerned.
	Problems []string `json:"problems"`
	// Notes are remarks that are not problems (a legacy archive without
	// RequireManifest, a parent that was not checked, each stale image).
	Notes []string `json:"notes,omitempty"`
	// Stale lists the CRIU images the dump does not lead to
	// (format.Report.Stale): not checked, no problem; omitted when none.
	Stale []StaleImage `json:"stale,omitempty"`
}

// StaleImage is a CRIU image of an archive that its dump does not lead to
// (criuimg.FindStale), such as the images of a process that exited before
// podman checkpointed the container again into the same directory.
type StaleImage struct {
	// Member is the image's member name, such as
	// "checkpoint/pagemap-11.img".
	Member string `json:"member"`
	// Reason says why, such as "pid 11 is not in pstree.img".
	Reason string `json:"reason"`
}

// StaleNote starts Verify's note of each stale image; the member and the
// reason follow.
const StaleNote = "stale image, not read by CRIU:"

// OK reports whether no problem was found.
func (r *VerifyResult) OK() bool { return len(r.Problems) == 0 }

// Verify verifies the archive at name in one pass with format.Verify and
// checks its parent chain when opts.Parents are given. Problems of the
// archive are in the result; the error reports trouble (the file cannot
// be read).
func Verify(ctx context.Context, name string, opts *VerifyOptions) (*VerifyResult, error) {
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("verify archive: %w", err)
	}
	defer f.Close()
	rep, err := format.Verify(fileio.ContextReader(ctx, bufio.NewReaderSize(f, 1<<20)), &format.VerifyOptions{PageSize: o.PageSize})
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", name, err)
	}
	res := &VerifyResult{Path: name, Legacy: rep.Legacy, Problems: []string{}}
	for _, p := range rep.Problems {
		res.Problems = append(res.Problems, p.Error())
	}
	for _, s := range rep.Stale {
		res.Stale = append(res.Stale, StaleImage{Member: s.Member, Reason: s.Reason})
		res.Notes = append(res.Notes, fmt.Sprintf("%s %s: %s", StaleNote, s.Member, s.Reason))
	}
	switch {
	case rep.Legacy:
		res.Format = "legacy"
		if o.RequireManifest {
			res.Problems = append(res.Problems, UnverifiableNote)
		} else {
			res.Notes = append(res.Notes, UnverifiableNote)
		}
	case rep.Manifest != nil:
		res.Format = fmt.Sprintf("ckpt v%d", rep.Manifest.Version)
		res.ManifestDigest = string(rep.ManifestDigest)
	}
	if rep.Legacy || rep.Manifest == nil {
		return res, nil
	}
	if len(o.Parents) == 0 {
		if rep.Manifest.Parent != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("parent %s not checked: pass it with --parent", rep.Manifest.Parent.Manifest))
		}
		return res, nil
	}
	chain := []format.Link{{Manifest: rep.Manifest, Digest: rep.ManifestDigest}}
	for _, p := range o.Parents {
		l, err := readLink(p)
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("parent %s: %v", p, err))
			return res, nil
		}
		chain = append(chain, l)
	}
	if err := format.CheckChain(chain); err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	return res, nil
}

func readLink(name string) (format.Link, error) {
	f, err := os.Open(name)
	if err != nil {
		return format.Link{}, err
	}
	defer f.Close()
	m, d, err := format.ReadManifest(bufio.NewReader(f))
	if err != nil {
		return format.Link{}, err
	}
	return format.Link{Manifest: m, Digest: d}, nil
}
