package seal

import (
	"bytes"
	"encoding/binary"
	"io"
)

// The trailer reserved for a signature (docs/FORMAT.md rule 37): after the
// age stream, TrailerIntro and the signature, then a footer of the
// trailer's length (8 bytes, big-endian) and footerMagic. A reader
// without signatures strips it, unverified, so that adding signatures
// needs no new envelope version.
const (
	TrailerIntro = "ckpt-signature/v1\n"
	footerMagic  = "ckptsig\n"
	footerLen    = 8 + len(footerMagic)
	// MaxTrailer bounds a trailer, footer excluded.
	MaxTrailer = 64 << 10
)

// hold is how many bytes trailerReader holds back: a whole trailer and
// its footer.
const hold = MaxTrailer + footerLen

// trailerReader passes r on but for a trailer at its end, which it keeps:
// it holds back the last hold bytes until r ends.
type trailerReader struct {
	r          io.Reader
	buf        []byte // buf[start:end] is read from r, not yet passed on
	start, end int
	eof        bool
	trailer    []byte
}

func newTrailerReader(r io.Reader) *trailerReader {
	return &trailerReader{r: r, buf: make([]byte, hold+1<<20)}
}

func (t *trailerReader) Read(p []byte) (int, error) {
	for {
		if n := t.end - t.start; n > hold || t.eof && n > 0 {
			if !t.eof {
				n -= hold
			}
			n = copy(p, t.buf[t.start:t.start+n])
			t.start += n
			return n, nil
		}
		if t.eof {
			return 0, io.EOF
		}
		if t.start > 0 {
			// At most hold bytes move.
			t.end = copy(t.buf, t.buf[t.start:t.end])
			t.start = 0
		}
		n, err := t.r.Read(t.buf[t.end:])
		t.end += n
		if err == io.EOF {
			t.eof = true
			t.cut()
		} else if err != nil {
			return 0, err
		}
	}
}

// cut removes a well-formed trailer from the end of what is held, once r
// ended.
func (t *trailerReader) cut() {
	b := t.buf[t.start:t.end]
	cut, ok := findTrailer(b)
	if !ok {
		return
	}
	t.trailer = bytes.Clone(b[cut : len(b)-footerLen])
	t.end = t.start + cut
}

// findTrailer returns where a well-formed trailer begins in b, the end of
// a stream, and whether b ends with one.
func findTrailer(b []byte) (int, bool) {
	if len(b) < footerLen || string(b[len(b)-len(footerMagic):]) != footerMagic {
		return 0, false
	}
	n := binary.BigEndian.Uint64(b[len(b)-footerLen:])
	if n < uint64(len(TrailerIntro)) || n > MaxTrailer || n > uint64(len(b)-footerLen) {
		return 0, false
	}
	cut := len(b) - footerLen - int(n)
	if !bytes.HasPrefix(b[cut:], []byte(TrailerIntro)) {
		return 0, false
	}
	return cut, true
}

// AppendTrailer returns the trailer of body (after TrailerIntro) with its
// footer, to append to a sealed archive.
func AppendTrailer(dst, body []byte) []byte {
	n := len(dst)
	dst = append(dst, TrailerIntro...)
	dst = append(dst, body...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(dst)-n))
	return append(dst, footerMagic...)
}
