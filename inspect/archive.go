package inspect

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	"github.com/ckpt/ckpt/internal/fileio"
)

// MaxSmallFile is the largest top-level member (config.dump, spec.dump,
// network.status, deleted.files, stats-dump, CRI-O's bind.mounts,
// containerd's status files) the inspector reads into memory: the limit
// format.Verify and format.Extract apply to such members
// (format.MaxMetadataSize).
const MaxSmallFile = format.MaxMetadataSize

// MaxTarEntries bounds the entries listed from one inner tar
// (rootfs-diff.tar, volumes/*.tar): format.MaxInnerEntries, the limit the
// engine applies them with.
const MaxTarEntries = format.MaxInnerEntries

// LoadOptions select what Load keeps of an archive. The zero value keeps
// the manifest, member list and small metadata files only.
type LoadOptions struct {
	// Images keeps the CRIU metadata images (pstree, core, mm, pagemap,
	// ids, fdinfo, files, fs) in memory, each at most [MaxImageSize], all at
	// most [MaxImagesTotal].
	Images bool
	// Pages copies the pages images to a private temporary directory
	// (mode 0700, removed by [Archive.Close]) for reading memory contents.
	Pages bool
	// Args keeps only the pages holding the processes' command lines and
	// environments, captured while streaming, when the pagemap and mm
	// images come before the pages (always in v1 archives, whose members
	// are sorted); otherwise it behaves like Pages.
	Args bool
	// Tars lists the entries of rootfs-diff.tar and volumes/*.tar with a
	// sha256 of each regular file's content, streaming (nothing stored).
	Tars bool
	// TempDir is where the private temporary directory is created; empty
	// means os.TempDir().
	TempDir string
	// Parents are the parent archives of an incremental checkpoint,
	// nearest first. Load checks the chain with format.CheckChain from
	// their manifests (errors wrap format.ErrParent); when Pages or Args
	// is set it then reads each once, keeping its images and pages, so
	// that memory marked in parent (PE_PARENT) is read from the parents
	// by address. Without them such memory is reported as
	// [ErrParentNotGiven].
	Parents []string
}

// Archive is what Load read of an archive in one pass. Call Close to
// remove its temporary files.
type Archive struct {
	// Path is the file the archive was read from.
	Path string
	// Manifest is the archive's manifest; synthesized for legacy archives.
	Manifest *format.Manifest
	// ManifestDigest is the digest of the stored manifest; empty for legacy
	// archives.
	ManifestDigest format.Digest
	// Legacy reports an archive without manifest (podman, CRI-O,
	// containerd).
	Legacy bool
	// Compression is the archive's outer compression.
	Compression format.Compression
	// Meta holds the small top-level members by name.
	Meta map[string][]byte
	// MetaTimes holds the tar header time of each member of Meta; in a
	// legacy archive config.dump's tells when the checkpoint was taken.
	MetaTimes map[string]time.Time
	// ImageDir is the member directory the CRIU images were read from
	// (checkpoint or pre-checkpoint).
	ImageDir string
	// Images holds the CRIU metadata images of ImageDir by base name.
	Images map[string][]byte
	// ImageSizes holds the size of every file of ImageDir by base name.
	ImageSizes map[string]int64
	// HasParentLink reports a legacy checkpoint/parent link.
	HasParentLink bool
	// Args keeps only the pages holding the processes' command lines and
	// environments, captured while streaming, when the pagemap and mm
	// images come before the pages (always in v1 archives, whose members
	// are sorted); otherwise it behaves like Pages.
	Args bool
	// Tars lists the entries of each inner tar by member name.
	Tars map[string][]TarEntry
	// Parent is the loaded parent archive (LoadOptions.Parents), whose own
	// Parent is the next one; nil when none was given.
	Parent *Archive

	// Stale lists the images of ImageDir the dump does not lead to
	// (criuimg.FindStale), found when Load kept the images: they are
	// dropped from Images, ImageSizes and the pages, so no reader sees
	// them.
	Stale []criuimg.Stale

	pages  map[string]string       // base name -> temporary file
	sparse map[string]*sparsePages // base name -> captured segments
	stale  map[string]string       // base name -> why it is stale
	tmp    string
}

// TarEntry is one entry of an inner tar.
type TarEntry struct {
	// Name is the entry's cleaned path.
	Name string `json:"name"`
	// Type is "file", "dir", "symlink", "hardlink", "whiteout" or "other".
	Type string `json:"type"`
	// Size is the content size of a regular file.
	Size int64 `json:"size"`
	// Mode is the permission bits.
	Mode int64 `json:"mode"`
	// Link is the target of a link.
	Link string `json:"link,omitempty"`
	// Digest is "sha256:<hex>" of a regular file's content.
	Digest string `json:"digest,omitempty"`
}

