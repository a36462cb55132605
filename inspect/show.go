package inspect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/internal/fileio"
)

// Verified values of a [Summary].
const (
	VerifiedYes          = "yes"
	VerifiedNo           = "no"
	VerifiedUnverifiable = "unverifiable"
	VerifiedUnchecked    = "unchecked"
)

// Summary is one row of `ckptinspect show`.
type Summary struct {
	// Path is the archive's file name.
	Path string `json:"path"`
	Info
	// CheckpointSize is the size of the CRIU images; for an incremental
	// checkpoint (Parent set) the size of the delta only.
	CheckpointSize int64 `json:"checkpointSize"`
	// PagesSize is the size of the memory pages images.
	PagesSize int64 `json:"memoryPagesSize"`
	// RootfsDiffSize is the size of rootfs-diff.tar.
	RootfsDiffSize int64 `json:"rootfsDiffSize"`
	// Verified is VerifiedYes or VerifiedNo after a full verification,
	// VerifiedUnverifiable for a legacy archive and VerifiedUnchecked for a
	// v1 archive of which only the manifest was read. In an [Inspection]
	// VerifiedYes means every member was read and matched its manifest
	// digest; `verify` also checks the CRIU images.
	Verified string `json:"verified"`
	// Problems are the verification problems, when verified.
	Problems []string `json:"problems,omitempty"`
	// PreCheckpoint reports a pre-checkpoint archive (images under
	// pre-checkpoint/, manifest option preCheckpoint).
	PreCheckpoint bool `json:"preCheckpoint,omitempty"`
	// Parent is the manifest's parent reference of an incremental
	// checkpoint: the parent's manifest digest, image-set digest and
	// chain depth. Nil for a full checkpoint and for legacy archives.
	Parent *format.Parent `json:"parent,omitempty"`
	// Unknown names (by their JSON names) the fields left unset because
	// they need more of the archive read than Show reads without
	// ShowOptions.Full: the sizes of a compressed legacy archive, the
	// creation time of a v1 archive whose config.dump lies past
	// [MaxShowScan].
	Unknown []string `json:"unknown,omitempty"`

	// Signer names the key whose signature a sealed archive carries (not
	// checked by Show), or "".
	Signer string `json:"signer,omitempty"`

	note string // why Unknown: what reading them takes
}

// Note says which figures are unknown and what reading them takes, in the
// table's column names; empty when none is.
func (s *Summary) Note() string { return s.note }

// size formats n, the value of the field of JSON name field, or "-"
// when that is unknown.
func (s *Summary) size(field string, n int64) string {
	if slices.Contains(s.Unknown, field) {
		return "-"
	}
	return Size(n)
}

// chainOf fills the chain fields of s from m.
func (s *Summary) chainOf(m *format.Manifest) {
	if m == nil {
		return
	}
	s.PreCheckpoint = m.Options.PreCheckpoint
	if !s.PreCheckpoint {
		for _, e := range m.Members {
			if strings.HasPrefix(e.Name, format.PreCheckpointDir+"/") {
				s.PreCheckpoint = true
				break
			}
		}
	}
	if m.Parent != nil {
		p := *m.Parent
		s.Parent = &p
	}
}

// MaxShowScan bounds how many bytes of members Show of a v1 archive reads
// past the manifest to reach config.dump, the container's creation time:
// members are sorted, so the CRIU images, memory pages included, come
// first, and decompressing gigabytes would make show as slow as verify.
const MaxShowScan = 64 << 20

// ShowOptions configure Show.
type ShowOptions struct {
	// Verify reads and verifies the whole archive; without it a v1
	// archive's manifest is all that is read. It implies Full.
	Verify bool
	// Full reads as far as every figure needs: the whole stream of a
	// compressed legacy archive (its member sizes are in tar headers
	// spread over it), a v1 archive's members up to config.dump.
	Full bool
	// Identities open a sealed archive (not with Verify): without them
	// it is listed as sealed.
	Identities []age.Identity
}

