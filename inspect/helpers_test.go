package inspect

import (
	"archive/tar"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

var update = flag.Bool("update", false, "rewrite golden outputs")

// tinyImages is the small real CRIU image set criuimg's tests use.
const tinyImages = "../format/criuimg/testdata/tiny"

// repoTestdata is the top-level shared testdata.
const repoTestdata = "../testdata"

var tinyCreated = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const tinySpec = `{
  "ociVersion": "1.2.0",
  "process": {"args": ["/tiny", "ghost"], "env": ["PATH=/bin"], "cwd": "/"},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/var/lib/ckpt/volumes/data", "options": ["rbind", "rw"]}
  ],
  "annotations": {"io.container.manager": "ckpt", "org.example": "tiny"}
}
`

// innerTar builds an uncompressed tar of files (name -> content).
func innerTar(t testing.TB, files [][2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg, ModTime: tinyCreated}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tinyOptions changes what writeTiny puts in the archive.
type tinyOptions struct {
	compression format.Compression
	rootfs      [][2]string
	imagesDir   string
	// preCheckpoint stores the images under pre-checkpoint/, as a
	// pre-checkpoint archive.
	preCheckpoint bool
	// parent makes an incremental checkpoint of this parent.
	parent *format.Parent
	// config replaces config.dump's content.
	config string
}

// writeTiny writes a ckpt v1 archive of the tiny image set to dir/name.
func writeTiny(t testing.TB, dir, name string, o tinyOptions) string {
	t.Helper()
	if o.compression == "" {
		o.compression = format.Zstd
	}
	if o.rootfs == nil {
		o.rootfs = [][2]string{{"added.txt", "added\n"}, {"etc/modified.txt", "modified\n"}}
	}
	if o.imagesDir == "" {
		o.imagesDir = tinyImages
	}
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := format.Manifest{
		Created:   tinyCreated,
		Engine:    format.Engine{Name: "ckpt", Version: "0.1.0"},
		Container: format.Container{Name: "tiny", ID: "0123456789abcdef0123456789abcdef", Image: "localhost/tiny:latest", ImageID: "fedcba9876543210", Runtime: "runc"},
		Host:      format.Host{Kernel: "6.18.0", Arch: "amd64", CRIUVersion: "4.1.1", RuntimeVersion: "1.1.15", CPU: format.CPU{Vendor: "GenuineIntel", Model: "test"}},
		Options:   format.Options{LeaveRunning: true, PreCheckpoint: o.preCheckpoint, WithPrevious: o.parent != nil},
		Parent:    o.parent,
	}
	w := format.NewWriter(f, hdr, &format.WriterOptions{Compression: o.compression, Concurrency: 1})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if o.preCheckpoint {
		must(w.AddDir(format.PreCheckpointDir, o.imagesDir))
	} else {
		must(w.AddDir(format.CheckpointDir, o.imagesDir))
	}
	must(w.AddBytes(format.SpecName, []byte(tinySpec)))
	if o.config == "" {
		o.config = `{"id":"0123456789abcdef0123456789abcdef","name":"tiny"}` + "\n"
	}
	must(w.AddBytes(format.ConfigName, []byte(o.config)))
	must(w.AddBytes(format.DeletedFilesName, []byte(`["/etc/deleted.txt"]`)))
	must(w.AddBytes(format.RootfsDiffName, innerTar(t, o.rootfs)))
	must(w.AddBytes("volumes/data.tar", innerTar(t, [][2]string{{"counter", "42\n"}})))
	must(w.Close())
	return p
}

// golden compares got with testdata/golden/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (run go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