// Close removes the archive's temporary files.
func (a *Archive) Close() error {
	if a == nil {
		return nil
	}
	var err error
	if a.Parent != nil {
		err = a.Parent.Close()
		a.Parent = nil
	}
	if a.tmp == "" {
		return err
	}
	if e := os.RemoveAll(a.tmp); err == nil {
		err = e
	}
	a.tmp = ""
	return err
}

// loadParents checks the chain of a and its parent archives names
// (nearest first) with format.CheckChain, reading their manifests only,
// then loads them (each once) and links them as a.Parent.
func (a *Archive) loadParents(ctx context.Context, names []string, o LoadOptions) error {
	if a.Legacy {
		return fmt.Errorf("parent given for an archive without manifest: %w", format.ErrParent)
	}
	chain := []format.Link{{Manifest: a.Manifest, Digest: a.ManifestDigest}}
	for _, p := range names {
		l, err := readLink(p)
		if err != nil {
			return fmt.Errorf("parent %s: %w", p, err)
		}
		chain = append(chain, l)
	}
	if err := format.CheckChain(chain); err != nil {
		return err
	}
	if !o.Pages && !o.Args {
		return nil // no memory contents wanted: the check is all
	}
	po := LoadOptions{Images: true, Pages: true, TempDir: o.TempDir}
	child := a
	for i, p := range names {
		pa, err := Load(ctx, p, &po)
		if err != nil {
			return err
		}
		child.Parent = pa
		if pa.ManifestDigest != chain[i+1].Digest {
			return fmt.Errorf("parent %s changed while read: %w", p, format.ErrParent)
		}
		child = pa
	}
	return nil
}

// smallFiles are the top-level members Load keeps in memory.
var smallFiles = map[string]bool{
	format.ConfigName: true, format.SpecName: true, format.NetworkStatusName: true,
	format.DeletedFilesName: true, format.StatsName: true,
	"bind.mounts": true, "status": true, "status.dump": true,
}

