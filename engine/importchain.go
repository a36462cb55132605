package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// stagedLevelName is the staging directory of the i-th pre-checkpoint
// (0 = the final checkpoint's parent) of a chain of n: the layout of a
// container's own chain (see precopy.go), pre-checkpoint/ for level n,
// pre-checkpoint.<n-i> below it.
func stagedLevelName(i, n int) string {
	if i == 0 {
		return format.PreCheckpointDir
	}
	return preLevelName(n - i)
}

// chainNoun describes a chain of depth pre-checkpoints for messages.
func chainNoun(depth int) string {
	if depth == 1 {
		return "a pre-checkpoint archive"
	}
	return fmt.Sprintf("a chain of %d pre-checkpoint archives", depth)
}

// previousArchive is one --import-previous archive, by its manifest.
type previousArchive struct {
	path string
	link format.Link
}

// readPrevious reads the manifest of the pre-checkpoint archive at path
// (only its first frame; of a sealed one, opened with ids, its first
// chunks) and checks that it is one.
func readPrevious(path string, ids []age.Identity) (_ previousArchive, err error) {
	f, err := os.Open(path)
	if err != nil {
		return previousArchive{}, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return previousArchive{}, err
	} else if !fi.Mode().IsRegular() {
		return previousArchive{}, fmt.Errorf("%s is not a regular file", path)
	}
	r, err := unseal(bufio.NewReader(f), ids)
	if err != nil {
		return previousArchive{}, err
	}
	m, d, err := format.ReadManifest(r)
	if errors.Is(err, format.ErrNoManifest) {
		return previousArchive{}, remedy(fmt.Errorf("%w: %s has no manifest", format.ErrParent, path), RemedyPreExport, "")
	}
	if err != nil {
		return previousArchive{}, fmt.Errorf("read %s: %w", path, err)
	}
	if m.ImagesDir() != format.PreCheckpointDir {
		return previousArchive{}, remedy(fmt.Errorf("%w: %s is not a pre-checkpoint archive", format.ErrParent, path), RemedyPreExport, "")
	}
	return previousArchive{path: path, link: format.Link{Manifest: m, Digest: d}}, nil
}

// orderPrevious orders the pre-checkpoint archives given for final by
// following the parent references from final down (nearest first), and
// checks the chain with format.CheckChain. Any archive given twice,
// missing from the chain, or not part of it is an error wrapping
// format.ErrParent that names it.
func orderPrevious(final format.Link, given []previousArchive) ([]previousArchive, error) {
	byDigest := map[format.Digest]int{}
	for i, p := range given {
		if j, dup := byDigest[p.link.Digest]; dup {
			return nil, fmt.Errorf("%w: %s and %s are the same pre-checkpoint archive: give each once", format.ErrParent, given[j].path, p.path)
		}
		byDigest[p.link.Digest] = i
	}
	var ordered []previousArchive
	used := map[int]bool{}
	for p, child := final.Manifest.Parent, "the archive"; p != nil; {
		i, ok := byDigest[p.Manifest]
		if !ok {
			return nil, remedy(fmt.Errorf("%w: %s depends on the pre-checkpoint archive with manifest %s, which is not among those given (the chain is %d deep)",
				format.ErrParent, child, p.Manifest, final.Manifest.Parent.Depth), RemedyPrevious, "")
		}
		if used[i] || len(ordered) > format.MaxParentDepth {
			return nil, fmt.Errorf("%w: %s is its own ancestor: the chain is cyclic", format.ErrParent, given[i].path)
		}
		used[i] = true
		ordered = append(ordered, given[i])
		p, child = given[i].link.Manifest.Parent, given[i].path
	}
	for i, g := range given {
		if !used[i] {
			return nil, fmt.Errorf("%w: %s is not part of the archive's chain of pre-checkpoints: leave it out", format.ErrParent, g.path)
		}
	}
	chain := []format.Link{final}
	for _, p := range ordered {
		chain = append(chain, p.link)
	}
	if err := format.CheckChain(chain); err != nil {
		return nil, err
	}
	return ordered, nil
}

// extractPrevious checks that the pre-checkpoint archives at paths form
// the chain final depends on (orderPrevious, from their manifests alone,
// before extracting anything), then verifies and extracts the images of
// each into staging in the chain layout of precopy.go, and links them:
// checkpoint/parent -> ../pre-checkpoint, and each level to the one
// below. Nothing outside staging is touched. Sealed archives are opened
// with ids (each level may be sealed or not).
func extractPrevious(ctx context.Context, paths []string, ids []age.Identity, staging string, final format.Link) error {
	var given []previousArchive
	for _, path := range paths {
		p, err := readPrevious(path, ids)
		if err != nil {
			return wrapf(err, "previous checkpoint %s", path)
		}
		given = append(given, p)
	}
	ordered, err := orderPrevious(final, given)
	if err != nil {
		return err
	}
	n := len(ordered)
	for i, p := range ordered {
		if err := extractLevel(ctx, p, ids, staging, stagedLevelName(i, n)); err != nil {
			return wrapf(err, "previous checkpoint %s", p.path)
		}
	}
	links := [][2]string{{filepath.FromSlash(format.ParentLinkName), format.ParentLinkTarget}}
	for i := 0; i+1 < n; i++ {
		links = append(links, [2]string{filepath.Join(stagedLevelName(i, n), "parent"), "../" + stagedLevelName(i+1, n)})
	}
	for _, l := range links {
		if err := os.Symlink(l[1], filepath.Join(staging, l[0])); err != nil {
			return fmt.Errorf("link pre-checkpoint images: %w", err)
		}
	}
	return nil
}

// extractLevel verifies and extracts the pre-checkpoint images of p
// (and nothing else) to staging/name, opening it with ids if sealed.
func extractLevel(ctx context.Context, p previousArchive, ids []age.Identity, staging, name string) error {
	dst := filepath.Join(staging, name)
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%w: the final archive has a %s directory", format.ErrFormat, name)
	}
	f, err := os.Open(p.path)
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.MkdirTemp(staging, ".previous-")
	if err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	defer func() { _ = fsutil.RemoveAll(tmp) }()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	sr, closeReader := fileio.NewSequentialReader(f, fi.Size())
	defer closeReader()
	r, stop, err := unsealAhead(sr, ids)
	if err != nil {
		return err
	}
	defer stop()
	zr, err := format.Extract(ctx, r, tmp, &format.ExtractOptions{
		Filter:    func(h *format.Header) bool { return strings.HasPrefix(h.Name, format.PreCheckpointDir+"/") },
		FreeSpace: stagingSpace(tmp),
	})
	if err != nil {
		return extractError(err, staging)
	}
	d := zr.ManifestDigest()
	_ = zr.Close()
	if d != p.link.Digest {
		return fmt.Errorf("%w: the archive changed while it was read (manifest %s, then %s)", format.ErrParent, p.link.Digest, d)
	}
	// The engine links the levels; a member in the way is refused.
	if _, err := os.Lstat(filepath.Join(tmp, format.PreCheckpointDir, "parent")); err == nil {
		return fmt.Errorf("%w: the archive has a member %s/parent (parent links are made by the importer)", format.ErrFormat, format.PreCheckpointDir)
	}
	if err := os.Rename(filepath.Join(tmp, format.PreCheckpointDir), dst); err != nil {
		return fmt.Errorf("stage pre-checkpoint images: %w", err)
	}
	return nil
}
