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
		zf := &zstdFrames{r: r}
		d, err := zstd.NewReader(zf,
			zstd.WithDecoderConcurrency(concurrency),
			zstd.WithDecoderMaxWindow(MaxDecoderWindow),
			zstd.WithDecoderMaxMemory(MaxDecoderMemory),
			zstd.WithDecoderLowmem(concurrency == 1))
		if err != nil {
			return nil, errorf(ErrCompression, "zstd: %v", err)
		}
		return &decodeErrReader{r: d, close: func() error { d.Close(); return nil }, cause: func() error { return zf.err }}, nil
	case Gzip:
		br, ok := r.(*bufio.Reader)
		if !ok {
			br = bufio.NewReader(r)
		}
		g, err := gzip.NewReader(br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errorf(ErrCompression, "gzip: truncated header")
			}
			return nil, errorf(ErrCompression, "gzip: %v", err)
		}
		gm := &gzipMembers{g: g, r: br}
		if err := gm.checkHeader(); err != nil {
			return nil, err
		}
		return &decodeErrReader{r: gm, close: g.Close}, nil
	}
	return io.NopCloser(r), nil
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

// zstdFrames passes a zstd stream through to the decoder, following its
// frame and block headers, and fails on a skippable frame: the decoder
// skips those silently, so bytes that no digest covers could ride along
// before, between or after the archive's frames. The one exception is the
// manifest's padding (FORMAT.md rule 3): right after the first frame, one
// skippable frame of magic 0x184D2A50 and at most MaxManifestPad zero
// bytes. Anything else it does not understand it passes on for the
// decoder to reject.
type zstdFrames struct {
	r        io.Reader
	off      int64  // stream offset of the next byte
	skip     int64  // block content (or checksum) bytes still to pass
	hdr      []byte // header bytes gathered so far
	state    int
	fhdRest  int   // frame header bytes after the descriptor
	checksum bool  // the current frame ends with a checksum
	frames   int   // frames begun so far
	padded   bool  // the manifest's padding was seen
	padAt    int64 // where it begins
	zeros    int64
	err      error
}

const (
	zfMagic   = iota // gathering a frame's 4 magic bytes
	zfFHD            // its frame header descriptor
	zfFHDRest        // the rest of its frame header
	zfBlock          // a 3-byte block header
	zfPadSize        // the 4-byte size of the manifest's padding
	zfZeros          // its content
	zfPass           // not understood: pass everything on
)

func (z *zstdFrames) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	n, err := z.r.Read(p)
	if serr := z.scan(p[:n]); serr != nil {
		z.err = serr
		return n, serr
	}
	return n, err
}

func (z *zstdFrames) need() int {
	switch z.state {
	case zfMagic:
		return 4
	case zfFHD:
		return 1
	case zfFHDRest:
		return z.fhdRest
	case zfPadSize:
		return 4
	}
	return 3
}

func (z *zstdFrames) scan(b []byte) error {
	for len(b) > 0 {
		if z.state == zfPass {
			return nil
		}
		if z.state == zfZeros {
			k := min(int64(len(b)), z.zeros)
			if !allZero(b[:k]) {
				return errorf(ErrCompression, "skippable zstd frame at byte %d: data outside the archive (the manifest's padding holds zeros only)", z.padAt)
			}
			z.zeros -= k
			z.off += k
			b = b[k:]
			if z.zeros == 0 {
				z.state = zfMagic
			}
			continue
		}
		if z.skip > 0 {
			k := min(int64(len(b)), z.skip)
			z.skip -= k
			z.off += k
			b = b[k:]
			continue
		}
		need := z.need()
		k := min(need-len(z.hdr), len(b))
		z.hdr = append(z.hdr, b[:k]...)
		z.off += int64(k)
		b = b[k:]
		if len(z.hdr) < need {
			return nil
		}
		h := z.hdr
		z.hdr = z.hdr[:0]
		switch z.state {
		case zfMagic:
			m := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16 | uint32(h[3])<<24
			switch {
			case m == 0x184d2a50 && z.frames == 1 && !z.padded:
				z.state, z.padded, z.padAt = zfPadSize, true, z.off-4
			case m&0xfffffff0 == 0x184d2a50:
				return errorf(ErrCompression, "skippable zstd frame at byte %d: data outside the archive", z.off-4)
			case m == 0xfd2fb528:
				z.state = zfFHD
				z.frames++
			default:
				z.state = zfPass
			}
		case zfFHD:
			fhd := h[0]
			single := fhd&0x20 != 0
			z.checksum = fhd&0x04 != 0
			n := [4]int{0, 1, 2, 4}[fhd&3] + [4]int{0, 2, 4, 8}[fhd>>6]
			if !single {
				n++ // window descriptor
			} else if fhd>>6 == 0 {
				n++ // one-byte content size
			}
			z.fhdRest, z.state = n, zfBlock
			if n > 0 {
				z.state = zfFHDRest
			}
		case zfFHDRest:
			z.state = zfBlock
		case zfPadSize:
			n := int64(h[0]) | int64(h[1])<<8 | int64(h[2])<<16 | int64(h[3])<<24
			if n > MaxManifestPad {
				return errorf(ErrCompression, "skippable zstd frame at byte %d: %d bytes, more than the manifest's padding may have (%d)", z.padAt, n, MaxManifestPad)
			}
			z.zeros, z.state = n, zfZeros
			if n == 0 {
				z.state = zfMagic
			}
		case zfBlock:
			bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
			switch (bh >> 1) & 3 {
			case 1: // RLE: one byte
				z.skip = 1
			case 3: // reserved: the decoder rejects it
				z.state = zfPass
				continue
			default:
				z.skip = int64(bh >> 3)
			}
			if bh&1 != 0 { // last block
				if z.checksum {
					z.skip += 4
				}
				z.state = zfMagic
			}
		}
	}
	return nil
}

// gzipMembers reads a gzip stream member by member (a Writer writes one
// for the manifest and one per frame of the rest) to check every member's header: an extra
// field or a comment would carry bytes that no digest covers, and the
// gzip reader's multistream mode skips the headers after the first
// unseen.
type gzipMembers struct {
	g *gzip.Reader
	r *bufio.Reader
}

func (m *gzipMembers) checkHeader() error {
	if len(m.g.Extra) > 0 || m.g.Comment != "" {
		return errorf(ErrCompression, "gzip member with an extra field or a comment: data outside the archive")
	}
	m.g.Multistream(false)
	return nil
}

func (m *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := m.g.Read(p)
		if !errors.Is(err, io.EOF) {
			return n, err
		}
		// The member ended and its checksum matched; is there another?
		if _, perr := m.r.Peek(1); errors.Is(perr, io.EOF) {
			return n, io.EOF
		}
		if err := m.g.Reset(m.r); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if err := m.checkHeader(); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
