package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
)

// Compression is the outer compression of an archive: Zstd (the
// default), Gzip or None.
type Compression string

// A codec is one outer compression: how a Reader recognizes and
// decompresses it and how a Writer compresses the manifest's frame and
// the body's frames. Each has a file of its own (codec_zstd.go,
// codec_gzip.go, codec_none.go) and one line in the init below; the rest
// of the package names no compression but the default, Zstd.
type codec struct {
	// name is what -c/--compress takes, what the manifest's options
	// record and what Reader.Compression reports.
	name Compression
	// magic is how a stream of the codec begins, what a Reader detects it
	// by. Exactly one codec has none: the uncompressed tar, what a stream
	// that matches no magic is.
	magic []byte
	// newReader returns a decompressing reader of r, the stream from its
	// magic on. It enforces the decoder's limits (memory, window) and
	// refuses bytes that no digest covers (skippable frames, comments,
	// extra fields), with errors wrapping ErrCompression (decodeErrReader);
	// concurrency 1 decodes synchronously, reading no further ahead than
	// the block it needs (ReadManifest).
	newReader func(r io.Reader, concurrency int) (io.ReadCloser, error)
	// newWriter returns a compressing writer over w at level (0: the
	// codec's default) whose Close ends a frame (not w) and whose Reset
	// starts the next one as a new writer would. nil: the tar stream is
	// written as it is, in no frames.
	newWriter func(w io.Writer, level int) (frameCompressor, error)
	// A frame that samples say would not compress is stored, by
	// writeStored or by a storer from newStorer; a codec with neither
	// compresses it like the others.
	//
	// writeStored writes p to w as one frame of stored blocks, straight
	// from p, in the goroutine that writes the frames out in order.
	writeStored func(w io.Writer, p []byte) error
	// newStorer returns a writer of frames of stored blocks, used like
	// newWriter's by the compressing goroutines.
	newStorer func() (frameCompressor, error)
	// pad, if not nil, appends n bytes (n >= minPad) that the codec's
	// reader skips right after the first frame: what lets a NewFileWriter
	// reserve room for the manifest's frame and write it last (FORMAT.md
	// rule 3). A codec without it and with a newWriter has archives that
	// are written in two passes.
	pad    func(b []byte, n int) []byte
	minPad int
	// fitLevels are the levels a NewFileWriter tries, after the one asked
	// for, when the manifest's frame does not fit its reservation.
	fitLevels []int
}

// singlePass reports whether a NewFileWriter can write an archive of c
// reading each member once: the manifest's frame then fits room reserved
// for it, exactly (no compression) or padded.
func (c *codec) singlePass() bool { return c.newWriter == nil || c.pad != nil }

// frameCompressor compresses one frame at a time: Close ends the frame,
// Reset(w) starts the next into w.
type frameCompressor interface {
	io.WriteCloser
	Reset(io.Writer)
}

func init() {
	registerCodec(zstdCodec)
	registerCodec(gzipCodec)
	registerCodec(noneCodec)
}

// codecs is the registry: every codec by name, and the names in the
// order they were registered (the order ParseCompression lists them in).
var codecs struct {
	sync.RWMutex
	byName map[Compression]*codec
	names  []Compression
}

// registerCodec adds c to the codecs. It panics on a name or magic that
// clashes with a registered codec's (one a prefix of the other), or on a
// second codec without magic.
func registerCodec(c *codec) {
	codecs.Lock()
	defer codecs.Unlock()
	if c.name == "" || c.newReader == nil || c.pad != nil && c.minPad <= 0 {
		panic(fmt.Sprintf("format: codec %q is incomplete", c.name))
	}
	for _, o := range codecs.byName {
		if o.name == c.name || (len(o.magic) == 0) == (len(c.magic) == 0) && (bytes.HasPrefix(o.magic, c.magic) || bytes.HasPrefix(c.magic, o.magic)) {
			panic(fmt.Sprintf("format: codec %q clashes with %q", c.name, o.name))
		}
	}
	if codecs.byName == nil {
		codecs.byName = map[Compression]*codec{}
	}
	codecs.byName[c.name] = c
	codecs.names = append(codecs.names, c.name)
}

// codecOf returns the codec called c, nil if there is none.
func codecOf(c Compression) *codec {
	codecs.RLock()
	defer codecs.RUnlock()
	return codecs.byName[c]
}

// ParseCompression returns the Compression named s ("zstd", "gzip" or
// "none"; podman's -c/--compress values). The empty string means Zstd.
func ParseCompression(s string) (Compression, error) {
	if s == "" {
		return Zstd, nil
	}
	if codecOf(Compression(s)) != nil {
		return Compression(s), nil
	}
	return "", fmt.Errorf("unknown compression %q: want %s", s, compressionNames())
}

// compressionNames lists the registered compressions in words: "zstd,
// gzip or none".
func compressionNames() string {
	codecs.RLock()
	defer codecs.RUnlock()
	var s []string
	for _, c := range codecs.names {
		s = append(s, string(c))
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

var (
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	bzip2Magic = []byte{'B', 'Z', 'h'}
)

// detect peeks at br and returns the codec of the stream: the one whose
// magic it starts with, or the one without magic.
func detect(br *bufio.Reader) (*codec, error) {
	codecs.RLock()
	defer codecs.RUnlock()
	n := len(xzMagic)
	for _, c := range codecs.byName {
		n = max(n, len(c.magic))
	}
	head, err := br.Peek(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var plain *codec
	for _, name := range codecs.names {
		c := codecs.byName[name]
		switch {
		case len(c.magic) == 0:
			plain = c
		case bytes.HasPrefix(head, c.magic):
			return c, nil
		}
	}
	if bytes.HasPrefix(head, xzMagic) || bytes.HasPrefix(head, bzip2Magic) {
		return nil, errorf(ErrCompression, "xz and bzip2 archives are not supported: recompress with zstd or gzip")
	}
	return plain, nil
}

// decodeErrReader wraps every decoder error but io.EOF in ErrCompression,
// so a corrupt or truncated stream is reported as such and not as a
// truncated tar.
type decodeErrReader struct {
	r     io.Reader
	close func() error
	// cause, if set, returns what the source found wrong, which the
	// decoder may have reported as something else (a truncated frame).
	cause func() error
	err   error
}

func (d *decodeErrReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		var se *sourceError
		if d.cause != nil && d.cause() != nil {
			d.err = d.cause()
		} else if errors.As(err, &se) || errors.Is(err, ErrCompression) {
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

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func defaultConcurrency() int {
	n := runtime.GOMAXPROCS(0)
	if n > 4 {
		n = 4
	}
	return n
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
