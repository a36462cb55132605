package format

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ckpt/ckpt/format/criuimg"
)

// ImageOptions configure the checks of an archive's contents that Verify,
// Extract and CheckImageDir make. The zero value means a 4096-byte page
// size and criuimg's default mount rules.
type ImageOptions struct {
	// PageSize is the page size of the source machine for the pagemap and
	// pages consistency check; 0 means 4096.
	PageSize int
	// Mounts, when set, is the stricter mount policy the restoring engine
	// derives from the OCI spec it restores the container with
	// (criuimg.RuncMountPolicy): every mount of the container's mount
	// namespace must be one the spec declares. It applies to the images
	// CRIU restores from (checkpoint/; pre-checkpoint/ only lends them
	// pages). nil applies criuimg's host-independent default rules only.
	Mounts *criuimg.MountPolicy
	// Caps, when not zero, is the capability set the restoring engine
	// grants its containers: no thread of checkpoint/ may be restored
	// with more (criuimg.CheckOptions.Caps).
	Caps uint64
	// Namespaces are the namespace kinds (criuimg.NsPID ...) no task of
	// checkpoint/ may share with the CRIU that dumped it: CRIU would
	// restore it in its own, the host's. A restoring engine names the
	// PID, IPC, UTS and mount namespaces, and the network namespace
	// unless the user gave the container the host's. nil checks none (a
	// dump of host processes shares them all).
	Namespaces []string
	// RemoveStale makes CheckImageDir remove the stale images of the
	// directory (criuimg.FindStale), once the images CRIU reads passed
	// the checks: CRIU never reads them, and they would travel on with the
	// directory. Verify and Extract ignore it.
	RemoveStale bool
}

// StaleImage is a CRIU image of an archive that its dump does not lead to
// (criuimg.FindStale): CRIU never reads it, so it is not checked and is no
// problem.
type StaleImage struct {
	// Member is the image's member name, such as
	// "checkpoint/pagemap-11.img".
	Member string
	// Reason says why the dump does not lead to it.
	Reason string
}

// String returns "<member>: <reason>".
func (s StaleImage) String() string { return s.Member + ": " + s.Reason }

// imageFile is what the checker keeps of a CRIU image while reading.
type imageFile struct {
	size int64
	data []byte // the whole content, or the prefix criuimg.Needs asks for
}

// full reports whether f.data holds the whole image.
func (f *imageFile) full() bool { return int64(len(f.data)) == f.size }

// contentChecker judges what an archive's members hold beyond their
// digests: every CRIU image set (criuimg.CheckImages), deleted.files and
// the size of the metadata members. Verify and Extract feed it every
// member the same way, so an archive one refuses the other refuses too.
// It keeps at most MaxParsedImagesTotal bytes of images.
type contentChecker struct {
	opts          ImageOptions
	sets          map[string]map[string]*imageFile
	kept          int64
	hasParentLink bool
	problems      []error
	stale         []StaleImage
}

func newContentChecker(o ImageOptions) *contentChecker {
	if o.PageSize <= 0 {
		o.PageSize = 4096
	}
	return &contentChecker{opts: o, sets: map[string]map[string]*imageFile{}}
}

// want returns how much of member h the checker needs: -1 for all of it,
// or the length of a prefix (0: nothing). A metadata image over
// MaxParsedImageSize, or over what is left of MaxParsedImagesTotal, gets
// its header read only, and CheckImages then reports it unreadable.
func (c *contentChecker) want(h *Header) int64 {
	if h.Typeflag != tar.TypeReg {
		return 0
	}
	switch h.Kind {
	case KindImage, KindPreImage:
		return wantImage(path.Base(h.Name), h.Size, c.kept)
	}
	return 0
}

// scan returns, for a member the checker reads as a stream rather than in
// memory (deleted.files, the tmpfs contents CRIU extracts), the function
// that reads and checks it; nil for the others. The caller feeds it the member's content from the start and
// reads what it leaves.
func (c *contentChecker) scan(h *Header) func(r io.Reader) {
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	switch {
	case h.Kind == KindDeletedFiles && h.Size <= MaxDeletedFilesSize:
		return func(r io.Reader) {
			if err := scanDeleted(r, func(string) {}); err != nil && !errors.Is(err, ErrChecksum) {
				c.problem(h.Name, err)
			}
		}
	case (h.Kind == KindImage || h.Kind == KindPreImage) && criuimg.IsTmpfsImage(path.Base(h.Name)):
		// CRIU has tar extract it as root into the restored tmpfs.
		return func(r io.Reader) {
			if err := criuimg.CheckTmpfs(path.Base(h.Name), r, nil); err != nil && !errors.Is(err, ErrChecksum) {
				c.problem(h.Name, fmt.Errorf("%w: %w", ErrImage, err))
			}
		}
	}
	return nil
}

