package inspect

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/klauspost/compress/zstd"
)

var showSize = flag.Int64("showsize", 1<<30, "pages image size of BenchmarkShow's archives, in bytes")

// ballast yields n bytes like the counter workload's -ballast-mb memory:
// the first half pseudo-random (cut from a 32 MiB pool, larger than a
// zstd window, so it does not compress), the second repetitive text.
type ballast struct {
	pool []byte
	off  int64
	n    int64
}

func newBallast(n int64) *ballast {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]byte, 32<<20)
	for j := 0; j < len(pool); j += 8 {
		binary.LittleEndian.PutUint64(pool[j:], rng.Uint64())
	}
	return &ballast{pool: pool, n: n}
}

var ballastText = bytes.Repeat([]byte("ballast: the quick brown fox jumps over the lazy dog 0123456789\n"), 1024)

func (b *ballast) Read(p []byte) (int, error) {
	if b.off >= b.n {
		return 0, io.EOF
	}
	src := ballastText
	if b.off < b.n/2 {
		src = b.pool
	}
	k := copy(p[:min(int64(len(p)), b.n-b.off)], src[b.off%int64(len(src)):])
	b.off += int64(k)
	return k, nil
}

// writePodmanShaped writes to w the members of testdata/podman/counter.tar
// in podman's order, pages-1.img replaced by pages bytes of ballast.
func writePodmanShaped(b *testing.B, w io.Writer, pages int64) {
	b.Helper()
	f, err := os.Open(filepath.Join(repoTestdata, "podman", "counter.tar"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tr, tw := tar.NewReader(f), tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		var body io.Reader = tr
		if h.Name == "checkpoint/pages-1.img" {
			h.Size, body = pages, newBallast(pages)
		}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(tw, body); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
}

// showArchives writes, once per run, the archives BenchmarkShow reads: a
// podman-shaped legacy archive uncompressed and zstd, and the same members
// as a ckpt v1 archive (zstd).
func showArchives(b *testing.B) map[string]string {
	dir := b.TempDir()
	files := map[string]string{}
	for _, c := range []string{"legacy-none", "legacy-zstd"} {
		p := filepath.Join(dir, c)
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		var w io.Writer = f
		var zw *zstd.Encoder
		if c == "legacy-zstd" {
			if zw, err = zstd.NewWriter(f); err != nil {
				b.Fatal(err)
			}
			w = zw
		}
		writePodmanShaped(b, w, *showSize)
		if zw != nil {
			if err := zw.Close(); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		files[c] = p
	}
	p := filepath.Join(dir, "v1-zstd")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := format.NewWriter(f, format.Manifest{Created: tinyCreated, Engine: format.Engine{Name: "ckpt", Version: "0.1.0"},
		Container: format.Container{Name: "bench", ID: "b"}, Host: format.Host{Arch: "amd64"}}, nil)
	var small bytes.Buffer
	writePodmanShaped(b, &small, 0)
	tr := tar.NewReader(&small)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || format.KindOf(h.Name) == format.KindOther {
			continue
		}
		src := format.Source(format.SourceFunc(func() (io.ReadCloser, error) { return io.NopCloser(newBallast(*showSize)), nil }))
		if h.Name != "checkpoint/pages-1.img" {
			c, err := io.ReadAll(tr)
			if err != nil {
				b.Fatal(err)
			}
			src = format.BytesSource(c)
		}
		if err := w.Add(h.Name, src); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	files["v1-zstd"] = p
	return files
}

// BenchmarkShow times Show on archives holding a -showsize pages image
// (default 1 GiB, as bench/show.sh's podman archives): podman-shaped
// legacy archives, uncompressed (read by seeking from header to header)
// and zstd (read up to config.dump and spec.dump; -full: decompressed
// whole), and a ckpt v1 archive of the same members (its manifest only).
// Warm cache: the archives were just written.
func BenchmarkShow(b *testing.B) {
	files := showArchives(b)
	ctx := context.Background()
	for _, c := range []struct {
		name, file string
		opts       ShowOptions
	}{
		{"legacy-none", "legacy-none", ShowOptions{}},
		{"legacy-zstd", "legacy-zstd", ShowOptions{}},
		{"legacy-zstd-full", "legacy-zstd", ShowOptions{Full: true}},
		{"v1-zstd", "v1-zstd", ShowOptions{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Show(ctx, files[c.file], &c.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