// Load reads the archive at name in one pass, verifying every member as
// it goes (v1 archives), and keeps what opts selects.
func Load(ctx context.Context, name string, opts *LoadOptions) (a *Archive, err error) {
	var o LoadOptions
	if opts != nil {
		o = *opts
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load archive: %w", err)
	}
	defer f.Close()
	// arch, not the named result, is what the deferred cleanup closes:
	// "return nil, err" sets a to nil before deferred calls run.
	arch := newArchive(name)
	a = arch
	defer func() {
		if err != nil {
			arch.Close()
			a = nil
			err = fmt.Errorf("load %s: %w", name, err)
		}
	}()
	zr, err := format.NewReader(fileio.ContextReader(ctx, bufio.NewReaderSize(f, 1<<20)), nil)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	a.Legacy, a.Compression = zr.Legacy(), zr.Compression()
	a.ManifestDigest = zr.ManifestDigest()
	l := &loader{a: a, zr: zr, o: o}
	if !a.Legacy {
		l.imgDir = zr.Manifest().ImagesDir()
	}
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := l.member(ctx, h); err != nil {
			return nil, err
		}
	}
	a.ImageDir = l.imgDir
	if a.ImageDir == "" {
		a.ImageDir = format.CheckpointDir
	}
	a.Manifest = zr.Manifest()
	if o.Images {
		a.dropStale()
	}
	if len(o.Parents) > 0 {
		if err := a.loadParents(ctx, o.Parents, o); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// newArchive returns an empty Archive of the file name, ready for a loader.
func newArchive(name string) *Archive {
	return &Archive{Path: name, Meta: map[string][]byte{}, MetaTimes: map[string]time.Time{}, Images: map[string][]byte{},
		ImageSizes: map[string]int64{}, Tars: map[string][]TarEntry{}, pages: map[string]string{},
		sparse: map[string]*sparsePages{}}
}

// dropStale finds the stale images of a.ImageDir and forgets them, so
// that a pid pstree.img does not list has no memory, files or pages.
func (a *Archive) dropStale() {
	infos := make(map[string]criuimg.Info, len(a.ImageSizes))
	for name, size := range a.ImageSizes {
		infos[name] = criuimg.Info{Size: size, Data: a.Images[name]}
	}
	a.Stale = criuimg.FindStale(infos)
	a.stale = map[string]string{}
	for _, s := range a.Stale {
		a.stale[s.File] = s.Reason
		delete(a.Images, s.File)
		delete(a.ImageSizes, s.File)
		delete(a.sparse, s.File)
		if p, ok := a.pages[s.File]; ok {
			_ = os.Remove(p)
			delete(a.pages, s.File)
		}
	}
}

// loader is one Load's pass over the members of an archive.
type loader struct {
	a  *Archive
	zr *format.Reader
	o  LoadOptions
	// imgDir is the directory whose images are kept ("" until known),
	// kept the bytes of them kept in memory.
	imgDir string
	kept   int64
}

// member keeps what l.o selects of the member h, the current one of l.zr.
func (l *loader) member(ctx context.Context, h *format.Header) error {
	a, zr := l.a, l.zr
	if h.Name == format.ParentLinkName {
		a.HasParentLink = true
		return nil
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	dir, base := path.Split(h.Name)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case smallFiles[h.Name]:
		if h.Size > MaxSmallFile {
			return fmt.Errorf("read %s: %d bytes over %d", h.Name, h.Size, MaxSmallFile)
		}
		b, err := io.ReadAll(io.LimitReader(zr, h.Size))
		if err != nil {
			return err
		}
		a.Meta[h.Name] = b
		a.MetaTimes[h.Name] = h.ModTime
	case h.Kind == format.KindImage || h.Kind == format.KindPreImage:
		return l.image(h, dir, base)
	case l.o.Tars && (h.Kind == format.KindRootfsDiff || h.Kind == format.KindVolume):
		entries, err := listTar(ctx, zr)
		if err != nil {
			return fmt.Errorf("list %s: %w", h.Name, err)
		}
		a.Tars[h.Name] = entries
	}
	return nil
}

// image keeps what l.o selects of the CRIU image h, named base in dir.
func (l *loader) image(h *format.Header, dir, base string) error {
	a, zr, o := l.a, l.zr, l.o
	if l.imgDir == "" {
		l.imgDir = dir
	}
	if a.Legacy && l.imgDir == format.PreCheckpointDir && dir == format.CheckpointDir {
		// A legacy archive with both (podman --with-previous)
		// stores them in any order: the checkpoint's images win.
		l.imgDir, l.kept = dir, 0
		clear(a.Images)
		clear(a.ImageSizes)
		clear(a.pages)
		clear(a.sparse)
	}
	if dir != l.imgDir {
		return nil
	}
	a.ImageSizes[base] += h.Size // a streamed archive's pages come in parts
	switch {
	case o.Images && isMetadataImage(base):
		if h.Size > MaxImageSize || l.kept+h.Size > MaxImagesTotal {
			return fmt.Errorf("read %s: %d bytes: %w", h.Name, h.Size, ErrImage)
		}
		l.kept += h.Size
		b, err := io.ReadAll(io.LimitReader(zr, h.Size))
		if err != nil {
			return err
		}
		a.Images[base] = b
	case o.Pages && isPagesImage(base):
		return a.spill(o.TempDir, base, zr)
	case o.Args && isPagesImage(base):
		segs, ok := a.argSegments(base)
		// A stale pagemap naming the same pages image (pstree.img,
		// which tells, comes later) may point past its end.
		segs = clipSegments(segs, h.Size)
		streamed := a.Manifest != nil && a.Manifest.Version == format.StreamVersion // pages in parts
		if a.Legacy || streamed || !ok || segmentsSize(segs) > maxCapture {
			return a.spill(o.TempDir, base, zr)
		}
		sp, err := capture(zr, segs)
		if err != nil {
			return err
		}
		a.sparse[base] = sp
	}
	return nil
}

// spill copies the current member into a file of the private temporary
// directory.
func (a *Archive) spill(parent, base string, r io.Reader) (err error) {
	if a.tmp == "" {
		a.tmp, err = os.MkdirTemp(parent, "ckptinspect-")
		if err != nil {
			return err
		}
	}
	var f *os.File
	if name, ok := a.pages[base]; ok {
		// A further part of a streamed archive's pages image.
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	} else {
		f, err = os.CreateTemp(a.tmp, "pages-")
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	a.pages[base] = f.Name()
	return nil
}

// listTar lists the entries of an inner tar, gzip-compressed or not
// (containerd's rootfs-diff.tar is gzip despite its name), digesting each
// regular file.
func listTar(ctx context.Context, r io.Reader) ([]TarEntry, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		src = zr
	}
	tr := tar.NewReader(src)
	var out []TarEntry
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(out) >= MaxTarEntries {
			return nil, fmt.Errorf("more than %d entries", MaxTarEntries)
		}
		name := path.Clean("/" + h.Name)
		e := TarEntry{Name: name, Size: h.Size, Mode: h.Mode & 0o7777, Link: h.Linkname}
		switch h.Typeflag {
		case tar.TypeReg:
			e.Type = "file"
			d := sha256.New()
			if _, err := io.Copy(d, tr); err != nil {
				return nil, err
			}
			e.Digest = "sha256:" + hex.EncodeToString(d.Sum(nil))
		case tar.TypeDir:
			e.Type, e.Size = "dir", 0
		case tar.TypeSymlink:
			e.Type, e.Size = "symlink", 0
		case tar.TypeLink:
			e.Type, e.Size = "hardlink", 0
		default:
			e.Type = "other"
		}
		if strings.HasPrefix(path.Base(name), ".wh.") {
			e.Type = "whiteout"
		}
		out = append(out, e)
	}
	// Drain what follows the end blocks so the outer reader verifies it.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
