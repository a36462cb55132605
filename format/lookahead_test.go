package format

import (
	"bytes"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCRC32Combine(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {5, 4096}, {frameSize, frameSize}, {777, 123457}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := crc32.Update(0, crcTable, append(append([]byte{}, a...), b...))
		if got := crc32Combine(crc32.Update(0, crcTable, a), crc32.Update(0, crcTable, b), int64(len(b))); got != want {
			t.Errorf("%v: %08x, want %08x", n, got, want)
		}
	}
}

// framedContent is a member of many frames whose frames are random,
// text, or both (so some are stored and some compressed).
func framedContent(frames int) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	text := []byte(strings.Repeat("tick 42 worker=3 state=running\n", frameSize/31+1))
	var b []byte
	for k := range frames {
		switch k % 3 {
		case 0:
			r := make([]byte, frameSize)
			for i := range r {
				r[i] = byte(rng.Uint32())
			}
			b = append(b, r...)
		case 1:
			b = append(b, text[:frameSize]...)
		default:
			b = append(b, text[:frameSize/2]...)
			b = append(b, make([]byte, frameSize/2)...)
		}
	}
	// Not a whole number of frames, nor starting at a frame boundary.
	return append(b, text[:12345]...)
}

// TestLookahead: a member copied from a file, with its sum set, goes
// through the frame-by-frame copy and the lookahead (copyFramed); the
// archive is byte for byte the one written from the same bytes in memory
// (the pipeline through tar.Writer), with the single-pass and the
// two-pass writer; a file whose content is not what was summed fails
// with ErrSourceChanged.
func TestLookahead(t *testing.T) {
	// Not parallel: it makes every lookahead go first.
	lookaheadFirst.Store(true)
	defer lookaheadFirst.Store(false)
	inserted := lookaheadInserts.Load()
	// Smaller members first: less than a frame, and too few frames for a
	// lookahead.
	for _, frames := range []int{0, lookaheadMin - 1} {
		c := framedContent(frames)
		file := filepath.Join(t.TempDir(), "pages-1.img")
		if err := os.WriteFile(file, c, 0o600); err != nil {
			t.Fatal(err)
		}
		s := NewSummer()
		s.Write(c)
		var archives [2][]byte
		for i, src := range []Source{BytesSource(c), FileSource(file)} {
			f := &memFile{}
			w := NewFileWriter(f, testHeader(), nil)
			w.AddBytes(ConfigName, []byte(`{"id":"0123"}`))
			// The sum on both: it takes part in the manifest's
			// reservation.
			w.Add("checkpoint/pages-1.img", src)
			w.SetSum("checkpoint/pages-1.img", s.Sum())
			if err := w.Close(); err != nil {
				t.Fatalf("%d frames: %v", frames, err)
			}
			archives[i] = f.b
		}
		if !bytes.Equal(archives[0], archives[1]) {
			t.Errorf("%d frames: the archive differs from the one written from memory", frames)
		}
	}
	content := framedContent(3 * lookaheadMin)
	dir := t.TempDir()
	file := filepath.Join(dir, "pages-1.img")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewSummer()
	s.Write(content)
	sum := s.Sum()
	write := func(t *testing.T, single bool, src Source, set bool) ([]byte, error) {
		f := &memFile{}
		var w *Writer
		if single {
			w = NewFileWriter(f, testHeader(), nil)
		} else {
			w = NewWriter(f, testHeader(), nil)
		}
		w.AddBytes(ConfigName, []byte(`{"id":"0123"}`))
		w.AddBytes("checkpoint/core-1.img", []byte("core"))
		if err := w.Add("checkpoint/pages-1.img", src); err != nil {
			t.Fatal(err)
		}
		if set {
			if err := w.SetSum("checkpoint/pages-1.img", sum); err != nil {
				t.Fatal(err)
			}
		}
		return f.b, w.Close()
	}
	for _, single := range []bool{true, false} {
		for _, set := range []bool{true, false} {
			// The same sums on both sides: they take part in the
			// manifest's reservation.
			want, err := write(t, single, BytesSource(content), set)
			if err != nil {
				t.Fatal(err)
			}
			if single && set {
				readBack(t, want)
			}
			got, err := write(t, single, FileSource(file), set)
			if err != nil {
				t.Fatalf("single=%v sum=%v: %v", single, set, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("single=%v sum=%v: the archive differs from the one written from memory (%d and %d bytes)", single, set, len(got), len(want))
			}
		}
	}
	// Four passes of 11 whole frames, two in three compressible, those up
	// to lookaheadFrom the in-order pass's own.
	if n := lookaheadInserts.Load() - inserted; n < 4*3 {
		t.Errorf("%d frames inserted from the lookahead, want at least 12", n)
	}
	// The file is not what was summed: a byte in a compressed frame, a
	// byte in a stored one, one byte more, one less, frames fewer (a
	// frame's read fails while the next one's goes on).
	for name, edit := range map[string]func([]byte) []byte{
		"text frame":   func(b []byte) []byte { b[frameSize*4+100] ^= 1; return b },
		"random frame": func(b []byte) []byte { b[frameSize*3+100] ^= 1; return b },
		"longer":       func(b []byte) []byte { return append(b, 0) },
		"shorter":      func(b []byte) []byte { return b[:len(b)-1] },
		"frames fewer": func(b []byte) []byte { return b[:frameSize*6+100] },
	} {
		if err := os.WriteFile(file, edit(append([]byte{}, content...)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := write(t, true, FileSource(file), true); !errors.Is(err, ErrSourceChanged) {
			t.Errorf("%s: Close = %v, want ErrSourceChanged", name, err)
		}
	}
}
