package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the outer compression of an archive.
type Compression string

// The compressions a Writer produces and a Reader detects.
const (
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
	None Compression = "none"
)

// ParseCompression returns the Compression named s ("zstd", "gzip" or
// "none"; podman's -c/--compress values). The empty string means Zstd.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case "":
		return Zstd, nil
	case Zstd, Gzip, None:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q: want zstd, gzip or none", s)
}

var (
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic  = []byte{0x1f, 0x8b}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	bzip2Magic = []byte{'B', 'Z', 'h'}
)

// detect peeks at br and returns the compression of the stream.
func detect(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, xzMagic), bytes.HasPrefix(head, bzip2Magic):
		return "", errorf(ErrCompression, "xz and bzip2 archives are not supported: recompress with zstd or gzip")
	}
	return None, nil
}

// newDecoder returns a decompressing reader of c over r. concurrency 1
// decodes synchronously, reading no further ahead than the block it needs.
func newDecoder(c Compression, r io.Reader, concurrency int) (io.ReadCloser, error) {
	switch c {
	case Zstd:
		d, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(concurrency),
			zstd.WithDecoderMaxWindow(MaxDecoderWindow),
			zstd.WithDecoderMaxMemory(MaxDecoderMemory),
			zstd.WithDecoderLowmem(concurrency == 1))
		if err != nil {
			return nil, errorf(ErrCompression, "zstd: %v", err)
		}
		return &decodeErrReader{r: d, close: func() error { d.Close(); return nil }}, nil
	case Gzip:
		g, err := gzip.NewReader(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errorf(ErrCompression, "gzip: truncated header")
			}
			return nil, errorf(ErrCompression, "gzip: %v", err)
		}
		return &decodeErrReader{r: g, close: g.Close}, nil
	}
	return io.NopCloser(r), nil
}

// decodeErrReader wraps every decoder error but io.EOF in ErrCompression,
// so a corrupt or truncated stream is reported as such and not as a
// truncated tar.
type decodeErrReader struct {
	r     io.Reader
	close func() error
	err   error
}

func (d *decodeErrReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		var se *sourceError
		if errors.As(err, &se) {
			d.err = err
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			d.err = errorf(ErrCompression, "compressed stream is truncated")
		} else {
			d.err = errorf(ErrCompression, "%v", err)
		}
		return n, d.err
	}
	return n, err
}

func (d *decodeErrReader) Close() error { return d.close() }

// sourceError marks an error of the caller's reader (I/O trouble), as
// opposed to a problem of the archive's content.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read archive: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// countingReader counts bytes read from r and marks r's errors.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &sourceError{err}
	}
	return n, err
}

// newEncoder returns a compressing writer of c over w; Close ends the
// compression frame (not w).
func newEncoder(c Compression, w io.Writer, level, concurrency int) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		lvl := zstd.SpeedDefault
		if level != 0 {
			lvl = zstd.EncoderLevelFromZstd(level)
		}
		return zstd.NewWriter(w, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(concurrency), zstd.WithZeroFrames(true))
	case Gzip:
		lvl := gzip.DefaultCompression
		if level != 0 {
			lvl = level
		}
		return gzip.NewWriterLevel(w, lvl)
	case None:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func defaultConcurrency() int {
	n := runtime.GOMAXPROCS(0)
	if n > 4 {
		n = 4
	}
	return n
}
