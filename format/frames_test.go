package format

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// bigMembers returns members whose body spans several frames: random
// (incompressible) and repetitive content, one member crossing frame
// boundaries.
func bigMembers() map[string][]byte {
	rng := rand.New(rand.NewPCG(7, 8))
	random := make([]byte, frameSize*2+12345)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := []byte(strings.Repeat("tick 42 worker=3 state=running\n", (frameSize+777)/31))
	return map[string][]byte{
		ConfigName:               []byte(`{"id":"0123"}`),
		"checkpoint/pages-1.img": random,
		"checkpoint/pages-2.img": text,
		"volumes/data.tar":       random[:1000],
	}
}

func writeMembers(t testing.TB, c Compression, concurrency int, members map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, testHeader(), &WriterOptions{Compression: c, Concurrency: concurrency})
	for name, content := range members {
		if err := w.AddBytes(name, content); err != nil {
			t.Fatalf("AddBytes(%q) = %v", name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return buf.Bytes()
}

// countFrames returns how many zstd frames or gzip members b holds.
func countFrames(t *testing.T, c Compression, b []byte) int {
	t.Helper()
	switch c {
	case Zstd:
		z := &zstdFrames{r: bytes.NewReader(b)}
		if _, err := io.Copy(io.Discard, z); err != nil {
			t.Fatalf("scan zstd frames: %v", err)
		}
		return z.frames
	case Gzip:
		br := bytes.NewReader(b)
		g, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			g.Multistream(false)
			if _, err := io.Copy(io.Discard, g); err != nil {
				t.Fatal(err)
			}
			n++
			if err := g.Reset(br); errors.Is(err, io.EOF) {
				return n
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	return 1
}

// TestFramesDeterministic checks that a body of several frames gives the
// same bytes whatever the Writer's concurrency, that it is cut in frames
// of frameSize, and that it reads back verified.
func TestFramesDeterministic(t *testing.T) {
	t.Parallel()
	members := bigMembers()
	var body int64
	for _, b := range members {
		body += int64(len(b))
	}
	for _, c := range []Compression{Zstd, Gzip, None} {
		t.Run(string(c), func(t *testing.T) {
			b1 := writeMembers(t, c, 1, members)
			for _, n := range []int{2, 8} {
				if bn := writeMembers(t, c, n, members); !bytes.Equal(b1, bn) {
					t.Errorf("Concurrency %d wrote %d bytes that differ from Concurrency 1's %d", n, len(bn), len(b1))
				}
			}
			if c != None {
				// The manifest's frame, then one per frameSize of the body
				// (its tar headers and padding add a little).
				want := 1 + int(body/frameSize) + 1
				if got := countFrames(t, c, b1); got != want {
					t.Errorf("archive has %d frames, want %d", got, want)
				}
			}
			for _, conc := range []int{1, 2} {
				zr, err := NewReader(bytes.NewReader(b1), &ReaderOptions{Concurrency: conc})
				if err != nil {
					t.Fatalf("NewReader() = %v", err)
				}
				got := map[string][]byte{}
				for {
					h, err := zr.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("Next() = %v", err)
					}
					if got[h.Name], err = io.ReadAll(zr); err != nil {
						t.Fatalf("read %s: %v", h.Name, err)
					}
				}
				zr.Close()
				for name, want := range members {
					if !bytes.Equal(got[name], want) {
						t.Errorf("Concurrency %d: member %s differs (%d bytes, want %d)", conc, name, len(got[name]), len(want))
					}
				}
			}
			rep, err := Verify(bytes.NewReader(b1), nil)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			for _, p := range rep.Problems {
				if !errors.Is(p, ErrImage) { // bigMembers is no real image set
					t.Errorf("Verify() problem: %v", p)
				}
			}
		})
	}
}

// countingSource counts the Opens of a Source.
type countingSource struct {
	src   Source
	opens atomic.Int32
}

func (c *countingSource) Open() (io.ReadCloser, error) {
	c.opens.Add(1)
	return c.src.Open()
}

func TestSetSum(t *testing.T) {
	t.Parallel()
	members := bigMembers()
	want := writeMembers(t, Zstd, 2, members)
	sumOf := func(b []byte) Sum {
		s := NewSummer()
		s.Write(b[:len(b)/3])
		s.Write(b[len(b)/3:])
		return s.Sum()
	}
	t.Run("match", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewWriter(&buf, testHeader(), &WriterOptions{Concurrency: 2})
		srcs := map[string]*countingSource{}
		for name, content := range members {
			srcs[name] = &countingSource{src: BytesSource(content)}
			if err := w.Add(name, srcs[name]); err != nil {
				t.Fatal(err)
			}
			if err := w.SetSum(name, sumOf(content)); err != nil {
				t.Fatalf("SetSum(%q) = %v", name, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		for name, s := range srcs {
			if n := s.opens.Load(); n != 1 {
				t.Errorf("source %s opened %d times, want 1", name, n)
			}
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("archive with sums differs from the one without")
		}
		if s := sumOf(members["checkpoint/pages-1.img"]); s.Size() != int64(len(members["checkpoint/pages-1.img"])) || s.Digest() != DigestBytes(members["checkpoint/pages-1.img"]) {
			t.Errorf("Sum = %d %s, want %d %s", s.Size(), s.Digest(), len(members["checkpoint/pages-1.img"]), DigestBytes(members["checkpoint/pages-1.img"]))
		}
	})
	for _, tc := range []struct {
		name    string
		content []byte // summed instead of the member's content
	}{
		{"other content", append([]byte{'X'}, members["checkpoint/pages-1.img"][1:]...)},
		{"shorter", members["checkpoint/pages-1.img"][1:]},
		{"longer", append(bytes.Clone(members["checkpoint/pages-1.img"]), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(io.Discard, testHeader(), nil)
			for name, content := range members {
				if err := w.AddBytes(name, content); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.SetSum("checkpoint/pages-1.img", sumOf(tc.content)); err != nil {
				t.Fatal(err)
			}
			err := w.Close()
			if !errors.Is(err, ErrSourceChanged) {
				t.Fatalf("Close() = %v, want ErrSourceChanged", err)
			}
			if err2 := w.Close(); !errors.Is(err2, ErrSourceChanged) {
				t.Errorf("second Close() = %v, want the sticky error", err2)
			}
			if m, _ := w.Manifest(); m != nil {
				t.Errorf("Manifest() = %v after a failed Close, want nil", m)
			}
		})
	}
	t.Run("misuse", func(t *testing.T) {
		w := NewWriter(io.Discard, testHeader(), nil)
		if err := w.SetSum(ConfigName, sumOf(nil)); err == nil {
			t.Errorf("SetSum(not added) = nil, want an error")
		}
		w.AddBytes(ConfigName, nil)
		if err := w.SetSum(ConfigName, Sum{}); err == nil {
			t.Errorf("SetSum(zero Sum) = nil, want an error")
		}
		if err := w.SetSum(ConfigName, sumOf(nil)); err != nil {
			t.Errorf("SetSum() = %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.SetSum(ConfigName, sumOf(nil)); !errors.Is(err, ErrWriteAfterClose) {
			t.Errorf("SetSum after Close = %v, want ErrWriteAfterClose", err)
		}
	})
}

// corruptLate returns a multi-frame archive of members compressed with c
// whose last big member has one byte changed, yet every frame is valid:
// the digest check is what must catch it.
func corruptLate(t *testing.T, c Compression, members map[string][]byte) []byte {
	t.Helper()
	plain := writeMembers(t, None, 1, members)
	text := members["checkpoint/pages-2.img"]
	plain[bytes.Index(plain, text[:64])+len(text)-1] ^= 1 // in the last frame
	manEnd := 512 + (headerSize(t, plain)+511)/512*512
	var out bytes.Buffer
	enc, err := codecOf(c).newWriter(&out, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(plain[:manEnd])
	enc.Close()
	fw := newFrameWriter(&out, codecOf(c), 0, 2)
	fw.Write(plain[manEnd:])
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countFrames(t, c, out.Bytes()); n < 4 {
		t.Fatalf("corrupt archive has %d frames, want several", n)
	}
	return out.Bytes()
}

// headerSize returns the size field of the tar header at the start of b.
func headerSize(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for _, c := range bytes.TrimRight(bytes.TrimSpace(b[124:136]), "\x00") {
		n = n*8 + int(c-'0')
	}
	return n
}

// TestExtractLateChecksum checks that a digest mismatch found late in a
// multi-frame archive, after earlier members were written, leaves the
// target empty, and that Reader and Verify name the member.
func TestExtractLateChecksum(t *testing.T) {
	t.Parallel()
	members := bigMembers()
	for _, c := range []Compression{Zstd, Gzip} {
		t.Run(string(c), func(t *testing.T) {
			b := corruptLate(t, c, members)
			dir := t.TempDir()
			_, err := Extract(context.Background(), bytes.NewReader(b), dir, nil)
			var fe *Error
			if !errors.Is(err, ErrChecksum) || !errors.As(err, &fe) || fe.Member != "checkpoint/pages-2.img" {
				t.Errorf("Extract() = %v, want ErrChecksum for checkpoint/pages-2.img", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("Extract() left %d entries", len(ents))
			}
			rep, err := Verify(bytes.NewReader(b), nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range rep.Problems {
				if errors.Is(p, ErrChecksum) && errors.As(p, &fe) && fe.Member == "checkpoint/pages-2.img" {
					found = true
				}
			}
			if !found {
				t.Errorf("Verify() problems = %v, want a checksum mismatch of checkpoint/pages-2.img", rep.Problems)
			}
		})
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

var errFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestWriteToError checks that a failing destination stops WriteTo with
// its error and that the Reader goes on verifying the member.
func TestWriteToError(t *testing.T) {
	members := bigMembers()
	b := writeMembers(t, Zstd, 2, members)
	zr, err := NewReader(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		if h.Name != "checkpoint/pages-1.img" {
			continue
		}
		n, err := io.Copy(&failWriter{n: 3 << 20}, zr)
		if !errors.Is(err, errFull) || n != 3<<20 {
			t.Errorf("io.Copy(failing writer) = %d, %v, want %d, %v", n, err, 3<<20, errFull)
		}
	}
	if m := zr.Manifest(); len(m.Members) != len(members) {
		t.Errorf("manifest lists %d members", len(m.Members))
	}
}

// TestWriterOutputError checks that an output failing in the middle of
// the body ends Close with its error, for every concurrency, and that the
// error is sticky.
func TestWriterOutputError(t *testing.T) {
	members := bigMembers()
	for _, c := range []Compression{Zstd, Gzip, None} {
		for _, conc := range []int{1, 3} {
			w := NewWriter(&failWriter{n: frameSize}, testHeader(), &WriterOptions{Compression: c, Concurrency: conc})
			for name, content := range members {
				if err := w.AddBytes(name, content); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); !errors.Is(err, errFull) {
				t.Errorf("%s, Concurrency %d: Close() = %v, want %v", c, conc, err, errFull)
			}
			if err := w.Close(); !errors.Is(err, errFull) {
				t.Errorf("%s, Concurrency %d: second Close() = %v, want %v", c, conc, err, errFull)
			}
		}
	}
}

// TestStoredFrames: a frame whose samples do not compress is written as a
// zstd frame of raw blocks (gzip: stored blocks), straight from the input;
// a frame of which an eighth compresses, or one too short to sample, is
// compressed; all decode to the input.
func TestStoredFrames(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, frameSize)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	mixed := bytes.Clone(random)
	text := strings.Repeat("counter 7 ballast text\n", frameSize/8/23+1)
	copy(mixed[frameSize/2:], text[:frameSize/8])
	// What writeRawZstdFrame begins with: magic, 0x80 (4-byte content
	// size, no checksum), 0x38 (128 KiB window).
	rawHeader := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x38}
	for _, c := range []Compression{Zstd, Gzip} {
		for _, tc := range []struct {
			name   string
			in     []byte
			stored bool
		}{{"random", random, true}, {"an eighth text", mixed, false}, {"short random", random[:probeMin-1], false}} {
			var out bytes.Buffer
			fw := newFrameWriter(&out, codecOf(c), 0, 2)
			if _, err := fw.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			if err := fw.Close(); err != nil {
				t.Fatal(err)
			}
			switch {
			case c == Zstd:
				if stored := bytes.HasPrefix(out.Bytes(), rawHeader); stored != tc.stored {
					t.Errorf("zstd %s: stored = %v, want %v", tc.name, stored, tc.stored)
				}
				if tc.stored && out.Len() != 10+len(tc.in)+3*(len(tc.in)/(128<<10)) {
					t.Errorf("zstd %s: %d bytes stored in %d, want raw blocks of 128 KiB", tc.name, len(tc.in), out.Len())
				}
			case tc.stored:
				// Stored deflate blocks: 5 bytes per 64 KiB block.
				if out.Len() > len(tc.in)+len(tc.in)/1000 {
					t.Errorf("gzip %s: %d bytes stored in %d", tc.name, len(tc.in), out.Len())
				}
			}
			if tc.name == "an eighth text" && out.Len() > len(tc.in)-len(tc.in)/10 {
				t.Errorf("%s %s: %d bytes in, %d out, want an eighth less", c, tc.name, len(tc.in), out.Len())
			}
			d, err := codecOf(c).newReader(bytes.NewReader(out.Bytes()), 1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(d)
			if err != nil || !bytes.Equal(got, tc.in) {
				t.Errorf("%s %s: decoded %d bytes, %v; want the input back", c, tc.name, len(got), err)
			}
		}
	}
}

// TestFrameWriterWritesReady checks that a frame goes out as soon as it is
// done, not when its buffer is needed again: the file's first write need
// not wait for the next frames.
func TestFrameWriterWritesReady(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	fw := newFrameWriter(&out, codecOf(Zstd), 0, 2)
	frame := bytes.Repeat([]byte("ready "), frameSize/6+1)[:frameSize]
	if _, err := fw.Write(frame); err != nil {
		t.Fatal(err)
	}
	if len(fw.inflight) > 0 {
		<-fw.inflight[0].done
	} // else it was done already, and went out at once
	// The second frame's hand-over writes out the first, done, although
	// there is room for n+1 frames in flight.
	if _, err := fw.Write(frame); err != nil {
		t.Fatal(err)
	}
	if out.Len() == 0 {
		t.Fatalf("after two frames, %d in flight: nothing out; want the first frame", len(fw.inflight))
	}
	first := out.Len()
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if out.Len() <= first {
		t.Fatalf("Close wrote nothing after the first frame")
	}
	d, err := zstd.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, append(frame, frame...)) {
		t.Fatalf("read back %d bytes (%v), want the two frames", len(got), err)
	}
}
