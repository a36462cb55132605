package fuzz

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
)

// seedArchive writes a small v1 archive of the tiny CRIU image set.
func seedArchive(t testing.TB, c format.Compression, pages bool) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seed.ckpt")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := format.NewWriter(f, format.Manifest{Created: time.Unix(1_800_000_000, 0).UTC(), Engine: format.Engine{Name: "ckpt"}},
		&format.WriterOptions{Compression: c, Concurrency: 1})
	dir := "../format/criuimg/testdata/tiny"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !pages && (e.Name() == "pages-1.img" || e.Name() == "pages-2.img") {
			continue // keep seeds small; verify reports the missing pages
		}
		if err := w.AddFile("checkpoint/"+e.Name(), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	w.AddBytes(format.SpecName, []byte(`{"annotations":{"io.container.manager":"ckpt"}}`))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMutateRoundTrip(t *testing.T) {
	for _, c := range []format.Compression{format.Zstd, format.Gzip, format.None} {
		s, err := ParseSeed(seedArchive(t, c, true))
		if err != nil {
			t.Fatal(err)
		}
		if s.Manifest == nil || s.Compression != c {
			t.Fatalf("ParseSeed(%s) = manifest %v, compression %s", c, s.Manifest != nil, s.Compression)
		}
		// The unmutated seed re-encodes to an archive format accepts.
		rep, err := format.Verify(bytesReader(s.Bytes()), nil)
		if err != nil || len(rep.Problems) != 0 {
			t.Fatalf("Verify(re-encoded %s seed) = %v, %v", c, rep.Problems, err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 50; i++ {
			if b, name := Mutate(r, s); len(b) == 0 && name == "" {
				t.Fatalf("Mutate gave nothing")
			}
		}
	}
}

func TestRunFindsNothing(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.ckpt")
	if err := os.WriteFile(seed, seedArchive(t, format.Zstd, false), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 150
	if testing.Short() {
		n = 50
	}
	res, err := Run(context.Background(), []string{seed}, &Options{Iterations: n, Seed: 7, OutDir: filepath.Join(dir, "out"), TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Execs != n {
		t.Errorf("Run() execs = %d, want %d", res.Execs, n)
	}
	for _, f := range res.Findings {
		t.Errorf("finding %s (%s): %s\nsaved %s", f.Kind, f.Mutation, f.Detail, f.File)
	}
	t.Logf("%d execs, %.0f execs/s", res.Execs, res.ExecsPerSec())
}

func TestSandboxDetectsEscape(t *testing.T) {
	sb, err := NewSandbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if err := sb.check(); err != nil {
		t.Fatalf("check(clean) = %v", err)
	}
	os.WriteFile(filepath.Join(sb.Dir, "escaped"), nil, 0o600)
	if err := sb.check(); err == nil {
		t.Errorf("check() = nil after a file appeared beside the target")
	}
	os.Remove(filepath.Join(sb.Dir, "escaped"))
	os.WriteFile(sb.sentinel, []byte("changed"), 0o600)
	if err := sb.check(); err == nil {
		t.Errorf("check() = nil after the sentinel changed")
	}
}

var sink [][]byte

func TestGuardedFindings(t *testing.T) {
	sb, err := NewSandbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if o := guarded(context.Background(), nil, []byte("not an archive"), sb, 5*time.Second, 1<<30); o != nil {
		t.Errorf("guarded(garbage) = %+v, want nil", o)
	}
	defer func() { execFunc = Exec }()
	tests := []struct {
		kind string
		exec func(ctx context.Context, data []byte, sb *Sandbox) error
	}{
		{KindPanic, func(context.Context, []byte, *Sandbox) error { panic("boom") }},
		{KindHang, func(ctx context.Context, _ []byte, _ *Sandbox) error { <-ctx.Done(); return nil }},
		{KindAlloc, func(context.Context, []byte, *Sandbox) error {
			for i := 0; i < 64; i++ {
				sink = append(sink, make([]byte, 1<<20))
			}
			time.Sleep(20 * time.Millisecond)
			sink = nil
			return nil
		}},
		{KindEscape, func(_ context.Context, _ []byte, sb *Sandbox) error {
			os.WriteFile(filepath.Join(sb.Dir, "escaped"), nil, 0o600)
			defer os.Remove(filepath.Join(sb.Dir, "escaped"))
			return sb.check()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			execFunc = tt.exec
			// The deadline only ends the hang case: long enough that a
			// loaded machine finishes the others first.
			o := guarded(context.Background(), nil, nil, sb, 2*time.Second, 16<<20)
			if o == nil || o.kind != tt.kind {
				t.Errorf("guarded() = %+v, want a %s finding", o, tt.kind)
			}
		})
	}
	// Run saves findings to OutDir.
	execFunc = tests[0].exec
	execSealedFunc = func(ctx context.Context, data []byte, _ []age.Identity, sb *Sandbox, _ bool) error {
		return execFunc(ctx, data, sb)
	}
	defer func() { execSealedFunc = ExecSealed }()
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.ckpt")
	os.WriteFile(seed, seedArchive(t, format.None, false), 0o600)
	res, err := Run(context.Background(), []string{seed}, &Options{Iterations: 2, OutDir: filepath.Join(dir, "out"), TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 2 || res.Findings[0].File == "" {
		t.Fatalf("Run() findings = %+v, want 2 saved panics", res.Findings)
	}
	if _, err := os.Stat(res.Findings[0].File); err != nil {
		t.Errorf("finding not saved: %v", err)
	}
}

// FuzzMutatedArchive runs structure-aware mutations of seed archives
// through the reader, verifier and extractor. The fuzzer varies both the
// seed bytes and the mutation stream.
func FuzzMutatedArchive(f *testing.F) {
	for _, c := range []format.Compression{format.Zstd, format.Gzip, format.None} {
		f.Add(seedArchive(f, c, false), uint64(1))
	}
	sb, err := NewSandbox(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		in, name := data, "none"
		// A seed that still parses is mutated structurally; other bytes
		// go to the reader as they are.
		if s, err := ParseSeed(data); err == nil {
			r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			in, name = Mutate(r, s)
		}
		if o := guarded(context.Background(), nil, in, sb, 10*time.Second, 512<<20); o != nil {
			t.Fatalf("%s after %s: %s", o.kind, name, o.detail)
		}
	})
}
