package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// imageLayout is an OCI layout a test writes: one image of one layer.
type imageLayout struct {
	dir                              string
	layer, config, manifest          string // digests, "sha256:..."
	layerBytes, configBytes, manBody []byte
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func (l *imageLayout) blob(d string) string {
	return filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeImageLayout writes at dir an OCI layout of one image whose layer
// (of media type mediaType) is layer and whose manifest carries ann.
func writeImageLayout(t testing.TB, dir string, layer []byte, mediaType string, ann map[string]string) *imageLayout {
	t.Helper()
	l := &imageLayout{dir: dir, layerBytes: layer, layer: sha(layer)}
	l.configBytes = mustJSON(t, map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{l.layer}}})
	l.config = sha(l.configBytes)
	l.manBody = mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config":      map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": l.config, "size": len(l.configBytes)},
		"layers":      []any{map[string]any{"mediaType": mediaType, "digest": l.layer, "size": len(layer)}},
		"annotations": ann,
	})
	l.manifest = sha(l.manBody)
	index := mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": l.manifest, "size": len(l.manBody),
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "localhost/cp:latest"}}}})
	for _, f := range []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{filepath.Join(dir, "index.json"), index},
		{l.blob(l.layer), layer},
		{l.blob(l.config), l.configBytes},
		{l.blob(l.manifest), l.manBody},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// tarDir writes the directory dir as the tar file out (an oci-archive of
// a layout).
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkpointAnn are the annotations of a checkpoint image, podman's.
var checkpointAnn = map[string]string{"io.podman.annotations.checkpoint.name": "counter", "io.podman.annotations.checkpoint.runtime.name": "runc"}

const (
	layerTar  = "application/vnd.oci.image.layer.v1.tar"
	layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImages runs the reading commands on checkpoint images made of the
// testdata archives: ckpt's (a whole v1 archive as a zstd layer) and
// podman's (the archive's members as an uncompressed layer), as a layout
// directory, an oci: reference and an oci-archive file: each is read as
// the archive it holds, under the name given.
func TestImages(t *testing.T) {
	dir := t.TempDir()
	ckptDir := filepath.Join(dir, "ckpt-layout")
	writeImageLayout(t, ckptDir, readFile(t, "../../testdata/ckpt/counter.tar.zst"), layerZstd, checkpointAnn)
	ckptArchive := filepath.Join(dir, "ckpt.oci.tar")
	tarDir(t, ckptDir, ckptArchive)
	podDir := filepath.Join(dir, "podman-layout")
	writeImageLayout(t, podDir, readFile(t, "../../testdata/podman/counter.tar"), layerTar, checkpointAnn)
	podArchive := filepath.Join(dir, "podman.oci.tar")
	tarDir(t, podDir, podArchive)
	for _, c := range []struct{ arg, format string }{
		{ckptDir, "v1"}, {"oci:" + ckptDir, "v1"}, {ckptArchive, "v1"}, {"oci-archive:" + ckptArchive + ":localhost/cp:latest", "v1"},
		{podDir, "legacy"}, {podArchive, "legacy"},
	} {
		t.Run(filepath.Base(c.arg), func(t *testing.T) {
			code, out, errOut := ckptinspect("show", c.arg)
			if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(c.arg)+`\s+\S+.*\s`+c.format+`\s`).MatchString(out) || strings.Contains(out, "0 B") {
				t.Errorf("show %s = %d\n%s%s", c.arg, code, out, errOut)
			}
			if code, out, errOut := ckptinspect("verify", c.arg); code != 0 {
				t.Errorf("verify %s = %d\n%s%s", c.arg, code, out, errOut)
			}
			if code, out, errOut := ckptinspect("inspect", "--ps-tree", c.arg); code != 0 || !strings.Contains(out, "Process tree") {
				t.Errorf("inspect %s = %d\n%s%s", c.arg, code, out, errOut)
			}
			if code, out, errOut := ckptinspect("memparse", c.arg); code != 0 || !strings.Contains(out, "PID") {
				t.Errorf("memparse %s = %d\n%s%s", c.arg, code, out, errOut)
			}
		})
	}
	if code, out, errOut := ckptinspect("diff", ckptDir, "../../testdata/ckpt/counter.tar.zst"); code != 0 {
		t.Errorf("diff of the image and its archive = %d, want identical\n%s%s", code, out, errOut)
	}
}
