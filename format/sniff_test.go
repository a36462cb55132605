package format_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// tarEntry is one entry of a tar built by makeTar: a directory (name
// ending in /), a symlink (link set) or a file of size bytes.
type tarEntry struct {
	name, link string
	size       int
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(e.size)}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case e.name[len(e.name)-1] == '/':
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, h.Size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Name = "rootfs.tar" // as gzip(1) writes it
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The layouts `podman save` (podman 4.3) writes, blob sizes shrunk but for
// one large layer, which comes before index.json or manifest.json.
const bigLayer = 8 << 20

var (
	ociArchive = []tarEntry{
		{name: "blobs/"}, {name: "blobs/sha256/"},
		{name: "blobs/sha256/0c87a3108be9eac95729ff93790f9a2cfb003c1f9ff1105f3337b6309b9a3a59", size: 405},
		{name: "blobs/sha256/1181890f13499fcff443ca39b308944b45e406c782c0d0551ae5cb5063834f1c", size: bigLayer},
		{name: "blobs/sha256/6f9fd4697dc8730716b792f93087d81507d483b78e08e92f16ab7cab7df968cb", size: 348},
		{name: "index.json", size: 260}, {name: "oci-layout", size: 31},
	}
	dockerArchive = []tarEntry{
		{name: "a64271085e2d839b5b05766b9a0845214009f0f6120701ff8fe3ea70ca0e2f2e.tar", size: bigLayer},
		{name: "0c87a3108be9eac95729ff93790f9a2cfb003c1f9ff1105f3337b6309b9a3a59.json", size: 405},
		{name: "520679e7802798bbdee7bfe258caf900b20f7a1dc57921f770ec17946761e8c0/layer.tar", link: "../a64271085e2d839b5b05766b9a0845214009f0f6120701ff8fe3ea70ca0e2f2e.tar"},
		{name: "520679e7802798bbdee7bfe258caf900b20f7a1dc57921f770ec17946761e8c0/VERSION", size: 3},
		{name: "520679e7802798bbdee7bfe258caf900b20f7a1dc57921f770ec17946761e8c0/json", size: 225},
		{name: "manifest.json", size: 201}, {name: "repositories", size: 94},
	}
	rootfs = []tarEntry{
		{name: "./"}, {name: "./bin/"}, {name: "./bin/busybox", size: 1000}, {name: "./bin/sh", link: "busybox"},
		{name: "./etc/"}, {name: "./etc/passwd", size: 30}, {name: "./usr/"},
	}
)

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r *bytes.Reader
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func TestSniff(t *testing.T) {
	random := make([]byte, 5000)
	_, _ = rand.Read(random)
	random[0] = 0xff // not a tar, no magic
	tests := []struct {
		name string
		data []byte
		want format.Looks
	}{
		{"empty", nil, format.LooksEmpty},
		{"text", []byte("hello\nworld\n"), format.LooksText},
		{"long text", bytes.Repeat([]byte("a line of text, ünïcode too\n"), 1000), format.LooksText},
		{"binary", random, format.LooksUnknown},
		{"text with NUL", []byte("hello\x00world"), format.LooksUnknown},
		{"xz", append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, random...), format.LooksOtherCompression},
		{"rootfs tar", makeTar(t, rootfs), format.LooksRootfs},
		{"rootfs tar.gz", gzipped(t, makeTar(t, rootfs)), format.LooksRootfs},
		{"oci-archive", makeTar(t, ociArchive), format.LooksOCIArchive},
		{"docker-archive", makeTar(t, dockerArchive), format.LooksDockerArchive},
		{"docker-archive.gz", gzipped(t, makeTar(t, dockerArchive)), format.LooksDockerArchive},
		{"other tar", makeTar(t, []tarEntry{{name: "notes/"}, {name: "notes/a.txt", size: 10}}), format.LooksTar},
		{"legacy checkpoint", makeTar(t, []tarEntry{{name: "artifacts/"}, {name: "config.dump", size: 10}}), format.LooksCheckpoint},
		{"checkpoint with rootfs-like names", makeTar(t, append([]tarEntry{{name: "checkpoint/"}, {name: "checkpoint/core-1.img", size: 10}}, rootfs...)), format.LooksCheckpoint},
		{"truncated tar", makeTar(t, rootfs)[:700], format.LooksUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := format.Sniff(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err != nil || got != tt.want {
				t.Errorf("Sniff = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestSniffSkipsMembers: an image archive's index.json or manifest.json
// after a large layer is found by seeking over the layer, not reading it.
func TestSniffSkipsMembers(t *testing.T) {
	for _, entries := range [][]tarEntry{ociArchive, dockerArchive} {
		b := makeTar(t, entries)
		r := &countingReaderAt{r: bytes.NewReader(b)}
		got, err := format.Sniff(r, int64(len(b)))
		if err != nil || !got.ImageArchive() {
			t.Errorf("Sniff = %q, %v; want an image archive", got, err)
		}
		if n := r.n.Load(); n > 64<<10 {
			t.Errorf("Sniff of %q read %d bytes of %d, want only headers", got, n, len(b))
		}
	}
}

// TestSniffBounds: a file that tells nothing within the bounds is
// LooksUnknown, not "a tar archive" (what comes after is unseen).
func TestSniffBounds(t *testing.T) {
	// A compressed tar cut at SniffBytes, in a member's data or right
	// after it (where a tar reader sees a clean end): its one top-level
	// directory seen says nothing.
	for _, size := range []int{format.SniffBytes + 1<<20, format.SniffBytes - 2*512} {
		b := gzipped(t, makeTar(t, []tarEntry{{name: "notes/"}, {name: "notes/big", size: size}, {name: "more/"}}))
		if got, _ := format.Sniff(bytes.NewReader(b), int64(len(b))); got != format.LooksUnknown {
			t.Errorf("Sniff(tar.gz with a member of %d bytes) = %q, want LooksUnknown", size, got)
		}
	}
	// More headers than SniffHeaders before the root filesystem's.
	var many []tarEntry
	for i := range format.SniffHeaders {
		many = append(many, tarEntry{name: fmt.Sprintf("x/%d", i)})
	}
	b := makeTar(t, append(many, rootfs...))
	if got, _ := format.Sniff(bytes.NewReader(b), int64(len(b))); got != format.LooksUnknown {
		t.Errorf("Sniff(tar of %d headers) = %q, want LooksUnknown", format.SniffHeaders+len(rootfs), got)
	}
}

// TestSniffRealFiles: the project's real archives (podman's, ckpt's,
// CRI-O's, containerd's) are checkpoint archives; podman's rootfs tar and
// the workload's are root filesystems.
func TestSniffRealFiles(t *testing.T) {
	for name, want := range map[string]format.Looks{
		"../testdata/podman/counter.tar":       format.LooksCheckpoint,
		"../testdata/podman/counter.tar.zst":   format.LooksCheckpoint,
		"../testdata/ckpt/counter.tar.zst":     format.LooksCheckpoint,
		"../testdata/ckpt/from-podman.tar.zst": format.LooksCheckpoint,
		"../testdata/legacy/crio.tar":          format.LooksCheckpoint,
		"../testdata/legacy/containerd.tar":    format.LooksCheckpoint,
		"../testdata/podman/rootfs.tar.gz":     format.LooksRootfs,
		"../testdata/README.md":                format.LooksText,
	} {
		got, err := format.SniffFile(name)
		if err != nil || got != want {
			t.Errorf("SniffFile(%s) = %q, %v; want %q", filepath.Base(name), got, err, want)
		}
	}
	if _, err := format.SniffFile("testdata"); err == nil {
		t.Error("SniffFile(a directory) succeeded")
	}
	if _, err := format.SniffFile("no-such-file"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SniffFile(missing) = %v, want ErrNotExist", err)
	}
}

func TestLooksNotCheckpoint(t *testing.T) {
	for _, l := range []format.Looks{format.LooksCheckpoint, format.LooksUnknown} {
		if err := l.NotCheckpoint(); err != nil {
			t.Errorf("%q.NotCheckpoint() = %v, want nil", l, err)
		}
	}
	err := format.LooksRootfs.NotCheckpoint()
	if !errors.Is(err, format.ErrNotCheckpoint) || err.Error() != "format: not a checkpoint archive: it looks like a root filesystem tar" {
		t.Errorf("LooksRootfs.NotCheckpoint() = %v", err)
	}
}
