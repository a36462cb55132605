// Package ocitest writes OCI image layouts for tests: one image of one
// layer, with the manifest annotations a test gives, each blob named by
// its digest so that a test can then break one.
package ocitest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Media types of layers.
const (
	LayerTar  = "application/vnd.oci.image.layer.v1.tar"
	LayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// CheckpointAnnotations are a checkpoint image's annotations, podman's.
var CheckpointAnnotations = map[string]string{
	"io.podman.annotations.checkpoint.name":         "counter",
	"io.podman.annotations.checkpoint.runtime.name": "runc",
}

// Layout is an OCI layout a test wrote.
type Layout struct {
	Dir                           string
	Layer, Config, Manifest       string // digests, "sha256:..."
	LayerBytes, ConfigBytes, Body []byte // Body: the manifest's
}

// Digest is the sha256 digest of b, "sha256:...".
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Blob is the path of the blob of digest d.
func (l *Layout) Blob(d string) string {
	return filepath.Join(l.Dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

// Write writes at dir an OCI layout of one image, named
// localhost/cp:latest, whose one layer, of media type mediaType, is layer
// and whose manifest carries ann.
func Write(t testing.TB, dir string, layer []byte, mediaType string, ann map[string]string) *Layout {
	t.Helper()
	l := &Layout{Dir: dir, LayerBytes: layer, Layer: Digest(layer)}
	l.ConfigBytes = mustJSON(t, map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{l.Layer}}})
	l.Config = Digest(l.ConfigBytes)
	l.SetManifest(t, mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config":      map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": l.Config, "size": len(l.ConfigBytes)},
		"layers":      []any{map[string]any{"mediaType": mediaType, "digest": l.Layer, "size": len(layer)}},
		"annotations": ann,
	}))
	writeFile(t, filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	writeFile(t, l.Blob(l.Layer), layer)
	writeFile(t, l.Blob(l.Config), l.ConfigBytes)
	return l
}

// SetManifest writes body as the image's manifest blob and index.json
// naming it.
func (l *Layout) SetManifest(t testing.TB, body []byte) {
	t.Helper()
	l.Body, l.Manifest = body, Digest(body)
	writeFile(t, l.Blob(l.Manifest), body)
	l.WriteIndex(t, l.Manifest, len(body))
}

// WriteIndex writes index.json listing the manifest of digest d and size
// n.
func (l *Layout) WriteIndex(t testing.TB, d string, n int) {
	t.Helper()
	writeFile(t, filepath.Join(l.Dir, "index.json"), mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": n,
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "localhost/cp:latest"}}}}))
}

// Tar writes the layout as the tar file out (an oci-archive).
func (l *Layout) Tar(t testing.TB, out string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.AddFS(os.DirFS(l.Dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, out, b.Bytes())
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
