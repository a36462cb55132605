//go:build !linux

package fileio

import (
	"context"
	"errors"
	"io"
	"os"
)

// DirectWriter is the O_DIRECT writer of direct_linux.go, which other
// systems do not have: NewDirectWriter fails there.
type DirectWriter struct{}

// NewDirectWriter fails: the caller writes through the page cache.
func NewDirectWriter(ctx context.Context, f *os.File, progress func(int64)) (*DirectWriter, error) {
	return nil, errors.ErrUnsupported
}

func (*DirectWriter) Write(p []byte) (int, error)              { return 0, errors.ErrUnsupported }
func (*DirectWriter) WriteAt(p []byte, off int64) (int, error) { return 0, errors.ErrUnsupported }
func (*DirectWriter) Written() int64                           { return 0 }
func (*DirectWriter) Finish() error                            { return errors.ErrUnsupported }
func (*DirectWriter) Release()                                 {}

// NewSequentialReader returns f itself.
func NewSequentialReader(f *os.File, size int64) (io.Reader, func()) { return f, func() {} }
