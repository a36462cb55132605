package inspect

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// podmanTar returns the real podman archive testdata/podman/counter.tar
// (uncompressed) with its pages image grown to pagesSize bytes, and the
// size of its checkpoint/ members then.
func podmanTar(t testing.TB, pagesSize int64) (raw []byte, ckptSize int64) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoTestdata, "podman", "counter.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&b)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = tr
		if h.Name == "checkpoint/pages-1.img" {
			h.Size, body = pagesSize, io.LimitReader(zeros{}, pagesSize)
		}
		if h.Typeflag == tar.TypeReg && filepath.Dir(h.Name) == "checkpoint" {
			ckptSize += h.Size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), ckptSize
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

var sizeFields = []string{"checkpointSize", "memoryPagesSize", "rootfsDiffSize"}

// TestShowLegacyCompressedStopsEarly shows a zstd podman archive whose
// stream breaks off after its metadata: show reads config.dump and
// spec.dump, which come first, stops there and names the sizes it did not
// read; with Full it reads on, and so meets the damage.
func TestShowLegacyCompressedStopsEarly(t *testing.T) {
	raw, _ := podmanTar(t, 4<<20)
	// Two zstd frames: the first ends after the checkpoint's first
	// image; the second, the rest, is cut in half.
	split := bytes.Index(raw, []byte("checkpoint/core-1.img"))
	var z bytes.Buffer
	for i, part := range [][]byte{raw[:split], raw[split:]} {
		var f bytes.Buffer
		zw, err := zstd.NewWriter(&f, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(part)
		zw.Close()
		if i == 1 {
			f.Truncate(f.Len() / 2)
		}
		z.Write(f.Bytes())
	}
	p := filepath.Join(t.TempDir(), "cut.tar.zst")
	if err := os.WriteFile(p, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Show(ctx, p, nil)
	if err != nil {
		t.Fatalf("Show(first half of a zstd podman archive) = %v, want it read up to spec.dump only", err)
	}
	if s.Name != "ckpt-mkpodman" || s.Engine != "Podman" || s.Created.IsZero() || s.Checkpointed.IsZero() {
		t.Errorf("Show() = %+v, want podman's container name, engine and times", s)
	}
	if !slices.Equal(s.Unknown, sizeFields) || s.CheckpointSize != 0 || s.Note() == "" {
		t.Errorf("Show(): unknown %q, checkpoint size %d, note %q; want the sizes unknown, with a note", s.Unknown, s.CheckpointSize, s.Note())
	}
	var b bytes.Buffer
	if err := WriteShow(&b, []*Summary{s}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Bytes(), []byte(" 0 B ")) {
		t.Errorf("table shows unknown sizes as 0 B:\n%s", b.Bytes())
	}
	if _, err := Show(ctx, p, &ShowOptions{Full: true}); err == nil {
		t.Errorf("Show(Full) of the cut archive = nil error, want the damage found")
	}
}

// TestShowLegacyFull: with Full (and for an uncompressed archive without
// it) the sizes of a legacy archive are all there, the same as --verify's.
func TestShowLegacyFull(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts *ShowOptions
	}{{"counter.tar", nil}, {"counter.tar.zst", &ShowOptions{Full: true}}} {
		p := filepath.Join(repoTestdata, "podman", c.name)
		s, err := Show(ctx, p, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		v, err := Show(ctx, p, &ShowOptions{Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		if s.Unknown != nil || s.Note() != "" || s.CheckpointSize == 0 || s.CheckpointSize != v.CheckpointSize ||
			s.PagesSize != v.PagesSize || s.RootfsDiffSize != v.RootfsDiffSize || s.Info != v.Info {
			t.Errorf("Show(%s, %+v) = %+v, want every figure, as with Verify: %+v", c.name, c.opts, s, v)
		}
	}
}
