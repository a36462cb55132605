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
)

// ExtractOptions configure Extract. nil means the defaults of
// ReaderOptions.
type ExtractOptions struct {
	// Reader are the reader's limits and options.
	Reader ReaderOptions
	// Filter, when set, selects the members to write; the others are still
	// read and verified.
	Filter func(h *Header) bool
}

// Extract reads the archive in r and writes its members below dir, which
// must exist and be empty. It writes only through an os.Root opened on
// dir: regular files are created with O_EXCL and mode 0600, directories
// with mode 0700; owners and modes in the archive are ignored. A legacy
// archive's ParentLinkName symlink is the only link created. Every member is
// verified as it is read; on any error, including ctx's, what Extract wrote
// is removed and dir is left empty.
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
	zr, err = NewReader(&ctxReader{ctx: ctx, r: r}, &o.Reader)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return zr, nil
		}
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if o.Filter != nil && !o.Filter(h) {
			continue
		}
		if err := extractOne(root, zr, h); err != nil {
			return nil, &Error{Op: "extract", Member: h.Name, Err: err}
		}
	}
}

func extractOne(root *os.Root, zr *Reader, h *Header) (err error) {
	if d := path.Dir(h.Name); d != "." {
		if err := root.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return root.MkdirAll(h.Name, 0o700)
	case tar.TypeSymlink:
		// Only checkpoint/parent -> ../pre-checkpoint gets here (Reader).
		return root.Symlink(h.Linkname, h.Name)
	}
	f, err := root.OpenFile(h.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(&splitWriter{f: f}, zr)
	return err
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

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
