package inspect

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
)

// adder is what format's Writer and StreamWriter share.
type adder interface {
	Add(name string, src format.Source) error
	Close() error
}

// addShaped adds to w the members of the podman-shaped archive, the
// pages image holding pages bytes of ballast.
func addShaped(b *testing.B, w adder, pages int64) {
	b.Helper()
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
		src := format.Source(format.SourceFunc(func() (io.ReadCloser, error) { return io.NopCloser(newBallast(pages)), nil }))
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
}

// sealedArchive writes a sealed archive (v1, or streamed v2) of the
// podman-shaped members with a pages image of pages bytes to path.
func sealedArchive(b *testing.B, path string, pages int64, streamed bool, to age.Recipient) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sw, err := seal.NewWriter(f, []age.Recipient{to})
	if err != nil {
		b.Fatal(err)
	}
	h := format.Manifest{Created: tinyCreated, Engine: format.Engine{Name: "ckpt", Version: "0.1.0"},
		Container: format.Container{Name: "bench", ID: "b"}, Host: format.Host{Arch: "amd64"}}
	var w adder = format.NewWriter(sw, h, nil)
	if streamed {
		if w, err = format.NewStreamWriter(sw, h, nil); err != nil {
			b.Fatal(err)
		}
	}
	addShaped(b, w, pages)
	if err := sw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkShowSealed times Show with the key of sealed archives holding
// a -showsize pages image (default 1 GiB), v1 (the manifest is in the
// first chunks) and streamed (the index is in the last ones), and
// without the key; it fails if one Show takes 50 ms or more (the
// issue's bound; on a machine so busy that it does, run it again).
//
//	go test ./inspect -run '^$' -bench ShowSealed -benchtime 20x
func BenchmarkShowSealed(b *testing.B) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		streamed bool
	}{{"v1", false}, {"v2", true}} {
		p := filepath.Join(dir, c.name)
		sealedArchive(b, p, *showSize, c.streamed, id.Recipient())
		fi, _ := os.Stat(p)
		for _, key := range []bool{true, false} {
			o := ShowOptions{}
			name := c.name + "/nokey"
			if key {
				o.Identities, name = []age.Identity{id}, c.name+"/key"
			}
			b.Run(name, func(b *testing.B) {
				var worst time.Duration
				for b.Loop() {
					t0 := time.Now()
					s, err := Show(ctx, p, &o)
					worst = max(worst, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					if key && s.PagesSize != *showSize || !key && s.Verified != VerifiedSealed {
						b.Fatalf("pages %d, verified %s", s.PagesSize, s.Verified)
					}
				}
				b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
				b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
				if worst >= 50*time.Millisecond {
					b.Errorf("a Show took %s: over 50 ms", worst)
				}
			})
		}
	}
}
