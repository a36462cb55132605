package fuzz

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
)

// TestSealedMutations: every envelope mutation, many times over seeds of
// each compression (one with pages, several chunks long), is refused by
// both ways of opening with a named error, nothing escaping the target;
// sealed inner mutations find nothing either. The checks themselves
// catch an unmutated envelope (accepted) and an error outside
// SealedErrors (unnamed).
func TestSealedMutations(t *testing.T) {
	k, err := newSealKeys()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := NewSandbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range []format.Compression{format.Zstd, format.None} {
		s, err := ParseSeed(seedArchive(t, c, c == format.None))
		if err != nil {
			t.Fatal(err)
		}
		first, rest := s.tarBytes()
		plain := k.sealBytes(encode(s.Compression, first, rest))
		for _, m := range SealedMutations {
			for i := 0; i < 40; i++ {
				in := m.Apply(r, append([]byte(nil), plain...), layoutOf(plain))
				if o := guarded(ctx, func(ctx context.Context, data []byte, sb *Sandbox) error {
					return ExecSealed(ctx, data, k.ids, sb, true)
				}, in, sb, 30*time.Second, 1<<30); o != nil {
					t.Fatalf("%s (%s, %d): %s: %s", m.Name, c, i, o.kind, o.detail)
				}
			}
		}
		for i := 0; i < 40; i++ {
			in, name, refuse := MutateSealed(r, s, k)
			if o := guarded(ctx, func(ctx context.Context, data []byte, sb *Sandbox) error {
				return ExecSealed(ctx, data, k.ids, sb, refuse)
			}, in, sb, 30*time.Second, 1<<30); o != nil {
				t.Fatalf("%s: %s: %s", name, o.kind, o.detail)
			}
		}
		var fe *findingError
		if err := ExecSealed(ctx, plain, k.ids, sb, true); !errors.As(err, &fe) || fe.kind != KindAccepted {
			t.Errorf("an unmutated sealed archive: %v, want an %s finding", err, KindAccepted)
		}
		saved := SealedErrors
		SealedErrors = []error{seal.ErrCorrupt}
		err = ExecSealed(ctx, mutClearLine(r, append([]byte(nil), plain...), layoutOf(plain)), k.ids, sb, true)
		SealedErrors = saved
		if !errors.As(err, &fe) || fe.kind != KindUnnamed {
			t.Errorf("a clear line mutated, ErrEnvelope not named: %v, want an %s finding", err, KindUnnamed)
		}
	}
}

// TestRunSealed: a run of sealed inputs only finds nothing.
func TestRunSealed(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.ckpt")
	if err := os.WriteFile(seed, seedArchive(t, format.Zstd, false), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), []string{seed}, &Options{Iterations: 200, Sealed: true, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Execs != 200 || len(res.Findings) != 0 {
		t.Fatalf("%d execs, findings %+v", res.Execs, res.Findings)
	}
}

// FuzzMutatedSealed runs sealed inputs (MutateSealed) of seed archives
// through ExecSealed: envelope mutations must be refused with a named
// error, and nothing may panic or escape.
func FuzzMutatedSealed(f *testing.F) {
	for _, c := range []format.Compression{format.Zstd, format.None} {
		f.Add(seedArchive(f, c, c == format.None), uint64(1))
	}
	k, err := newSealKeys()
	if err != nil {
		f.Fatal(err)
	}
	sb, err := NewSandbox(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		s, err := ParseSeed(data)
		if err != nil {
			return
		}
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		in, name, refuse := MutateSealed(r, s, k)
		if o := guarded(context.Background(), func(ctx context.Context, data []byte, sb *Sandbox) error {
			return ExecSealed(ctx, data, k.ids, sb, refuse)
		}, in, sb, 10*time.Second, 512<<20); o != nil {
			t.Fatalf("%s after %s: %s", o.kind, name, o.detail)
		}
	})
}
