package engine

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

// TestPrehash follows pages images while they are appended to, in uneven
// pieces and with pauses, as CRIU writes them: the sums equal those of the
// finished files, other files are not summed, and discard gives none.
func TestPrehash(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	for _, name := range []string{"pages-1.img", "pages-2.img"} {
		b := make([]byte, 3<<20+12345)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want[name] = b
	}
	p := startPrehash(dir)
	if err := os.WriteFile(filepath.Join(dir, "pagemap-1.img"), []byte("not summed"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, b := range want {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(b); {
			n := min(len(b)-off, 1+rng.IntN(700<<10))
			if _, err := f.Write(b[off : off+n]); err != nil {
				t.Fatal(err)
			}
			off += n
			if rng.IntN(3) == 0 {
				time.Sleep(3 * time.Millisecond)
			}
		}
		f.Close()
	}
	sums := p.finish(false)
	if len(sums) != len(want) {
		t.Fatalf("sums of %d files, want %d: %v", len(sums), len(want), sums)
	}
	for name, b := range want {
		s := format.NewSummer()
		s.Write(b)
		if got, w := sums[name], s.Sum(); got != w {
			t.Errorf("%s: sum %v/%s, want %v/%s", name, got.Size(), got.Digest(), w.Size(), w.Digest())
		}
	}

	p = startPrehash(dir)
	if sums := p.finish(true); len(sums) != 0 {
		t.Errorf("discarded prehash gave %d sums", len(sums))
	}
}

// TestPrehashWrongSum checks what guards a file changed behind the
// prehash: the writer's one read no longer matches the sum, and the
// archive fails with format.ErrSourceChanged.
func TestPrehashWrongSum(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pages-1.img")
	if err := os.WriteFile(file, bytes.Repeat([]byte("a"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPrehash(dir)
	sums := p.finish(false)
	// Rewritten in place, same size.
	if err := os.WriteFile(file, bytes.Repeat([]byte("b"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := format.NewWriter(&out, format.Manifest{Engine: format.Engine{Name: "ckpt", Version: Version}, Container: format.Container{Name: "x", ID: "x"}}, nil)
	if err := zw.AddDir(format.CheckpointDir, dir); err != nil {
		t.Fatal(err)
	}
	for name, s := range sums {
		if err := zw.SetSum(format.CheckpointDir+"/"+name, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); !errors.Is(err, format.ErrSourceChanged) {
		t.Fatalf("Close after the file changed = %v, want ErrSourceChanged", err)
	}
}