// wantImage returns how much of the image base of size bytes the image
// checks need (criuimg.Needs), when kept bytes of images are kept already.
func wantImage(base string, size, kept int64) int64 {
	n := criuimg.Needs(base)
	if n < 0 && size <= MaxParsedImageSize && kept+size <= MaxParsedImagesTotal {
		return -1
	}
	return max(n, 8)
}

// isMetadata reports whether members of kind k are read into memory by
// their users, and so bounded by MaxMetadataSize.
func isMetadata(k Kind) bool {
	switch k {
	case KindConfig, KindSpec, KindNetworkStatus, KindStats, KindCPUInfo, KindDeletedFiles:
		return true
	}
	return false
}

// member records member h, of which data holds what want asked for (less
// for a shorter member, or one whose content did not match its digest),
// and checks what can be checked of it alone.
func (c *contentChecker) member(h *Header, data []byte) {
	if h.Name == ParentLinkName {
		c.hasParentLink = true
		return
	}
	if h.Typeflag != tar.TypeReg {
		return
	}
	if isMetadata(h.Kind) && h.Size > MaxMetadataSize {
		c.problem(h.Name, errorf(ErrTooLarge, "%d bytes, more than %d", h.Size, MaxMetadataSize))
		return
	}
	switch h.Kind {
	case KindImage, KindPreImage:
		dir, base := path.Split(h.Name)
		dir = strings.TrimSuffix(dir, "/")
		if f := c.sets[dir][base]; f != nil && h.Part > 0 {
			f.size += h.Size // a further part: its content is not parsed
			return
		}
		if c.sets[dir] == nil {
			c.sets[dir] = map[string]*imageFile{}
		}
		f := &imageFile{size: h.Size, data: data}
		if f.full() && criuimg.NeedsContent(base) {
			c.kept += h.Size
		}
		c.sets[dir][base] = f
	}
}

func (c *contentChecker) problem(member string, err error) {
	c.problems = append(c.problems, &Error{Op: "verify", Member: member, Err: err})
}

// finish checks the image sets once every member was seen, and returns
// their summaries; the problems are in c.problems. m is the (complete)
// manifest.
func (c *contentChecker) finish(m *Manifest, legacy bool) []ImageSet {
	var sets []ImageSet
	for _, dir := range []string{CheckpointDir, PreCheckpointDir} {
		files, ok := c.sets[dir]
		if !ok {
			continue
		}
		// Pages marked in-parent need a parent: in the manifest (for the
		// archive's images, checkpoint/ or, for a pre-checkpoint that
		// continues a chain, pre-checkpoint/), or in a legacy archive its
		// checkpoint/parent link.
		hasParent := dir == m.ImagesDir() && m.Parent != nil || dir == CheckpointDir && c.hasParentLink
		o := c.opts
		if dir != CheckpointDir {
			// CRIU restores from checkpoint/; a pre-checkpoint only lends
			// it pages, so the restoring engine's policy is not its.
			o.Mounts, o.Caps, o.Namespaces = nil, 0, nil
		}
		set, problems, stale := checkImageSet(dir, files, hasParent, o)
		sets = append(sets, set)
		c.problems = append(c.problems, problems...)
		c.stale = append(c.stale, stale...)
	}
	if !legacy && m.Parent != nil && len(c.sets[m.ImagesDir()]) == 0 {
		c.problems = append(c.problems, &Error{Op: "verify", Err: errorf(ErrParent, "the manifest names a parent but the archive has no CRIU images")})
	}
	return sets
}