// Show summarizes the archive at name. For a v1 archive it reads the
// manifest (a few KiB whatever the archive's size) and, for the creation
// time, streams on to config.dump when at most [MaxShowScan] bytes of
// members come before it or with opts.Full; Created stays zero
// otherwise (listed in Unknown), or when that part cannot be read
// (verification is Verify's business). A legacy archive is read as
// [showLegacy] says. A sealed archive is listed as sealed without
// opts.Identities; with them it is read as the archive inside, through
// seal.OpenAt, which decrypts only the chunks read (not with Verify).
func Show(ctx context.Context, name string, opts *ShowOptions) (*Summary, error) {
	var o ShowOptions
	if opts != nil {
		o = *opts
	}
	o.Full = o.Full || o.Verify
	s := &Summary{Path: name}
	src, err := openShown(name, &o)
	if err != nil {
		return nil, err
	}
	if src == nil {
		return s.sealed(name)
	}
	defer src.close()
	// No buffering here: the reader's own 4 KiB buffer reads only what
	// the manifest's frame needs.
	m, d, err := format.ReadManifest(src.at(0))
	if err == nil && m.Version == format.StreamVersion {
		// A streamed archive's members are in its index, at its end.
		m, err = streamedMembers(ctx, src, m, d)
	}
	switch {
	case err == nil:
		s.Info = manifestInfo(m)
		s.CheckpointSize, s.PagesSize, s.RootfsDiffSize = sizes(m)
		s.chainOf(m)
		s.Verified = VerifiedUnchecked
		if n := sizeBefore(m, format.ConfigName); o.Full || n <= MaxShowScan {
			s.Created = scanCreated(ctx, src)
		} else {
			s.Unknown = []string{"created"}
			s.note = fmt.Sprintf("CREATED needs %s of members decompressed to reach config.dump: show --full", Size(n))
		}
	case errors.Is(err, format.ErrNoManifest):
		if err := showLegacy(ctx, s, src, o.Full); err != nil {
			return nil, fmt.Errorf("show %s: %w", name, err)
		}
		s.Verified = VerifiedUnverifiable
	default:
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	if o.Verify {
		if err := s.verify(ctx, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// verify verifies the archive at name into s.
func (s *Summary) verify(ctx context.Context, name string) error {
	r, err := Verify(ctx, name, nil)
	if err != nil {
		return err
	}
	s.Problems = r.Problems
	switch {
	case len(r.Problems) > 0:
		s.Verified = VerifiedNo
	case r.Legacy:
		s.Verified = VerifiedUnverifiable
	default:
		s.Verified = VerifiedYes
	}
	return nil
}

// sealed is the row of the sealed archive name shown without a key.
func (s *Summary) sealed(name string) (*Summary, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("show archive: %w", err)
	}
	defer f.Close()
	h, _, err := seal.ReadHeader(f)
	if err != nil {
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	sum := sealedSummary(name, h)
	if fi, err := f.Stat(); err == nil {
		// The signature is outside the encryption: its key is named
		// without a key, not checked (that reads the whole file).
		if sig, _, err := seal.ReadSignature(f, fi.Size()); err == nil && sig != nil {
			sum.Signer = sig.Signer()
			sum.note += fmt.Sprintf("; signed by %s, not checked by show: verify --trust-key checks it", sum.Signer)
		}
	}
	return sum, nil
}

// shown is the archive Show reads: the file, or the plaintext of a
// sealed one, by random access.
type shown struct {
	f    *os.File
	r    io.ReaderAt
	size int64
}

// openShown opens the archive at name for Show: nil, nil for a sealed
// archive without o.Identities.
func openShown(name string, o *ShowOptions) (*shown, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("show archive: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	src := &shown{f: f, r: f, size: fi.Size()}
	head := make([]byte, len(seal.Magic))
	if n, _ := f.ReadAt(head, 0); !seal.IsSealed(head[:n]) {
		return src, nil
	}
	if len(o.Identities) == 0 {
		f.Close()
		return nil, nil
	}
	if o.Verify {
		f.Close()
		return nil, fmt.Errorf("show --verify %s: a sealed archive is verified once decrypted whole, not through Show", name)
	}
	if src.r, src.size, _, err = seal.OpenAt(f, fi.Size(), o.Identities); err != nil {
		f.Close()
		return nil, fmt.Errorf("show %s: %w", name, err)
	}
	return src, nil
}

// at returns a reader of the archive from off that also seeks and
// reads at offsets (within the archive).
func (s *shown) at(off int64) *io.SectionReader {
	r := io.NewSectionReader(s.r, 0, s.size)
	_, _ = r.Seek(off, io.SeekStart)
	return r
}

func (s *shown) close() { s.f.Close() }

// VerifiedSealed is the Verified of a sealed archive shown without its
// key.
const VerifiedSealed = "sealed"

// sealedSummary is the row of a sealed archive shown without its key:
// nothing of it is readable but the envelope, whose recipients the note
// names.
func sealedSummary(name string, h *seal.Header) *Summary {
	return &Summary{
		Path: name, Info: Info{Engine: "-", Format: "sealed"}, Verified: VerifiedSealed,
		Unknown: []string{"checkpointSize", "memoryPagesSize", "rootfsDiffSize"},
		note:    fmt.Sprintf("sealed for %s: its contents need --decrypt-key", h.Recipients()),
	}
}

// legacyNeeds are the members a legacy archive's Info is made of.
var legacyNeeds = []string{format.ConfigName, format.SpecName}

// showLegacy fills s from the legacy archive at name, reading as little
// as its layout allows: the tar headers and the members of legacyNeeds,
// nothing hashed. Member sizes are in the headers, spread over the whole
// stream: of an uncompressed file Show seeks from header to header; a
// compressed stream it stops decompressing once it has legacyNeeds
// (podman writes config.dump and spec.dump first), unless full, and then
// lists the sizes in s.Unknown.
func showLegacy(ctx context.Context, s *Summary, src *shown, full bool) error {
	ro := format.ReaderOptions{Skim: true}
	if !full {
		ro.Concurrency = 1 // no read-ahead past config.dump and spec.dump
	}
	zr, err := format.NewReader(&ctxFile{ctx: ctx, f: src.at(0)}, &ro)
	if err != nil {
		return err
	}
	defer zr.Close()
	a := newArchive(s.Path)
	defer a.Close()
	a.Legacy, a.Compression = true, zr.Compression()
	l := &loader{a: a, zr: zr}
	stop := !full && zr.Compression() != format.None
	for {
		if stop && hasAll(a.Meta, legacyNeeds) {
			s.Unknown = []string{"checkpointSize", "memoryPagesSize", "rootfsDiffSize"}
			s.note = fmt.Sprintf("CHKPT SIZE, PAGES SIZE and ROOTFS DIFF need the whole %s stream decompressed (no manifest lists the sizes): show --full", zr.Compression())
			break
		}
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := l.member(ctx, h); err != nil {
			return err
		}
	}
	a.Manifest = zr.Manifest()
	if s.Info, err = a.Info(); err != nil {
		return err
	}
	if s.Unknown == nil {
		s.CheckpointSize, s.PagesSize, s.RootfsDiffSize = sizes(a.Manifest)
	}
	return nil
}

func hasAll(m map[string][]byte, names []string) bool {
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return false
		}
	}
	return true
}

// ctxFile is a file whose reads stop when ctx is done, and that still
// seeks (format skims an uncompressed archive by seeking).
type ctxFile struct {
	ctx context.Context
	f   io.ReadSeeker
}

func (c *ctxFile) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.Read(p)
}

func (c *ctxFile) Seek(off int64, whence int) (int64, error) { return c.f.Seek(off, whence) }

// sizeBefore sums the sizes of the members listed before name.
func sizeBefore(m *format.Manifest, name string) int64 {
	var n int64
	for _, e := range m.Members {
		if e.Name >= name {
			break
		}
		n += e.Size
	}
	return n
}

// scanCreated reads the v1 archive src up to config.dump, verifying
// what it reads, and returns the creation time it records; zero when
// absent or unreadable.
func scanCreated(ctx context.Context, src *shown) time.Time {
	zr, err := format.NewReader(fileio.ContextReader(ctx, bufio.NewReaderSize(src.at(0), 1<<20)), nil)
	if err != nil {
		return time.Time{}
	}
	defer zr.Close()
	for {
		h, err := zr.Next()
		if err != nil || h.Name > format.ConfigName {
			return time.Time{}
		}
		if h.Name != format.ConfigName {
			continue
		}
		if h.Size > MaxSmallFile {
			return time.Time{}
		}
		b, err := io.ReadAll(zr) // the digest is checked at the member's end
		if err != nil {
			return time.Time{}
		}
		return ckptCreated(b)
	}
}

// streamedMembers returns the manifest m of the streamed archive src
// with its members from its index: read near its end
// (format.ReadIndexAt), or if not found there by reading the whole
// archive.
func streamedMembers(ctx context.Context, src *shown, m *format.Manifest, d format.Digest) (*format.Manifest, error) {
	if full, err := format.ReadIndexAt(src.r, src.size, m, d); err == nil {
		return full, nil
	}
	rep, err := format.Verify(fileio.ContextReader(ctx, bufio.NewReaderSize(src.at(0), 1<<20)), nil)
	if err != nil {
		return nil, err
	}
	return rep.Manifest, nil
}
