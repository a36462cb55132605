package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// toyCodec is a compression added the way a real one would be: this file
// (its codec, reader and writer) and one registerCodec line. Its frames
// are "TOY\x01", a 4-byte length and the bytes XORed with 0x5a; its
// padding, accepted once right after the first frame, is "TOY\x02", a
// 4-byte length and that many zeros.
var toyCodec = &codec{
	name:  "toy",
	magic: []byte("TOY\x01"),
	newReader: func(r io.Reader, _ int) (io.ReadCloser, error) {
		return &decodeErrReader{r: &toyReader{r: r}, close: func() error { return nil }}, nil
	},
	newWriter: func(w io.Writer, _ int) (frameCompressor, error) { return &toyWriter{w: w}, nil },
	pad: func(b []byte, n int) []byte {
		if n == 0 {
			return b
		}
		b = binary.LittleEndian.AppendUint32(append(b, "TOY\x02"...), uint32(n-8))
		return append(b, make([]byte, n-8)...)
	},
	minPad: 8,
}

// toyWriter gathers a frame and writes it at Close.
type toyWriter struct {
	w   io.Writer
	buf []byte
}

func (t *toyWriter) Write(p []byte) (int, error) { t.buf = append(t.buf, p...); return len(p), nil }
func (t *toyWriter) Reset(w io.Writer)           { t.w, t.buf = w, t.buf[:0] }

func (t *toyWriter) Close() error {
	out := binary.LittleEndian.AppendUint32([]byte("TOY\x01"), uint32(len(t.buf)))
	for _, c := range t.buf {
		out = append(out, c^0x5a)
	}
	t.buf = t.buf[:0]
	_, err := t.w.Write(out)
	return err
}

// toyReader decodes toy frames, at most 2*frameSize bytes each.
type toyReader struct {
	r      io.Reader
	frames int
	left   int // bytes of the current frame still to decode
}

func (t *toyReader) Read(p []byte) (int, error) {
	for t.left == 0 {
		var hdr [8]byte
		if _, err := io.ReadFull(t.r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) && t.frames > 0 {
				return 0, io.EOF
			}
			return 0, io.ErrUnexpectedEOF
		}
		n := int(binary.LittleEndian.Uint32(hdr[4:]))
		switch {
		case n > 2*frameSize:
			return 0, errorf(ErrCompression, "toy frame of %d bytes", n)
		case string(hdr[:4]) == "TOY\x02" && t.frames == 1:
			zeros := make([]byte, n)
			if _, err := io.ReadFull(t.r, zeros); err != nil || !allZero(zeros) {
				return 0, errorf(ErrCompression, "toy padding is not zeros")
			}
		case string(hdr[:4]) == "TOY\x01":
			t.frames, t.left = t.frames+1, n
		default:
			return 0, errorf(ErrCompression, "not a toy frame: % x", hdr[:4])
		}
	}
	n, err := t.r.Read(p[:min(len(p), t.left)])
	for i := range p[:n] {
		p[i] ^= 0x5a
	}
	t.left -= n
	if errors.Is(err, io.EOF) && t.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// unregisterCodec undoes registerCodec.
func unregisterCodec(name Compression) {
	codecs.Lock()
	defer codecs.Unlock()
	delete(codecs.byName, name)
	codecs.names = slices.DeleteFunc(codecs.names, func(n Compression) bool { return n == name })
}

