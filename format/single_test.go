package format

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// memFile is a File in memory.
type memFile struct{ b []byte }

func (f *memFile) Write(p []byte) (int, error) { f.b = append(f.b, p...); return len(p), nil }
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(f.b)) {
		return 0, errors.New("WriteAt beyond what was written")
	}
	return copy(f.b[off:], p), nil
}

// openCounter counts Opens.
type openCounter struct {
	Sizer
	opens *atomic.Int32
}

func (c openCounter) Open() (io.ReadCloser, error) { c.opens.Add(1); return c.Sizer.Open() }

// TestFileWriterSinglePass checks NewFileWriter: with every size known,
// each member is read once and the archive verifies, with the same
// manifest and members as NewWriter's two-pass archive, deterministically
// at any concurrency; gzip and a Source of unknown size fall back to two
// passes.
func TestFileWriterSinglePass(t *testing.T) {
	t.Parallel()
	members := bigMembers()
	dir := t.TempDir()
	file := filepath.Join(dir, "pages-3.img")
	if err := os.WriteFile(file, members["checkpoint/pages-1.img"][:300000], 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, c Compression, conc int, stream bool) ([]byte, int) {
		var opens atomic.Int32
		f := &memFile{}
		w := NewFileWriter(f, testHeader(), &WriterOptions{Compression: c, Concurrency: conc})
		for name, content := range members {
			if err := w.Add(name, openCounter{BytesSource(content).(Sizer), &opens}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Add("checkpoint/pages-3.img", openCounter{FileSource(file).(Sizer), &opens}); err != nil {
			t.Fatal(err)
		}
		if stream {
			if err := w.Add("checkpoint/pages-4.img", StreamSource(func(w io.Writer) error { _, err := w.Write([]byte("streamed")); return err })); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		return f.b, int(opens.Load())
	}
	for _, c := range []Compression{Zstd, None, Gzip} {
		t.Run(string(c), func(t *testing.T) {
			b1, opens := write(t, c, 1, false)
			wantOpens := len(members) + 1
			if c == Gzip {
				wantOpens *= 2
			}
			if opens != wantOpens {
				t.Errorf("%d opens of %d sources, want %d", opens, len(members)+1, wantOpens)
			}
			for _, n := range []int{2, 8} {
				if bn, _ := write(t, c, n, false); !bytes.Equal(b1, bn) {
					t.Errorf("Concurrency %d wrote other bytes than Concurrency 1", n)
				}
			}
			readBack(t, b1)
			m, _, err := ReadManifest(bytes.NewReader(b1))
			if err != nil {
				t.Fatalf("ReadManifest = %v", err)
			}
			// The same manifest as the two-pass writer's.
			var two bytes.Buffer
			w := NewWriter(&two, testHeader(), &WriterOptions{Compression: c})
			for name, content := range members {
				w.AddBytes(name, content)
			}
			w.AddFile("checkpoint/pages-3.img", file)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			m2, _, err := ReadManifest(bytes.NewReader(two.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := m.Marshal()
			mb2, _ := m2.Marshal()
			if !bytes.Equal(mb, mb2) {
				t.Errorf("single-pass manifest differs from the two-pass one:\n%s\n%s", mb, mb2)
			}
			got := readBack(t, b1)
			for name, content := range members {
				if !bytes.Equal(got[name], content) {
					t.Errorf("%s: read back %d bytes, want the %d written", name, len(got[name]), len(content))
				}
			}
			// A Source of unknown size: two passes, still verifiable.
			bs, opens := write(t, c, 2, true)
			if opens != 2*(len(members)+1) {
				t.Errorf("with a StreamSource: %d opens, want %d", opens, 2*(len(members)+1))
			}
			readBack(t, bs)
		})
	}
}

// readBack reads every member of archive b (the Reader checks each one's
// size and digest at its end) and returns their contents by name.
func readBack(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := NewReader(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("NewReader() = %v", err)
	}
	got := map[string][]byte{}
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		if got[h.Name], err = io.ReadAll(zr); err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
	}
}

// TestFileWriterSourceChanged: a file that grows between its size and its
// read fails the single pass with ErrSourceChanged.
func TestFileWriterSourceChanged(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pages-1.img")
	if err := os.WriteFile(file, []byte("1234"), 0o600); err != nil {
		t.Fatal(err)
	}
	grow := SourceFunc(func() (io.ReadCloser, error) {
		if err := os.WriteFile(file, []byte("123456789"), 0o600); err != nil {
			return nil, err
		}
		return os.Open(file)
	})
	w := NewFileWriter(&memFile{}, testHeader(), nil)
	if err := w.Add("checkpoint/pages-1.img", sizedFunc{grow, 4}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("Close() = %v, want ErrSourceChanged", err)
	}
}

type sizedFunc struct {
	SourceFunc
	n int64
}

func (s sizedFunc) Size() (int64, error) { return s.n, nil }

// TestRawZstdFrame checks stored frames against the decoder, across the
// 128 KiB block boundary.
func TestRawZstdFrame(t *testing.T) {
	for _, n := range []int{0, 1, 512, 128 << 10, 128<<10 + 1, 300000} {
		b := bytes.Repeat([]byte("x"), n)
		var f bytes.Buffer
		if err := writeRawZstdFrame(&f, b); err != nil {
			t.Fatal(err)
		}
		d, err := codecOf(Zstd).newReader(bytes.NewReader(f.Bytes()), 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(d)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%d bytes: decoded %d bytes, %v", n, len(got), err)
		}
	}
}

// TestManifestPadding: a NewFileWriter's zstd archive begins with the
// manifest's compressed frame as NewWriter writes it, then one skippable
// frame of zeros filling the reservation; the manifest is as small as
// compressed, not stored.
func TestManifestPadding(t *testing.T) {
	t.Parallel()
	members := bigMembers()
	f := &memFile{}
	w := NewFileWriter(f, testHeader(), nil)
	for name, content := range members {
		if err := w.AddBytes(name, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := w.Manifest()
	mb, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	frame, err := manifestFrame(codecOf(Zstd), 0, mb, m.Created)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(f.b, frame) {
		t.Fatalf("the archive does not begin with the manifest's compressed frame")
	}
	if len(frame) >= len(mb) {
		t.Errorf("manifest frame of %d bytes for a manifest of %d: not compressed", len(frame), len(mb))
	}
	pad := f.b[len(frame):]
	if !bytes.HasPrefix(pad, []byte{0x50, 0x2a, 0x4d, 0x18}) {
		t.Fatalf("no skippable frame after the manifest's: % x", pad[:8])
	}
	n := int(pad[4]) | int(pad[5])<<8 | int(pad[6])<<16 | int(pad[7])<<24
	if n > manifestMargin(len(frame))+len(frame)/10 || !allZero(pad[8:8+n]) {
		t.Errorf("padding of %d bytes (margin %d), zeros %v", n, manifestMargin(len(frame)), allZero(pad[8:8+n]))
	}
	if got := readBack(t, f.b); len(got) != len(members) {
		t.Errorf("read back %d members, want %d", len(got), len(members))
	}
}

// TestFitManifest: the manifest's frame fills its reservation exactly,
// with a skippable frame of at least 8 bytes or none; a frame that cannot
// fit at any level is an error, not a corrupt archive.
func TestFitManifest(t *testing.T) {
	mb := []byte(`{"version":1,"members":[]}` + strings.Repeat(" ", 300))
	mtime := time.Unix(1700000000, 0)
	frame, err := manifestFrame(codecOf(Zstd), 0, mb, mtime)
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []int{0, 8, 9, 100} {
		got, err := fitManifest(codecOf(Zstd), 0, mb, mtime, len(frame)+extra)
		if err != nil || len(got) != len(frame)+extra || !bytes.HasPrefix(got, frame) {
			t.Errorf("reservation of %d+%d: %d bytes, %v", len(frame), extra, len(got), err)
		}
	}
	// Too small for any level.
	if _, err := fitManifest(codecOf(Zstd), 0, mb, mtime, 20); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("reservation of 20 bytes: %v, want an error", err)
	}
	// None: exact, no padding possible.
	tar, _ := manifestFrame(codecOf(None), 0, mb, mtime)
	if _, err := fitManifest(codecOf(None), 0, mb, mtime, len(tar)+8); err == nil {
		t.Errorf("uncompressed manifest padded, want an error")
	}
}

// TestSetSumFunc: a sum given as a function is asked for after the
// member is copied in the single pass (before the manifest in two), gives
// the same archive as a known sum, and a wrong or failing sum fails
// Close.
func TestSetSumFunc(t *testing.T) {
	t.Parallel()
	members := bigMembers()
	sumOf := func(b []byte) Sum { s := NewSummer(); s.Write(b); return s.Sum() }
	write := func(t *testing.T, c Compression, sum func(name string, content []byte) (Sum, error)) ([]byte, error) {
		f := &memFile{}
		w := NewFileWriter(f, testHeader(), &WriterOptions{Compression: c})
		for name, content := range members {
			if err := w.AddBytes(name, content); err != nil {
				t.Fatal(err)
			}
			if name == "checkpoint/pages-1.img" {
				if err := w.SetSumFunc(name, int64(len(content)), func() (Sum, error) { return sum(name, content) }); err != nil {
					t.Fatal(err)
				}
			}
		}
		return f.b, w.Close()
	}
	for _, c := range []Compression{Zstd, Gzip} {
		plain, err := write(t, c, func(_ string, b []byte) (Sum, error) { return sumOf(b), nil })
		if err != nil {
			t.Fatalf("%s: Close = %v", c, err)
		}
		readBack(t, plain)
		for name, tc := range map[string]struct {
			sum  func(string, []byte) (Sum, error)
			want error
		}{
			"other content": {func(_ string, b []byte) (Sum, error) { return sumOf(append([]byte{'x'}, b[1:]...)), nil }, ErrSourceChanged},
			"other size":    {func(_ string, b []byte) (Sum, error) { return sumOf(b[1:]), nil }, ErrSourceChanged},
			"failed":        {func(string, []byte) (Sum, error) { return Sum{}, ErrChecksum }, ErrChecksum},
		} {
			if _, err := write(t, c, tc.sum); !errors.Is(err, tc.want) {
				t.Errorf("%s, %s: Close = %v, want %v", c, name, err, tc.want)
			}
		}
	}
	// The same manifest as with SetSum (the padding may differ: a sum
	// known up front takes part in the reservation's estimate).
	f := &memFile{}
	w := NewFileWriter(f, testHeader(), nil)
	for name, content := range members {
		w.AddBytes(name, content)
		if name == "checkpoint/pages-1.img" {
			w.SetSum(name, sumOf(content))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := write(t, Zstd, func(_ string, b []byte) (Sum, error) { return sumOf(b), nil })
	m1, d1, err1 := ReadManifest(bytes.NewReader(got))
	m2, d2, err2 := ReadManifest(bytes.NewReader(f.b))
	if err1 != nil || err2 != nil || d1 != d2 {
		t.Errorf("SetSumFunc's manifest %s (%v), SetSum's %s (%v)", d1, err1, d2, err2)
	} else if len(m1.Members) != len(members) || len(m2.Members) != len(members) {
		t.Errorf("members: %d and %d, want %d", len(m1.Members), len(m2.Members), len(members))
	}
}
