package engine

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

// TestTailHasher: pages images written in pieces while the hasher
// follows them, and one that appears only at the end, get the sums of
// their final content; other images are left alone.
func TestTailHasher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 10))
	th := startTailHasher(dir)
	want := map[string][]byte{}
	files := map[string]*os.File{}
	for _, n := range []string{"pages-1.img", "pages-2.img"} {
		f, err := os.Create(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files[n] = f
	}
	for i := 0; i < 50; i++ {
		for n, f := range files {
			b := make([]byte, rng.IntN(300_000))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
			want[n] = append(want[n], b...)
		}
		if i%10 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
	}
	late := bytes.Repeat([]byte("late pages "), 10000)
	if err := os.WriteFile(filepath.Join(dir, "pages-3.img"), late, 0o600); err != nil {
		t.Fatal(err)
	}
	want["pages-3.img"] = late
	if err := os.WriteFile(filepath.Join(dir, "core-1.img"), []byte("core"), 0o600); err != nil {
		t.Fatal(err)
	}
	th.end()
	if _, err := th.sum("core-1.img"); err == nil {
		t.Errorf("a sum of core-1.img, which is not a pages image")
	}
	sums := th.finish()
	if len(sums) != len(want) {
		t.Fatalf("sums of %d files, want %d: %v", len(sums), len(want), sums)
	}
	for n, b := range want {
		s := format.NewSummer()
		s.Write(b)
		if got, w := sums[n], s.Sum(); got.Digest() != w.Digest() || got.Size() != w.Size() {
			t.Errorf("%s: sum %s (%d bytes), want %s (%d bytes)", n, got.Digest(), got.Size(), w.Digest(), w.Size())
		}
	}
}

// TestTailHasherStop: a hasher abandoned (the dump failed) ends, and a
// missing directory gives no sums.
func TestTailHasherStop(t *testing.T) {
	t.Parallel()
	th := startTailHasher(t.TempDir())
	th.stop()
	th.stop()
	if sums := startTailHasher(filepath.Join(t.TempDir(), "missing")).finish(); sums != nil {
		t.Errorf("sums of a missing directory: %v", sums)
	}
}
