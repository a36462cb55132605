package format

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestLegacyArchives reads the committed podman-made archives (podman 5.4.2,
// runc, CRIU 4.1.1; see testdata/podman/README.md) and the CRI-O- and
// containerd-shaped ones (testdata/legacy) in legacy mode: every structural
// check applies, the CRIU images are checked, and the archive is reported as
// legacy, never as verified.
func TestLegacyArchives(t *testing.T) {
	for _, c := range []struct {
		file    string
		comp    Compression
		members []string // some members that must be there
	}{
		{"../testdata/podman/counter.tar.zst", Zstd, []string{ConfigName, SpecName, RootfsDiffName, DeletedFilesName, "volumes/ckptvol.tar", "checkpoint/pages-1.img"}},
		{"../testdata/podman/counter.tar", None, []string{ConfigName, SpecName, "checkpoint/inventory.img"}},
		{"../testdata/legacy/crio.tar", None, []string{ConfigName, SpecName, "bind.mounts", "checkpoint/pstree.img"}},
		{"../testdata/legacy/containerd.tar", None, []string{SpecName, RootfsDiffName, "status", "checkpoint/core-1.img"}},
	} {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			f, err := os.Open(c.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := NewReader(f, nil)
			if err != nil {
				t.Fatalf("NewReader() = %v", err)
			}
			defer zr.Close()
			if !zr.Legacy() || zr.Compression() != c.comp || zr.ManifestDigest() != "" {
				t.Errorf("Legacy(), Compression(), ManifestDigest() = %v, %v, %q; want true, %v, empty", zr.Legacy(), zr.Compression(), zr.ManifestDigest(), c.comp)
			}
			for {
				_, err := zr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Next() = %v", err)
				}
			}
			m := zr.Manifest()
			if m.Version != 0 {
				t.Errorf("synthesized manifest version = %d, want 0", m.Version)
			}
			for _, name := range c.members {
				e := m.Member(name)
				if e == nil {
					t.Errorf("synthesized manifest lacks %s", name)
					continue
				}
				if _, err := ParseDigest(string(e.Digest)); err != nil {
					t.Errorf("member %s digest %q: %v", name, e.Digest, err)
				}
			}

			// Verify: no problems, but legacy.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(f, nil)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if !rep.Legacy {
				t.Errorf("Verify().Legacy = false, want true")
			}
			if err := rep.Err(); err != nil {
				t.Errorf("Verify().Err() = %v, want nil", err)
			}
			if len(rep.Images) == 0 || rep.Images[0].Processes == 0 || rep.Images[0].PagesSize == 0 {
				t.Errorf("Verify().Images = %+v, want a summary of the checkpoint images", rep.Images)
			}

			// RequireManifest refuses it.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := NewReader(f, &ReaderOptions{RequireManifest: true}); !errors.Is(err, ErrNoManifest) {
				t.Errorf("NewReader(RequireManifest) = %v, want ErrNoManifest", err)
			}

			// Extract works and creates the parent-less image directory.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := Extract(context.Background(), f, dir, nil); err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "checkpoint", "inventory.img")); err != nil {
				t.Errorf("Extract() did not write checkpoint/inventory.img: %v", err)
			}
		})
	}
}

// TestLegacyDotSlash reads a hand-made legacy archive (`tar -C dir .`),
// whose names start with "./" and whose first entry is "./" itself.
func TestLegacyDotSlash(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "./config.dump", Mode: 0o644, Size: 2},
		{Typeflag: tar.TypeDir, Name: "./volumes/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "./volumes/v.tar", Mode: 0o644, Size: 2},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("{}"))
		}
	}
	tw.Close()
	got, zr, err := readAll(t, buf.Bytes())
	if err != nil {
		t.Fatalf("read = %v", err)
	}
	if !zr.Legacy() || got[ConfigName] != "{}" || got["volumes/v.tar"] != "{}" {
		t.Errorf("read = %v (legacy %v), want config.dump and volumes/v.tar", got, zr.Legacy())
	}
}
