package format

import (
	"bufio"
	"errors"
	"io"

	"github.com/klauspost/compress/gzip"
)

// Gzip is gzip members.
const Gzip Compression = "gzip"

// gzipCodec is podman's other compression. Its reader checks every
// member's header (gzipMembers); its frames that would not compress are
// members of stored deflate blocks. It cannot pad, so a NewFileWriter
// writes a gzip archive in two passes.
var gzipCodec = &codec{
	name:  Gzip,
	magic: []byte{0x1f, 0x8b},
	newReader: func(r io.Reader, _ int) (io.ReadCloser, error) {
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
	},
	newWriter: func(w io.Writer, level int) (frameCompressor, error) {
		lvl := gzip.DefaultCompression
		if level != 0 {
			lvl = level
		}
		return gzip.NewWriterLevel(w, lvl)
	},
	newStorer: func() (frameCompressor, error) {
		// Stored deflate blocks (newWriter's level 0 is the default).
		return gzip.NewWriterLevel(io.Discard, gzip.NoCompression)
	},
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