// TestToyCodec registers toyCodec and round-trips archives through it:
// ParseCompression takes its name, NewWriter (two passes) and
// NewFileWriter (one pass, the manifest's frame padded) write it cut in
// frames, and NewReader, Verify and Extract detect it by its magic and
// read it back. Not parallel: it changes the registry.
func TestToyCodec(t *testing.T) {
	registerCodec(toyCodec)
	t.Cleanup(func() { unregisterCodec("toy") })

	if c, err := ParseCompression("toy"); c != "toy" || err != nil {
		t.Fatalf(`ParseCompression("toy") = %q, %v`, c, err)
	}
	if _, err := ParseCompression("lz4"); err == nil || !strings.Contains(err.Error(), "want zstd, gzip, none or toy") {
		t.Errorf(`ParseCompression("lz4") = %v, want the toy codec listed`, err)
	}
	text := []byte(strings.Repeat("tick 42 worker=3 state=running\n", (2*frameSize+777)/31))
	members := map[string][]byte{
		ConfigName:        []byte(`{"id":"0123"}`),
		SpecName:          []byte(`{"ociVersion":"1.2.0"}`),
		"volumes/a.tar":   text,
		"volumes/b.tar":   []byte("small"),
		"rootfs-diff.tar": nil,
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "a.tar-source")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}

	var two bytes.Buffer
	w := NewWriter(&two, testHeader(), &WriterOptions{Compression: "toy"})
	one := &memFile{}
	fw := NewFileWriter(one, testHeader(), &WriterOptions{Compression: "toy"})
	for _, w := range []*Writer{w, fw} {
		for name, content := range members {
			var err error
			if name == "volumes/a.tar" {
				err = w.AddFile(name, file)
			} else {
				err = w.AddBytes(name, content)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{{"NewWriter", two.Bytes()}, {"NewFileWriter", one.b}} {
		b := tc.b
		if !bytes.HasPrefix(b, []byte("TOY\x01")) || bytes.Count(b, []byte("TOY\x01")) < 4 {
			t.Errorf("%s: %d toy frames, want the manifest's and the body's, cut every %d bytes", tc.name, bytes.Count(b, []byte("TOY\x01")), frameSize)
		}
		if padded := bytes.Contains(b, []byte("TOY\x02")); padded != (tc.name == "NewFileWriter") {
			t.Errorf("%s: padded = %v", tc.name, padded)
		}
		got, zr, err := readAll(t, b)
		if err != nil {
			t.Fatalf("%s: read = %v", tc.name, err)
		}
		if zr.Compression() != "toy" || zr.Legacy() {
			t.Errorf("%s: Compression() = %q, Legacy() = %v", tc.name, zr.Compression(), zr.Legacy())
		}
		for name, content := range members {
			if got[name] != string(content) {
				t.Errorf("%s: member %s: %d bytes, want %d", tc.name, name, len(got[name]), len(content))
			}
		}
		m, _, err := ReadManifest(bytes.NewReader(b))
		if err != nil || m.Options.Compression != "toy" {
			t.Errorf("%s: ReadManifest() = %v; options %+v", tc.name, err, m)
		}
		rep, err := Verify(bytes.NewReader(b), nil)
		if err != nil || len(rep.Problems) > 0 || rep.Compression != "toy" {
			t.Errorf("%s: Verify() = %v, problems %v, compression %q", tc.name, err, rep.Problems, rep.Compression)
		}
		out := t.TempDir()
		if _, err := Extract(context.Background(), bytes.NewReader(b), out, nil); err != nil {
			t.Fatalf("%s: Extract() = %v", tc.name, err)
		}
		if ext, err := os.ReadFile(filepath.Join(out, "volumes/a.tar")); err != nil || !bytes.Equal(ext, text) {
			t.Errorf("%s: extracted volumes/a.tar: %d bytes, %v", tc.name, len(ext), err)
		}
	}
	// The two archives differ only by the padding.
	if pad := len(one.b) - two.Len(); pad < 8 || !bytes.Equal(stripToyPad(one.b), two.Bytes()) {
		t.Errorf("NewFileWriter's archive is not NewWriter's with a padding frame (%d bytes longer)", pad)
	}
	// The codec's reader is what refuses bytes no digest covers.
	bad := append(bytes.Clone(two.Bytes()), "TOY\x02\x04\x00\x00\x00junk"...)
	if _, _, err := readAll(t, bad); !errors.Is(err, ErrCompression) {
		t.Errorf("read with a trailing toy padding = %v, want ErrCompression", err)
	}
}

// stripToyPad removes the padding frame after the first toy frame of b.
func stripToyPad(b []byte) []byte {
	first := 8 + int(binary.LittleEndian.Uint32(b[4:]))
	if !bytes.HasPrefix(b[first:], []byte("TOY\x02")) {
		return b
	}
	n := 8 + int(binary.LittleEndian.Uint32(b[first+4:]))
	return append(bytes.Clone(b[:first]), b[first+n:]...)
}
