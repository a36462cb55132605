package engine

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// halfRandom yields n bytes, the first half pseudo-random, the rest
// repetitive (as the counter's ballast).
type halfRandom struct {
	r    *rand.ChaCha8
	off  int64
	n    int64
	text []byte
}

func (h *halfRandom) Read(p []byte) (int, error) {
	if h.off >= h.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), h.n-h.off)]
	if h.off < h.n/2 {
		_, _ = h.r.Read(p)
	} else {
		for i := range p {
			p[i] = h.text[(h.off+int64(i))%int64(len(h.text))]
		}
	}
	h.off += int64(len(p))
	return len(p), nil
}

// BenchmarkExtractSealed isolates what the envelope costs an import: the
// extraction (format.Extract through unsealAhead, as importJob.extract
// reads) of a v1 archive holding -sealed-mib of pages, unsealed and
// sealed, from a file on disk into a tmpfs, alternating. It reports the
// CPU seconds (user and system) of each besides the time.
//
//	go test ./engine/ -run '^$' -bench ExtractSealed -benchtime 5x
func BenchmarkExtractSealed(b *testing.B) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	ids := []age.Identity{id}
	dir := b.TempDir()
	mib := int64(*sealedMiB)
	plain, sealed := filepath.Join(dir, "plain.tar.zst"), filepath.Join(dir, "sealed")
	for _, p := range []string{plain, sealed} {
		writeBenchArchive(b, p, mib<<20, p == sealed, id.Recipient())
	}
	tmp := b.TempDir()
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", 0, fmt.Sprintf("size=%dm", mib+256)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Unmount(tmp, syscall.MNT_DETACH) })
	for _, name := range []string{"plain", "sealed"} {
		p := map[string]string{"plain": plain, "sealed": sealed}[name]
		b.Run(name, func(b *testing.B) {
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				_ = fsutil.RemoveAll(filepath.Join(tmp, "x"))
				syscall.Sync()
				c0 := cpuTime()
				extractOnce(b, p, filepath.Join(tmp, "x"), ids)
				cpu += cpuTime() - c0
				if err := fsutil.RemoveAll(filepath.Join(tmp, "x")); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// extractOnce extracts the archive at path into dst as an import does.
func extractOnce(b *testing.B, path, dst string, ids []age.Identity) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	sr, closeReader := fileio.NewSequentialReader(f, fi.Size())
	defer closeReader()
	r, stop, err := unsealAhead(sr, ids)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	if err := os.Mkdir(dst, 0o700); err != nil {
		b.Fatal(err)
	}
	zr, err := format.Extract(context.Background(), r, dst, nil)
	if err != nil {
		b.Fatal(err)
	}
	zr.Close()
}

// writeBenchArchive writes a v1 zstd archive of one pages image of n
// bytes to path, sealed to to if sealed.
func writeBenchArchive(b *testing.B, path string, n int64, sealed bool, to age.Recipient) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var sw *seal.Writer
	if sealed {
		if sw, err = seal.NewWriter(f, []age.Recipient{to}); err != nil {
			b.Fatal(err)
		}
		w = sw
	}
	zw := format.NewWriter(w, format.Manifest{Engine: format.Engine{Name: "ckpt"}, Container: format.Container{Name: "b", ID: "b"}}, nil)
	src := format.SourceFunc(func() (io.ReadCloser, error) {
		return io.NopCloser(&halfRandom{r: rand.NewChaCha8([32]byte{1}), n: n, text: []byte("ballast text 0123456789\n")}), nil
	})
	// Real CRIU images, and a large pages image no pagemap names.
	if err := zw.AddDir(format.CheckpointDir, "../format/criuimg/testdata/tiny"); err != nil {
		b.Fatal(err)
	}
	if err := zw.Add("checkpoint/pages-99.img", src); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if sw != nil {
		if err := sw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
