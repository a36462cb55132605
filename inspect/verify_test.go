package inspect

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// memberOffsets returns the offset and size of each member's content in
// an uncompressed tar.
func memberOffsets(t *testing.T, b []byte) map[string][2]int64 {
	t.Helper()
	cr := &countReader{r: bytes.NewReader(b)}
	tr := tar.NewReader(cr)
	out := map[string][2]int64{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = [2]int64{cr.n, h.Size}
	}
}

func TestVerifyFlippedByte(t *testing.T) {
	dir := t.TempDir()
	path := writeTiny(t, dir, "tiny.tar", tinyOptions{compression: format.None})
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r, err := Verify(ctx, path, nil); err != nil || !r.OK() {
		t.Fatalf("Verify(clean) = %+v, %v, want no problems", r, err)
	}
	offs := memberOffsets(t, orig)
	if len(offs) < 10 {
		t.Fatalf("only %d members", len(offs))
	}
	for name, o := range offs {
		if o[1] == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			b := bytes.Clone(orig)
			b[o[0]+o[1]/2] ^= 0x20
			p := filepath.Join(t.TempDir(), "flipped.tar")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Verify(ctx, p, nil)
			if err != nil {
				t.Fatalf("Verify() error = %v, want problems", err)
			}
			if r.OK() {
				t.Fatalf("Verify(flipped %s) found no problem", name)
			}
			named := false
			for _, pr := range r.Problems {
				if strings.Contains(pr, name) {
					named = true
				}
			}
			if !named {
				t.Errorf("Verify(flipped %s) problems = %q, none names the member", name, r.Problems)
			}
		})
	}
}

func TestVerifyLegacy(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(repoTestdata, "legacy", "crio.tar")
	r, err := Verify(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Format != "legacy" || len(r.Notes) == 0 || r.Notes[0] != UnverifiableNote {
		t.Errorf("Verify(crio) = %+v, want clean legacy with note %q", r, UnverifiableNote)
	}
	r, err = Verify(ctx, p, &VerifyOptions{RequireManifest: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Errorf("Verify(crio, RequireManifest) = clean, want %q", UnverifiableNote)
	}
}

func TestVerifyParentChain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := writeTiny(t, dir, "a.ckpt", tinyOptions{})
	b := writeTiny(t, dir, "b.ckpt", tinyOptions{rootfs: [][2]string{{"x", "y"}}})
	// a has no parent: passing one is a chain error.
	r, err := Verify(ctx, a, &VerifyOptions{Parents: []string{b}})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Errorf("Verify(a, parent b) = clean, want a chain problem")
	}
	r, err = Verify(ctx, a, &VerifyOptions{Parents: []string{filepath.Join(dir, "missing")}})
	if err != nil || r.OK() {
		t.Errorf("Verify(a, missing parent) = %+v, %v, want a problem", r, err)
	}
}

// TestShowReadsOnlyManifest corrupts everything after the manifest's
// compression frame: Show, which reads only the manifest, still works;
// Verify finds the damage.
func TestShowReadsOnlyManifest(t *testing.T) {
	dir := t.TempDir()
	p := writeTiny(t, dir, "tiny.ckpt", tinyOptions{})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b); i++ {
		b[i] = 0xa5
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Show(ctx, p, nil)
	if err != nil {
		t.Fatalf("Show(damaged after manifest) = %v", err)
	}
	if s.Name != "tiny" || s.PagesSize != 139264 || s.Verified != VerifiedUnchecked {
		t.Errorf("Show() = %+v", s)
	}
	r, err := Verify(ctx, p, nil)
	if err != nil || r.OK() {
		t.Errorf("Verify(damaged) = %+v, %v, want problems", r, err)
	}
}

// TestLegacyPrefersCheckpoint builds a legacy archive holding
// pre-checkpoint/ before checkpoint/ (podman --with-previous): the
// checkpoint's images are the ones inspected.
func TestLegacyPrefersCheckpoint(t *testing.T) {
	ents, err := os.ReadDir(tinyImages)
	if err != nil {
		t.Fatal(err)
	}
	var files [][2]string
	for _, dir := range []string{format.PreCheckpointDir, format.CheckpointDir} {
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(tinyImages, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, [2]string{dir + "/" + e.Name(), string(b)})
		}
	}
	p := filepath.Join(t.TempDir(), "legacy.tar")
	if err := os.WriteFile(p, innerTar(t, files), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Load(context.Background(), p, &LoadOptions{Images: true, Args: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.Legacy || a.ImageDir != format.CheckpointDir {
		t.Errorf("Load() legacy %v image dir %q, want a legacy archive read from %s", a.Legacy, a.ImageDir, format.CheckpointDir)
	}
	roots, err := a.Tree()
	if err != nil || len(roots) != 1 {
		t.Fatalf("Tree() = %v, %v", roots, err)
	}
	if err := a.ProcessArgs(roots, false); err != nil || len(roots[0].Cmdline) == 0 {
		t.Errorf("ProcessArgs() = %v, cmdline %q", err, roots[0].Cmdline)
	}
}
