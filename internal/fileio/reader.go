package fileio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ContextReader returns a reader of r that returns ctx's error once ctx
// is done, so that a copy from it stops between two reads.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

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

// ReadBounded's errors, matched with errors.Is; their messages leave the
// caller room to wrap its own sentinel as well.
var (
	// ErrTooLarge reports a file of more bytes than the limit.
	ErrTooLarge = errors.New("file too large")
	// ErrNotRegular reports a file that is not a regular file.
	ErrNotRegular = errors.New("not a regular file")
)

// ReadBounded reads the regular file name, refusing one of more than
// limit bytes (ErrTooLarge) or not regular (ErrNotRegular). It reads at
// most limit+1 bytes, also of a file that grows meanwhile.
func ReadBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &kindError{fmt.Sprintf("read %s: not a regular file", name), ErrNotRegular}
	}
	if fi.Size() > limit {
		return nil, &kindError{fmt.Sprintf("read %s: %d bytes, more than %d", name, fi.Size(), limit), ErrTooLarge}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &kindError{fmt.Sprintf("read %s: more than %d bytes", name, limit), ErrTooLarge}
	}
	return b, nil
}

// kindError is an error of kind (a sentinel) whose message does not
// repeat the sentinel's.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// ReadTail returns at most the last n bytes of the file name: the end of
// a log, however long it grew.
func ReadTail(name string, n int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-n, 0)
	return io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
}