// checkImageSet checks one CRIU image directory with criuimg.CheckImages
// and summarizes it. Each problem names the member; parent problems wrap
// ErrParent, the others ErrImage. The summary counts the images of the
// dump only; the stale ones are returned apart.
func checkImageSet(dir string, files map[string]*imageFile, hasParent bool, o ImageOptions) (ImageSet, []error, []StaleImage) {
	infos := make(map[string]criuimg.Info, len(files))
	for base, f := range files {
		infos[base] = criuimg.Info{Size: f.size, Data: f.data}
	}
	rep := criuimg.CheckImages(infos, &criuimg.CheckOptions{PageSize: int64(o.PageSize), HasParent: hasParent, Mounts: o.Mounts, Caps: o.Caps, Namespaces: o.Namespaces})
	var stale []StaleImage
	isStale := map[string]bool{}
	for _, s := range rep.Stale {
		stale = append(stale, StaleImage{Member: dir + "/" + s.File, Reason: s.Reason})
		isStale[s.File] = true
	}
	set := ImageSet{Dir: dir, Files: len(files), Stale: len(isStale)}
	for base, f := range files {
		if isStale[base] {
			continue
		}
		if strings.HasPrefix(base, "pages-") && strings.HasSuffix(base, ".img") {
			set.PagesSize += f.size
		}
		if strings.HasPrefix(base, "pagemap-") && f.full() {
			if _, ents, err := criuimg.ReadPagemap(base, f.data); err == nil {
				for _, e := range ents {
					if e.Parent() {
						set.ParentPages += int64(e.NrPages)
					}
				}
			}
		}
	}
	if f := files["pstree.img"]; f != nil && f.full() {
		if ents, err := criuimg.ReadPstree(f.data); err == nil {
			set.Processes = len(ents)
		}
	}
	var problems []error
	for _, p := range rep.Problems {
		sentinel := ErrImage
		if errors.Is(p, criuimg.ErrParent) {
			sentinel = ErrParent
		}
		member := dir
		if p.File != "" {
			member += "/" + p.File
		}
		problems = append(problems, &Error{Op: "verify", Member: member, Err: fmt.Errorf("%w: %w", sentinel, p.Err)})
	}
	return set, problems, stale
}

// CheckImageDir checks the CRIU image set in the directory dir (extracted
// by Extract, or dumped by CRIU) as Verify and Extract check an archive's:
// criuimg.CheckImages with opts, reading what it needs of each regular
// file through an os.Root on dir, within MaxParsedImageSize and
// MaxParsedImagesTotal. A "parent" symbolic link in dir allows pages in a
// parent image set. An engine calls it with the mount policy of the spec it
// restores the container with, once it has generated that spec, before
// CRIU runs. Stale images (criuimg.FindStale) are not checked; with
// opts.RemoveStale they are removed once the rest passed. The error names the first problem's file and counts the
// others; it wraps ErrImage (ErrParent for pages in a missing parent).
func CheckImageDir(dir string, opts *ImageOptions) error {
	var o ImageOptions
	if opts != nil {
		o = *opts
	}
	if o.PageSize <= 0 {
		o.PageSize = 4096
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("check images: %w", err)
	}
	defer root.Close()
	files, hasParent, err := readImageDir(root)
	if err != nil {
		return fmt.Errorf("check images in %s: %w", dir, err)
	}
	_, problems, stale := checkImageSet(dir, files, hasParent, o)
	for name := range files {
		if criuimg.IsTmpfsImage(name) {
			if err := checkTmpfsFile(root, name); err != nil {
				problems = append(problems, &Error{Op: "check", Member: path.Join(dir, name), Err: err})
			}
		}
	}
	if err := firstProblem("check", problems); err != nil || !o.RemoveStale {
		return err
	}
	for _, s := range stale {
		if err := root.Remove(path.Base(s.Member)); err != nil {
			return fmt.Errorf("remove stale image: %w", err)
		}
	}
	return nil
}

// checkTmpfsFile checks the tmpfs content image name of root.
func checkTmpfsFile(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := criuimg.CheckTmpfs(name, f, nil); err != nil {
		return fmt.Errorf("%w: %w", ErrImage, err)
	}
	return nil
}

// readImageDir reads what the image checks need of the regular files of
// root, and reports whether it has a parent link.
func readImageDir(root *os.Root) (map[string]*imageFile, bool, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, false, err
	}
	names, err := d.Readdirnames(MaxMembers + 1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	if len(names) > MaxMembers {
		return nil, false, errorf(ErrTooLarge, "more than %d files", MaxMembers)
	}
	files := map[string]*imageFile{}
	hasParent := false
	var kept int64
	for _, name := range names {
		fi, err := root.Lstat(name)
		if err != nil {
			return nil, false, err
		}
		if name == "parent" && fi.Mode()&os.ModeSymlink != 0 {
			hasParent = true
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		n := wantImage(name, fi.Size(), kept)
		f := &imageFile{size: fi.Size()}
		if n != 0 {
			if f.data, err = readImageFile(root, name, fi.Size(), n); err != nil {
				return nil, false, err
			}
		}
		if n < 0 {
			kept += f.size
		}
		files[name] = f
	}
	return files, hasParent, nil
}

// readImageFile reads all of name (want < 0, size bytes at most) or its
// first want bytes.
func readImageFile(root *os.Root, name string, size, want int64) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if want < 0 {
		want = size
	}
	b, err := io.ReadAll(io.LimitReader(f, min(want, size)))
	return b, err
}
