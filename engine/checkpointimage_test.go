package engine

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.podman.io/image/v5/manifest"
	ocilayout "go.podman.io/image/v5/oci/layout"

	"github.com/ckpt/ckpt/format"
)

func testManifest() *format.Manifest {
	return &format.Manifest{
		Version: format.Version, Created: time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC),
		Container: format.Container{Name: "web", ID: "0123abcd", Image: "localhost/workload:latest", ImageID: "feedbeef", Runtime: "runc"},
		Host:      format.Host{Kernel: "6.18.0", Arch: "amd64", CRIUVersion: "4.2.1", RuntimeVersion: "1.1.15"},
	}
}

// TestCheckpointAnnotations: podman's keys with the manifest's and the
// host's values, CRI-O's name, and no empty values.
func TestCheckpointAnnotations(t *testing.T) {
	got := checkpointAnnotations(testManifest(), checkpointHost{criuVersion: 40201, cgroups: "v1", distName: "debian", distVersn: "12"})
	want := map[string]string{
		"io.podman.annotations.checkpoint.name":                 "web",
		"io.podman.annotations.checkpoint.rawImageName":         "localhost/workload:latest",
		"io.podman.annotations.checkpoint.rootfsImageID":        "feedbeef",
		"io.podman.annotations.checkpoint.rootfsImageName":      "localhost/workload:latest",
		"io.podman.annotations.checkpoint.runtime.name":         "runc",
		"io.podman.annotations.checkpoint.runtime.version":      "1.1.15",
		"io.podman.annotations.checkpoint.criu.version":         "40201",
		"io.podman.annotations.checkpoint.host.arch":            "amd64",
		"io.podman.annotations.checkpoint.host.kernel":          "6.18.0",
		"io.podman.annotations.checkpoint.cgroups.version":      "v1",
		"io.podman.annotations.checkpoint.distribution.name":    "debian",
		"io.podman.annotations.checkpoint.distribution.version": "12",
		"io.kubernetes.cri-o.annotations.checkpoint.name":       "web",
	}
	if !maps.Equal(got, want) {
		t.Errorf("checkpointAnnotations =\n%v\nwant\n%v", got, want)
	}
	if !isCheckpointImage(got) {
		t.Errorf("isCheckpointImage(its own annotations) = false")
	}

	// Unknown facts are left out; the runtime name podman checks is
	// always there.
	m := testManifest()
	m.Container.ImageID, m.Container.Runtime = "", ""
	got = checkpointAnnotations(m, checkpointHost{})
	for _, k := range []string{AnnotationCheckpointRootfsImageID, AnnotationCheckpointCRIUVersion, AnnotationCheckpointDistName} {
		if v, ok := got[k]; ok {
			t.Errorf("annotation %s = %q for an unknown value, want none", k, v)
		}
	}
	if got[AnnotationCheckpointRuntimeName] != "runc" {
		t.Errorf("runtime.name = %q, want runc", got[AnnotationCheckpointRuntimeName])
	}
}

func TestIsCheckpointImage(t *testing.T) {
	for _, tt := range []struct {
		ann  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"org.opencontainers.image.ref.name": "x"}, false},
		{map[string]string{AnnotationCheckpointRuntimeName: "runc"}, true}, // what podman checks
		{map[string]string{AnnotationCheckpointName: "web"}, true},
		{map[string]string{AnnotationCRIOCheckpointName: "web"}, true}, // a Kubernetes checkpoint image
	} {
		if got := isCheckpointImage(tt.ann); got != tt.want {
			t.Errorf("isCheckpointImage(%v) = %v, want %v", tt.ann, got, tt.want)
		}
	}
}

func TestDistribution(t *testing.T) {
	name, version := distribution([]byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"))
	if name != "debian" || version != "12" {
		t.Errorf("distribution = %q %q, want debian 12", name, version)
	}
}

// TestCheckImageOptions: what podman allows with --export only, and what
// a full checkpoint image cannot be, is refused.
func TestCheckImageOptions(t *testing.T) {
	for _, o := range []ExportOptions{
		{Compression: format.Zstd},
		{Stream: true},
		{Output: os.Stdout},
		{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}},
		{CheckpointOptions: CheckpointOptions{WithPrevious: true}},
		{IgnoreRootfs: true},
		{IgnoreVolumes: true},
	} {
		if err := checkImageOptions(&o); !errors.Is(err, ErrOptions) {
			t.Errorf("checkImageOptions(%+v) = %v, want ErrOptions", o, err)
		}
	}
	o := ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}
	if err := checkImageOptions(&o); err != nil || o.Compression != format.None {
		t.Errorf("checkImageOptions(-R) = %v, compression %q; want nil, none", err, o.Compression)
	}
}

// TestWriteCheckpointLayout: containers/image reads the layout as one
// image whose one layer is the archive's bytes, uncompressed, with the
// annotations on its manifest and the archive's digest as its diff ID.
func TestWriteCheckpointLayout(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "checkpoint.tar")
	body := []byte("not really a tar, but the layout does not look")
	if err := os.WriteFile(archive, body, 0o600); err != nil {
		t.Fatal(err)
	}
	ann := map[string]string{AnnotationCheckpointName: "web", AnnotationCRIOCheckpointName: "web"}
	layout := filepath.Join(dir, "layout")
	if err := writeCheckpointLayout(layout, archive, testManifest(), ann); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("the archive is still at %s (%v), want it moved into the layout", archive, err)
	}
	ref, err := ocilayout.NewReference(layout, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := ref.NewImageSource(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.OCI1FromManifest(raw)
	if err != nil || mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("manifest %s: %v", mt, err)
	}
	if !maps.Equal(m.Annotations, ann) || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar" || m.Layers[0].Size != int64(len(body)) {
		t.Fatalf("manifest %+v", m)
	}
	img, err := ref.NewImage(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	oc, err := img.OCIConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(oc.RootFS.DiffIDs) != 1 || oc.RootFS.DiffIDs[0] != m.Layers[0].Digest || oc.Architecture != "amd64" || oc.OS != "linux" {
		t.Errorf("config %+v, want the layer's digest as its diff ID, linux/amd64", oc)
	}
}
