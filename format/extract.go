package format

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sync"

	"github.com/ckpt/ckpt/internal/fileio"
)

// ExtractOptions configure Extract. nil means the defaults of
// ReaderOptions and ImageOptions.
type ExtractOptions struct {
	// Reader are the reader's limits and options.
	Reader ReaderOptions
	// Filter, when set, selects the members to write; the others are still
	// read, verified and checked.
	Filter func(h *Header) bool
	// Images configure the checks of the contents (the page size, the
	// restoring engine's mount policy); the same as Verify makes.
	Images ImageOptions
	// MaxWrite caps the bytes Extract writes below dir (the sizes of the
	// members it writes, added up); 0 means no cap beyond
	// Reader.MaxTotalSize. A v1 archive whose manifest declares more is
	// refused before anything is written, a legacy archive at the member
	// that would go over it; either with an error wrapping ErrTooLarge.
	MaxWrite int64
	// FreeSpace, when set, reports how many bytes Extract may write on
	// dir's file system (its free space, less what the caller keeps in
	// reserve). Extract calls it once, before writing anything, and
	// refuses an archive that does not fit with an error wrapping
	// ErrNoSpace: a v1 archive at once (its manifest declares every size),
	// a legacy archive at the member that would not fit.
	FreeSpace func() (int64, error)
}

// Extract reads the archive in r and writes its members below dir, which
// must exist and be empty. It writes only through an os.Root opened on
// dir: regular files are created with O_EXCL and mode 0600, directories
// with mode 0700; owners and modes in the archive are ignored. A legacy
// archive's ParentLinkName symlink is the only link created. Every member is
// verified as it is read, and the archive's contents are checked as Verify
// checks them (the same code: CRIU image sets, deleted.files, metadata
// sizes), with opts.Images; the first problem found is the error, naming
// the member, with a count of the others. On any error, including ctx's,
// what Extract wrote is removed and dir is left empty.
//
// It keeps at most MaxParsedImagesTotal bytes of CRIU metadata images and
// MaxDeletedFilesSize of deleted.files in memory, and reads the archive
// once.
//
// It returns the Reader's manifest (synthesized for legacy archives, see
// Reader.Legacy) and the reader for its Legacy and ManifestDigest.
func Extract(ctx context.Context, r io.Reader, dir string, opts *ExtractOptions) (zr *Reader, err error) {
	var o ExtractOptions
	if opts != nil {
		o = *opts
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root); err != nil {
		return nil, fmt.Errorf("extract to %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			cleanRoot(root)
		}
	}()
	zr, err = NewReader(fileio.ContextReader(ctx, r), &o.Reader)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	b, err := newWriteBudget(&o, zr, dir)
	if err != nil {
		return nil, err
	}
	cc := newContentChecker(o.Images)
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		write := o.Filter == nil || o.Filter(h)
		if write {
			if err := b.take(h); err != nil {
				return nil, err
			}
		}
		data, err := extractOne(root, zr, h, cc.want(h), cc.scan(h), write)
		if err != nil {
			return nil, &Error{Op: "extract", Member: h.Name, Err: err}
		}
		cc.member(h, data)
	}
	cc.finish(zr.Manifest(), zr.Legacy())
	if err := firstProblem("extract", cc.problems); err != nil {
		return nil, err
	}
	return zr, nil
}

// firstProblem returns nil for no problems, else the first one as an
// error of op, with the number of the others: Extract stops at a problem
// that Verify would list among others.
func firstProblem(op string, problems []error) error {
	if len(problems) == 0 {
		return nil
	}
	err := problems[0]
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Err: err}
	}
	out := &Error{Op: op, Member: e.Member, Err: e.Err}
	if n := len(problems) - 1; n > 0 {
		out.Err = fmt.Errorf("%w (and %d more problems: `ckptinspect verify` lists them)", e.Err, n)
	}
	return out
}

// writeBudget enforces ExtractOptions.MaxWrite and FreeSpace.
type writeBudget struct {
	dir     string
	limit   int64 // MaxWrite, or -1
	free    int64 // FreeSpace's answer, or -1
	written int64
}

// newWriteBudget sets up the budget and, for a v1 archive, checks the
// sizes the manifest declares before anything is written.
func newWriteBudget(o *ExtractOptions, zr *Reader, dir string) (*writeBudget, error) {
	b := &writeBudget{dir: dir, limit: -1, free: -1}
	if o.MaxWrite > 0 {
		b.limit = o.MaxWrite
	}
	if o.FreeSpace != nil {
		free, err := o.FreeSpace()
		if err != nil {
			return nil, fmt.Errorf("extract to %s: find free space: %w", dir, err)
		}
		b.free = max(free, 0)
	}
	if zr.Legacy() || b.limit < 0 && b.free < 0 {
		return b, nil
	}
	var total int64
	for _, m := range zr.Manifest().Members {
		if o.Filter == nil || o.Filter(&Header{Name: m.Name, Kind: m.Kind, Size: m.Size, Digest: m.Digest, Typeflag: tar.TypeReg}) {
			total += m.Size // at most MaxTotalSize (Reader): no overflow
		}
	}
	return b, b.check(total)
}

