package format

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// ctrdStore is a synthetic containerd content store of one checkpoint
// image, shaped as containerd 1.7's `ctr c checkpoint --task --rw`.
type ctrdStore struct {
	dir     string // holds blobs/sha256
	entries []Descriptor
}

func (s *ctrdStore) blob(t *testing.T, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(s.dir, "blobs", "sha256", d[7:]), data, 0o444); err != nil {
		t.Fatal(err)
	}
	return d
}

func (s *ctrdStore) add(t *testing.T, mediaType string, data []byte) Descriptor {
	d := Descriptor{MediaType: mediaType, Digest: s.blob(t, data), Size: int64(len(data))}
	s.entries = append(s.entries, d)
	return d
}

// index writes the index of s's entries and returns its digest.
func (s *ctrdStore) index(t *testing.T) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": s.entries,
		"annotations": map[string]string{ContainerdAnnotationImage: "localhost/base:1"}})
	if err != nil {
		t.Fatal(err)
	}
	return s.blob(t, data)
}

// anyProto encodes a google.protobuf.Any.
func anyProto(typeURL string, value []byte) []byte {
	var b []byte
	field := func(n int, v []byte) {
		b = append(b, byte(n<<3|2))
		l := uint64(len(v))
		for l >= 0x80 {
			b = append(b, byte(l)|0x80)
			l >>= 7
		}
		b = append(b, byte(l))
		b = append(b, v...)
	}
	field(1, []byte(typeURL))
	field(2, value)
	return b
}

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write(bytes.Repeat([]byte{'x'}, int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// newCtrdStore makes a store with a good CRIU tar, spec and rw layer.
func newCtrdStore(t *testing.T, criu []byte) *ctrdStore {
	t.Helper()
	s := &ctrdStore{dir: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(s.dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if criu == nil {
		criu = tarOf(t, &tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "inventory.img", Typeflag: tar.TypeReg, Size: 10, Mode: 0o644},
			&tar.Header{Name: "descriptors.json", Typeflag: tar.TypeReg, Size: 3, Mode: 0o600})
	}
	s.add(t, MediaTypeContainerdCRIU, criu)
	s.add(t, MediaTypeContainerdSpec, anyProto(containerdSpecType, []byte(`{"linux":{"cgroupsPath":"/ns/web-1"}}`)))
	s.add(t, mediaTypeOCILayerGzip, []byte("not really gzip: passed on as it is"))
	return s
}

func TestContainerdCheckpoint(t *testing.T) {
	s := newCtrdStore(t, nil)
	dgst := s.index(t)
	blobs, err := ContainerdBlobs(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenContainerdCheckpoint(blobs, dgst)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "web-1" || c.Annotations[ContainerdAnnotationImage] != "localhost/base:1" {
		t.Errorf("Name %q, annotations %v", c.Name(), c.Annotations)
	}
	var buf bytes.Buffer
	if err := c.WriteArchive(&buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == ConfigName {
			var cfg map[string]any
			b, _ := io.ReadAll(tr)
			if err := json.Unmarshal(b, &cfg); err != nil || cfg["name"] != "web-1" || cfg["id"] != dgst[7:] || cfg["rootfsImageName"] != "localhost/base:1" {
				t.Errorf("config.dump = %s (%v)", b, err)
			}
		}
	}
	want := "config.dump spec.dump checkpoint/ checkpoint/inventory.img checkpoint/descriptors.json rootfs-diff.tar"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("members %s, want %s", got, want)
	}
}

// TestContainerdCheckpointHostile: every bad store is refused with the
// sentinel named, at open or while the archive is written.
func TestContainerdCheckpointHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T) (dir, dgst string)
		want error
	}{
		{"bad digest syntax", func(t *testing.T) (string, string) { return newCtrdStore(t, nil).dir, "sha256:../../etc/passwd" }, ErrFormat},
		{"missing index", func(t *testing.T) (string, string) {
			return newCtrdStore(t, nil).dir, "sha256:" + strings.Repeat("0", 64)
		}, ErrFormat},
		{"index not matching its digest", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			d := s.index(t)
			p := filepath.Join(s.dir, "blobs", "sha256", d[7:])
			_ = os.Chmod(p, 0o644)
			b, _ := os.ReadFile(p)
			_ = os.WriteFile(p, bytes.Replace(b, []byte("base:1"), []byte("base:2"), 1), 0o644)
			return s.dir, d
		}, ErrChecksum},
		{"huge index", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			return s.dir, s.blob(t, append([]byte(`{"schemaVersion":2,"manifests":[]} `), bytes.Repeat([]byte(" "), MaxContainerdIndexSize)...))
		}, ErrTooLarge},
		{"too many entries", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			for range MaxContainerdEntries {
				s.entries = append(s.entries, s.entries[2])
			}
			return s.dir, s.index(t)
		}, ErrFormat},
		{"unknown entry", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			s.add(t, "application/x-evil", []byte("x"))
			return s.dir, s.index(t)
		}, ErrFormat},
		{"two CRIU tars", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			s.entries = append(s.entries, s.entries[0])
			return s.dir, s.index(t)
		}, ErrFormat},
		{"no CRIU tar", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			s.entries = s.entries[1:]
			return s.dir, s.index(t)
		}, ErrNotContainerdCheckpoint},
		{"spec of another type", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			s.entries[1] = Descriptor{}
			s.entries = s.entries[:1]
			s.add(t, MediaTypeContainerdSpec, anyProto("types.containerd.io/evil", []byte(`{}`)))
			return s.dir, s.index(t)
		}, ErrFormat},
		{"spec not protobuf", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			s.entries = s.entries[:1]
			s.add(t, MediaTypeContainerdSpec, []byte{0x0a, 0xff})
			return s.dir, s.index(t)
		}, ErrFormat},
		{"CRIU tar of another size", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			s.entries[0].Size--
			return s.dir, s.index(t)
		}, ErrChecksum},
		{"CRIU tar changed", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			d := s.index(t)
			p := filepath.Join(s.dir, "blobs", "sha256", s.entries[0].Digest[7:])
			_ = os.Chmod(p, 0o644)
			b, _ := os.ReadFile(p)
			b[bytes.IndexByte(b[1024:], 'x')+1024] = 'y'
			_ = os.WriteFile(p, b, 0o644)
			return s.dir, d
		}, ErrChecksum},
		{"rw layer changed", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			d := s.index(t)
			p := filepath.Join(s.dir, "blobs", "sha256", s.entries[2].Digest[7:])
			_ = os.Chmod(p, 0o644)
			_ = os.WriteFile(p, []byte("NOT really gzip: passed on as it is"), 0o644)
			return s.dir, d
		}, ErrChecksum},
		{"blob a symlink out of the store", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, nil)
			d := s.index(t)
			outside := filepath.Join(t.TempDir(), "rw")
			p := filepath.Join(s.dir, "blobs", "sha256", s.entries[2].Digest[7:])
			b, _ := os.ReadFile(p)
			_ = os.WriteFile(outside, b, 0o644)
			_ = os.Remove(p)
			_ = os.Symlink(outside, p)
			return s.dir, d
		}, ErrInsecurePath},
		{"CRIU tar with ../", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, tarOf(t, &tar.Header{Name: "../evil.img", Typeflag: tar.TypeReg, Size: 1}))
			return s.dir, s.index(t)
		}, ErrFormat},
		{"CRIU tar with a subdirectory", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, tarOf(t, &tar.Header{Name: "sub/", Typeflag: tar.TypeDir}))
			return s.dir, s.index(t)
		}, ErrFormat},
		{"CRIU tar with a symlink", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, tarOf(t, &tar.Header{Name: "pages-1.img", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}))
			return s.dir, s.index(t)
		}, ErrFormat},
		{"CRIU tar with a device", func(t *testing.T) (string, string) {
			s := newCtrdStore(t, tarOf(t, &tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1}))
			return s.dir, s.index(t)
		}, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, dgst := tc.make(t)
			blobs, err := ContainerdBlobs(dir)
			if err != nil {
				t.Fatal(err)
			}
			c, err := OpenContainerdCheckpoint(blobs, dgst)
			if err == nil {
				err = c.WriteArchive(io.Discard)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestContainerdTestdata reads the real containerd 1.7 checkpoint image in
// testdata/containerd (an OCI layout found by its index.json) and
// verifies the archive it makes: legacy, containerd's, every CRIU image
// check passed.
func TestContainerdTestdata(t *testing.T) {
	dir := testutil.UnpackZstdTar(t, filepath.Join("..", "testdata", "containerd", "ctr-counter.tar.zst"), t.TempDir())
	c, err := ParseContainerdRef(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "counter1" || c.Annotations[ContainerdAnnotationImage] != "localhost/ckpt-counter:ctr" || c.RW.Digest == "" || c.Base.Digest == "" {
		t.Errorf("name %s, annotations %v, rw %v, base %v", c.Name(), c.Annotations, c.RW, c.Base)
	}
	rc := c.Open()
	defer rc.Close()
	rep, err := Verify(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Legacy || len(rep.Problems) > 0 || len(rep.Images) != 1 || rep.Images[0].Processes == 0 {
		t.Fatalf("Verify: legacy %v, problems %v, images %+v", rep.Legacy, rep.Problems, rep.Images)
	}
	if _, err := ParseContainerdRef(dir + "@sha256:" + strings.Repeat("1", 64)); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseContainerdRef of a digest not in the layout = %v, want ErrFormat", err)
	}
}

// TestContainerdNotCheckpoint: an ordinary image's layout and index are
// ErrNotContainerdCheckpoint, told from a bad checkpoint image.
func TestContainerdNotCheckpoint(t *testing.T) {
	s := newCtrdStore(t, nil)
	man := s.blob(t, []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":2}}`))
	list := func(ds ...Descriptor) string {
		b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": ds})
		return s.blob(t, b)
	}
	m := Descriptor{MediaType: mediaTypeOCIManifest, Digest: man, Size: 130}
	multi := list(m, m)
	blobs, _ := ContainerdBlobs(s.dir)
	if _, err := OpenContainerdCheckpoint(blobs, multi); !errors.Is(err, ErrNotContainerdCheckpoint) {
		t.Errorf("an image's index: %v, want ErrNotContainerdCheckpoint", err)
	}
	top, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []Descriptor{m}})
	if err := os.WriteFile(filepath.Join(s.dir, "index.json"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseContainerdRef(s.dir); !errors.Is(err, ErrNotContainerdCheckpoint) {
		t.Errorf("an image's layout: %v, want ErrNotContainerdCheckpoint", err)
	}
	if _, err := ParseContainerdRef(t.TempDir()); !errors.Is(err, ErrNotContainerdCheckpoint) {
		t.Errorf("an empty directory: %v, want ErrNotContainerdCheckpoint", err)
	}
}
