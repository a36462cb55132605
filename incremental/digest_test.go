package incremental

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// TestImagesDigest checks that ImagesDigest of a directory is what
// format.ImagesDigest gives the same directory stored in an archive, with
// the parent link skipped as format.Writer.AddDir skips it.
func TestImagesDigest(t *testing.T) {
	base := t.TempDir()
	parent, final := filepath.Join(base, "pre"), filepath.Join(base, "final")
	copyDir(t, tinyDir, parent)
	copyDir(t, tinyDir, final)
	pokePage(t, final, "pages-1.img", 2, 0x44)
	if _, err := Dedup(context.Background(), parent, final, &Options{PageSize: ps, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{parent, final} {
		w := format.NewWriter(io.Discard, format.Manifest{Engine: format.Engine{Name: "test"}}, &format.WriterOptions{Compression: format.None})
		if err := w.AddDir(format.CheckpointDir, dir); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		m, _ := w.Manifest()
		want := format.ImagesDigest(m.Members, format.CheckpointDir)
		got, err := ImagesDigest(dir)
		if err != nil || got != want {
			t.Errorf("ImagesDigest(%s) = %v, %v, want %v", filepath.Base(dir), got, err, want)
		}
	}
	if a, _ := ImagesDigest(parent); a == mustDigest(t, final) {
		t.Error("ImagesDigest of different image sets are equal")
	}
	if err := os.Mkdir(filepath.Join(final, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ImagesDigest(final); err == nil {
		t.Error("ImagesDigest(dir with a subdirectory) = nil error")
	}
}

func mustDigest(t *testing.T, dir string) format.Digest {
	t.Helper()
	d, err := ImagesDigest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