// take counts member h against the budget before it is written.
func (b *writeBudget) take(h *Header) error {
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	if err := b.check(b.written + h.Size); err != nil {
		return &Error{Op: "extract", Member: h.Name, Err: err}
	}
	b.written += h.Size
	return nil
}

// check refuses a total that passes the limit or the free space.
func (b *writeBudget) check(total int64) error {
	switch {
	case b.limit >= 0 && total > b.limit:
		return fmt.Errorf("%w: the archive unpacks to %d bytes or more, over the limit of %d bytes", ErrTooLarge, total, b.limit)
	case b.free >= 0 && total > b.free:
		return fmt.Errorf("%w: the archive unpacks to %d bytes or more, %s has room for %d: free space there, or extract elsewhere", ErrNoSpace, total, b.dir, b.free)
	}
	return nil
}

// extractOne writes member h below root (unless write is false) and
// returns what a contentChecker wants of it: all of it (want < 0, read
// into memory first, bounded by the checker's limits), or a prefix of want
// bytes, captured while copying; or it feeds the member to scan (non-nil)
// as it writes it.
func extractOne(root *os.Root, zr *Reader, h *Header, want int64, scan func(io.Reader), write bool) (data []byte, err error) {
	if !write {
		if scan != nil {
			scan(zr)
		}
		data, err := readWanted(zr, h, want)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, zr)
		return data, err
	}
	if d := path.Dir(h.Name); d != "." {
		if err := root.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return nil, root.MkdirAll(h.Name, 0o700)
	case tar.TypeSymlink:
		// Only checkpoint/parent -> ../pre-checkpoint gets here (Reader).
		return nil, root.Symlink(h.Linkname, h.Name)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if h.Part > 0 {
		// A further part of a member (Header.Part): appended to what
		// its earlier parts wrote; the checker has what it needs.
		flags, want, scan = os.O_WRONLY, 0, nil
	}
	f, err := root.OpenFile(h.Name, flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	var off int64
	if h.Part > 0 {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		off = fi.Size()
	}
	if want < 0 {
		if data, err = readWanted(zr, h, want); err != nil {
			return nil, err
		}
		_, err = f.Write(data)
		return data, err
	}
	pc := &prefixCapture{w: &splitWriter{f: f, off: off}, n: int(want)}
	if scan != nil {
		tr := &teeReader{r: zr, w: pc}
		scan(tr)
		if tr.err != nil {
			return nil, tr.err
		}
	}
	_, err = io.Copy(pc, zr)
	return pc.b, err
}

// teeReader is io.TeeReader that keeps the first error of either side:
// the scan that reads through it may stop at its own error, but an error
// of the member's content or of the file written comes first.
type teeReader struct {
	r   io.Reader
	w   io.Writer
	err error
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.err = werr
			return n, werr
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		t.err = err
	}
	return n, err
}

// prefixCapture passes writes to w and keeps their first n bytes.
type prefixCapture struct {
	w io.Writer
	n int
	b []byte
}

func (p *prefixCapture) Write(b []byte) (int, error) {
	if k := min(p.n-len(p.b), len(b)); k > 0 {
		p.b = append(p.b, b[:k]...)
	}
	return p.w.Write(b)
}

// splitWriter writes each buffer to f in parts, at once from as many
// goroutines as there are CPUs (up to 4). Writing to a new file is mostly
// the kernel allocating and filling page cache pages; where allocating a
// page is slow (a virtual machine whose host backs guest memory lazily:
// bench/RESULTS.md), one writer leaves the other CPUs idle.
type splitWriter struct {
	f   *os.File
	off int64
}

// splitMin is the smallest part worth a goroutine.
const splitMin = 256 << 10

func (w *splitWriter) Write(b []byte) (int, error) {
	n := min(runtime.GOMAXPROCS(0), 4, len(b)/splitMin)
	if n <= 1 {
		k, err := w.f.WriteAt(b, w.off)
		w.off += int64(k)
		return k, err
	}
	part := (len(b) + n - 1) / n
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		lo, hi := i*part, min((i+1)*part, len(b))
		wg.Go(func() { _, errs[i] = w.f.WriteAt(b[lo:hi], w.off+int64(lo)) })
	}
	_, errs[0] = w.f.WriteAt(b[:part], w.off)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	w.off += int64(len(b))
	return len(b), nil
}

func checkEmpty(root *os.Root) error {
	f, err := root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return errors.New("directory is not empty")
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// cleanRoot removes everything below root.
func cleanRoot(root *os.Root) {
	f, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, n := range names {
		root.RemoveAll(n)
	}
}
