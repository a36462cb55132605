package format

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
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
	_, err = io.Copy(f, zr)
	return err
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
