package inspect

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/fuzz"
)

// inspectAll runs every view of the inspector on the archive at p.
// Temporary files must be gone afterwards, whatever happened.
func inspectAll(t *testing.T, ctx context.Context, p, ref string) {
	tmp := t.TempDir()
	defer func() {
		if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
			t.Errorf("temporary files left behind: %v", ents)
		}
	}()
	o := All()
	o.TempDir = tmp
	Show(ctx, p, &ShowOptions{Verify: true})
	Inspect(ctx, p, &o)
	DiffArchives(ctx, ref, p, &DiffOptions{TempDir: tmp})
	if a, err := Load(ctx, p, &LoadOptions{Images: true, Pages: true, TempDir: tmp}); err == nil {
		a.MemoryUsage()
		a.Search(SearchOptions{String: "tiny", Context: 8})
		if roots, err := a.Tree(); err == nil {
			Walk(roots, func(pr *Process, _ int) { a.HexDump(discard{}, pr.PID) })
		}
		a.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestInspectMutated runs the inspector on structure-aware mutations of a
// ckpt archive (package fuzz's mutators): nothing may panic.
func TestInspectMutated(t *testing.T) {
	dir := t.TempDir()
	ref := writeTiny(t, dir, "ref.ckpt", tinyOptions{compression: format.None})
	b, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := fuzz.ParseSeed(b)
	if err != nil {
		t.Fatal(err)
	}
	// Without the manifest the archive is legacy: nothing is checked
	// against digests, so mutated images reach the decoders.
	legacy := &fuzz.Seed{Compression: format.None, Entries: seed.Entries[1:]}
	n := 120
	if testing.Short() {
		n = 30
	}
	r := rand.New(rand.NewPCG(5, 6))
	ctx := context.Background()
	p := filepath.Join(dir, "mutated.ckpt")
	for i := 0; i < n; i++ {
		s := seed
		if i%2 == 1 {
			s = legacy
		}
		data, name := fuzz.Mutate(r, s)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if v := recover(); v != nil {
					os.WriteFile(filepath.Join("testdata", "panic-input.ckpt"), data, 0o644)
					t.Fatalf("panic after %s: %v (input saved to testdata/panic-input.ckpt)", name, v)
				}
			}()
			inspectAll(t, ctx, p, ref)
		}()
	}
}

// FuzzInspectArchive runs the inspector on mutated archives.
func FuzzInspectArchive(f *testing.F) {
	dir := f.TempDir()
	ref := writeTiny(f, dir, "ref.ckpt", tinyOptions{compression: format.None})
	b, err := os.ReadFile(ref)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		if s, err := fuzz.ParseSeed(data); err == nil {
			data, _ = fuzz.Mutate(rand.New(rand.NewPCG(seed, seed+1)), s)
		}
		p := filepath.Join(t.TempDir(), "in.ckpt")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		inspectAll(t, context.Background(), p, ref)
	})
}
