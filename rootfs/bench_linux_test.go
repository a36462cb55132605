package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchTree makes n files of size bytes in 10 directories below dir.
func benchTree(b *testing.B, dir string, n, size int) {
	body := strings.Repeat("x", size)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%d/f%d", i%10, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChangesWalk(b *testing.B) {
	base := b.TempDir()
	lower, merged := filepath.Join(base, "lower"), filepath.Join(base, "merged")
	benchTree(b, lower, 1000, 4096)
	benchTree(b, merged, 1000, 4096) // equal metadata but other inodes: content is read
	b.ResetTimer()
	for b.Loop() {
		if _, err := Changes(context.Background(), lower, merged, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteDiff(b *testing.B) {
	root := b.TempDir()
	benchTree(b, root, 1000, 4096)
	changes, err := Changes(context.Background(), "", root, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1000 * 4096)
	b.ResetTimer()
	for b.Loop() {
		if err := WriteDiff(context.Background(), io.Discard, root, changes, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	src := b.TempDir()
	benchTree(b, src, 1000, 4096)
	changes, err := Changes(context.Background(), "", src, nil)
	if err != nil {
		b.Fatal(err)
	}
	var diff bytes.Buffer
	if err := WriteDiff(context.Background(), &diff, src, changes, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1000 * 4096)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst, err := os.MkdirTemp(b.TempDir(), "apply")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := Apply(context.Background(), dst, bytes.NewReader(diff.Bytes()), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
