package imagexfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil/ocitest"
)

func TestParseSource(t *testing.T) {
	for ref, want := range map[string]Source{
		"oci:/d":                     {Transport: TransportOCI, Path: "/d"},
		"oci:/d:localhost/x:1":       {Transport: TransportOCI, Path: "/d", Image: "localhost/x:1"},
		"oci-archive:f.tar":          {Transport: TransportOCIArchive, Path: "f.tar"},
		"docker-archive:f.tar":       {Transport: TransportDockerArchive, Path: "f.tar"},
		"docker://localhost:5000/x":  {Transport: TransportDocker, Ref: "//localhost:5000/x"},
		"containers-storage:[/g]x:1": {Transport: TransportStorage, Ref: "[/g]x:1"},
	} {
		if got, ok := ParseSource(ref); !ok || got != want {
			t.Errorf("ParseSource(%q) = %+v %v, want %+v", ref, got, ok, want)
		}
	}
	for _, ref := range []string{"counter.tar.zst", "/abs/path", "localhost/x:1"} {
		if s, ok := ParseSource(ref); ok {
			t.Errorf("ParseSource(%q) = %+v, want no image", ref, s)
		}
	}
}

// TestReadCheckpointLayer reads a good image and refuses the hostile ones
// with their sentinels: the layer given to w is the one the manifest
// names, byte for byte, or an error says why not.
func TestReadCheckpointLayer(t *testing.T) {
	counter, err := os.ReadFile("../../testdata/podman/counter.tar")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	l := ocitest.Write(t, t.TempDir(), counter, ocitest.LayerTar, ocitest.CheckpointAnnotations)
	cl, err := ReadCheckpointLayer(context.Background(), Source{Transport: TransportOCI, Path: l.Dir}, &got, nil)
	if err != nil || !bytes.Equal(got.Bytes(), counter) || cl.Digest.String() != l.Layer || cl.Manifest.String() != l.Manifest {
		t.Fatalf("ReadCheckpointLayer = %+v, %v (%d bytes), want the layer %s", cl, err, got.Len(), l.Layer)
	}
	// A layer unpacking to more than the bound (a decompression bomb).
	if _, err := ReadCheckpointLayer(context.Background(), Source{Transport: TransportOCI, Path: l.Dir}, &bytes.Buffer{}, &ReadOptions{MaxLayerSize: 4096}); !errors.Is(err, ErrHostileImage) || !strings.Contains(err.Error(), "unpacks to more than 4096 bytes") {
		t.Errorf("ReadCheckpointLayer(MaxLayerSize 4096) = %v, want ErrHostileImage", err)
	}
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b }
	for _, c := range []struct {
		name    string
		break_  func(t *testing.T, l *ocitest.Layout)
		wantErr error
		want    string
	}{
		{"no annotation", func(t *testing.T, l *ocitest.Layout) {
			l.SetManifest(t, rewrite(t, l.Body, func(m map[string]any) { delete(m, "annotations") }))
		}, ErrNotCheckpointImage, "no checkpoint annotation"},
		{"bad layer digest", func(t *testing.T, l *ocitest.Layout) {
			write(t, l.Blob(l.Layer), flip(counter))
		}, ErrHostileImage, "has the digest"},
		{"layer longer than its descriptor", func(t *testing.T, l *ocitest.Layout) {
			write(t, l.Blob(l.Layer), append(bytes.Clone(counter), 0))
		}, ErrHostileImage, "its descriptor says"},
		{"bad config digest", func(t *testing.T, l *ocitest.Layout) {
			write(t, l.Blob(l.Config), append(bytes.Clone(l.ConfigBytes), ' '))
		}, ErrHostileImage, "config"},
		{"manifest not the index's", func(t *testing.T, l *ocitest.Layout) {
			write(t, l.Blob(l.Manifest), append(bytes.Clone(l.Body), ' '))
		}, ErrHostileImage, "has the digest"},
		{"huge manifest", func(t *testing.T, l *ocitest.Layout) {
			l.SetManifest(t, rewrite(t, l.Body, func(m map[string]any) { m["x"] = strings.Repeat("a", MaxLayoutIndex) }))
		}, ErrHostileImage, "at most"},
		{"two layers", func(t *testing.T, l *ocitest.Layout) {
			l.SetManifest(t, rewrite(t, l.Body, func(m map[string]any) { m["layers"] = append(m["layers"].([]any), m["layers"].([]any)[0]) }))
		}, ErrNotCheckpointImage, "2 layers"},
		{"layer from a URL", func(t *testing.T, l *ocitest.Layout) {
			l.SetManifest(t, rewrite(t, l.Body, func(m map[string]any) {
				m["layers"].([]any)[0].(map[string]any)["urls"] = []string{"http://127.0.0.1:9/layer"}
			}))
		}, ErrHostileImage, "outside the image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := ocitest.Write(t, t.TempDir(), counter, ocitest.LayerTar, ocitest.CheckpointAnnotations)
			c.break_(t, l)
			_, err := ReadCheckpointLayer(context.Background(), Source{Transport: TransportOCI, Path: l.Dir}, &bytes.Buffer{}, nil)
			if !errors.Is(err, c.wantErr) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ReadCheckpointLayer = %v, want %v with %q", err, c.wantErr, c.want)
			}
		})
	}
}

// rewrite returns the JSON document b changed by f.
func rewrite(t *testing.T, b []byte, f func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
