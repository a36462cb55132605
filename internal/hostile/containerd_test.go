package hostile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
)

// ctrdLayout is an OCI layout holding a containerd checkpoint image (the
// one of testdata/containerd, changed by a case), as `ckpt restore
// containerd:DIR` reads it.
type ctrdLayout struct {
	dir   string
	index map[string]any // the checkpoint image's index
}

func (l *ctrdLayout) blobPath(d string) string {
	return filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

// entry returns the index entry of mediaType and its blob.
func (l *ctrdLayout) entry(t *testing.T, mediaType string) (map[string]any, []byte) {
	t.Helper()
	for _, e := range l.index["manifests"].([]any) {
		m := e.(map[string]any)
		if m["mediaType"] == mediaType {
			b, err := os.ReadFile(l.blobPath(m["digest"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			return m, b
		}
	}
	t.Fatalf("no %s entry", mediaType)
	return nil, nil
}

// put stores data as a blob and returns its digest.
func (l *ctrdLayout) put(t *testing.T, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if err := os.WriteFile(l.blobPath(d), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// replace makes data the blob of the mediaType entry, with its digest and
// size: every digest still checks out.
func (l *ctrdLayout) replace(t *testing.T, mediaType string, data []byte) {
	t.Helper()
	m, _ := l.entry(t, mediaType)
	m["digest"], m["size"] = l.put(t, data), len(data)
}

// commit writes the index and an index.json naming it alone.
func (l *ctrdLayout) commit(t *testing.T) {
	t.Helper()
	b, err := json.Marshal(l.index)
	if err != nil {
		t.Fatal(err)
	}
	d := l.put(t, b)
	top, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": len(b)}}})
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), top, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newCtrdLayout unpacks testdata/containerd's image into a new directory.
func newCtrdLayout(t *testing.T) *ctrdLayout {
	t.Helper()
	l := &ctrdLayout{dir: testutil.UnpackZstdTar(t, "../../testdata/containerd/ctr-counter.tar.zst", t.TempDir())}
	var top struct {
		Manifests []format.Descriptor `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil || len(top.Manifests) != 1 {
		t.Fatalf("testdata index.json: %v", err)
	}
	b, err = os.ReadFile(l.blobPath(top.Manifests[0].Digest))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &l.index); err != nil {
		t.Fatal(err)
	}
	return l
}

// rewriteTar returns the tar data with edit applied to each entry's
// header and contents (edit may return nil to drop it) and extra entries
// appended.
func rewriteTar(t *testing.T, data []byte, edit func(h *tar.Header, b []byte) (*tar.Header, []byte), extra ...tarEntry) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(data))
	write := func(h *tar.Header, b []byte) {
		h.Size = int64(len(b))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil && h.Typeflag == tar.TypeReg {
			t.Fatal(err)
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if edit != nil {
			if h, b = edit(h, b); h == nil {
				continue
			}
		}
		write(h, b)
	}
	for _, e := range extra {
		write(e.h, e.b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

type tarEntry struct {
	h *tar.Header
	b []byte
}

// gzipTar and gunzip convert the rw layer.
func gzipTar(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gunzip(t *testing.T, data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ctrdCase is one hostile containerd checkpoint image: build changes the
// layout (and re-digests what it changed unless the case is about a
// digest); restore must fail naming want.
type ctrdCase struct {
	name  string
	build func(t *testing.T, l *ctrdLayout)
	want  string
}

const criuTar = format.MediaTypeContainerdCRIU

func ctrdCases() []ctrdCase {
	criu := func(edit func(h *tar.Header, b []byte) (*tar.Header, []byte), extra ...tarEntry) func(t *testing.T, l *ctrdLayout) {
		return func(t *testing.T, l *ctrdLayout) {
			_, b := l.entry(t, criuTar)
			l.replace(t, criuTar, rewriteTar(t, b, edit, extra...))
		}
	}
	rw := func(extra ...tarEntry) func(t *testing.T, l *ctrdLayout) {
		return func(t *testing.T, l *ctrdLayout) {
			const mt = "application/vnd.oci.image.layer.v1.tar+gzip"
			_, b := l.entry(t, mt)
			l.replace(t, mt, gzipTar(t, rewriteTar(t, gunzip(t, b), nil, extra...)))
		}
	}
	spec := func(edit func(s map[string]any)) func(t *testing.T, l *ctrdLayout) {
		return func(t *testing.T, l *ctrdLayout) {
			_, b := l.entry(t, format.MediaTypeContainerdSpec)
			i := bytes.IndexByte(b, '{')
			var s map[string]any
			if err := json.Unmarshal(b[i:], &s); err != nil {
				t.Fatal(err)
			}
			edit(s)
			js, _ := json.Marshal(s)
			typ := "types.containerd.io/opencontainers/runtime-spec/1/Spec"
			any := append([]byte{0x0a, byte(len(typ))}, typ...)
			any = append(any, 0x12)
			for n := len(js); ; n >>= 7 {
				if n < 0x80 {
					any = append(any, byte(n))
					break
				}
				any = append(any, byte(n)|0x80)
			}
			l.replace(t, format.MediaTypeContainerdSpec, append(any, js...))
		}
	}
	reg := func(name string, b []byte) tarEntry {
		return tarEntry{&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, b}
	}
	return []ctrdCase{
		{"CRIU tar member with ../", criu(nil, reg("../../etc/cron.d/evil", []byte("* * * * * root id\n"))), "only files at its top level"},
		{"CRIU tar symlink", criu(nil, tarEntry{&tar.Header{Name: "evil.img", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}, nil}), "only files at its top level"},
		{"CRIU tar device", criu(nil, tarEntry{&tar.Header{Name: "mem.img", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}, nil}), "only files at its top level"},
		{"CRIU tar without pstree.img", criu(func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == "pstree.img" {
				return nil, nil
			}
			return h, b
		}), "bad CRIU image"},
		{"CRIU tar changed, digest kept", func(t *testing.T, l *ctrdLayout) {
			m, b := l.entry(t, criuTar)
			b[len(b)/2] ^= 1
			if err := os.WriteFile(l.blobPath(m["digest"].(string)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "does not match its digest"},
		{"rw layer with ../", rw(reg("../../../../etc/evil", []byte("x"))), "insecure path"},
		{"rw layer device node", rw(tarEntry{&tar.Header{Name: "dev/mem2", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}, nil}), "special file not allowed"},
		{"spec binds the host's /", spec(func(s map[string]any) {
			s["mounts"] = append(s["mounts"].([]any), map[string]any{"destination": "/host", "type": "bind", "source": "/", "options": []string{"rbind"}})
		}), "-v"},
		{"spec in the host's network", spec(func(s map[string]any) {
			linux := s["linux"].(map[string]any)
			var ns []any
			for _, n := range linux["namespaces"].([]any) {
				if n.(map[string]any)["type"] != "network" {
					ns = append(ns, n)
				}
			}
			linux["namespaces"] = ns
		}), "--network host"},
		{"huge spec", spec(func(s map[string]any) { s["hostname"] = strings.Repeat("x", 2<<20) }), "too large"},
		{"too many entries", func(t *testing.T, l *ctrdLayout) {
			ms := l.index["manifests"].([]any)
			for range format.MaxContainerdEntries {
				ms = append(ms, ms[2])
			}
			l.index["manifests"] = ms
		}, "at most 64"},
	}
}

// TestHostileContainerd restores hostile containerd checkpoint images
// (`ckpt restore containerd:DIR`, the ckpt binary) made from
// testdata/containerd's, their digests made to check out where the case is
// not about a digest: each is refused naming the problem and leaves
// nothing, and nothing of the host changes. The image as kept restores.
func TestHostileContainerd(t *testing.T) {
	if testing.Short() {
		t.Skip("real CRIU; slow")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	rootfs, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(rootfs); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	b := buildBins(t)
	h := newHost(t, b, t.TempDir())
	h.must(t, "image", "import", rootfs, "localhost/ckpt-counter:ctr")
	t.Cleanup(func() { h.ckpt(t, "image", "rm", "localhost/ckpt-counter:ctr") })
	caps := []string{"--cap-add", "CAP_NET_RAW,CAP_MKNOD,CAP_AUDIT_WRITE"}
	s := takeSentinels(t)
	defer s.checkMntns(t)
	t.Run("as kept", func(t *testing.T) {
		l := newCtrdLayout(t)
		l.commit(t)
		h.must(t, append([]string{"restore"}, append(caps, "containerd:"+l.dir)...)...)
		h.removeAll(t)
	})
	for _, tc := range ctrdCases() {
		t.Run(tc.name, func(t *testing.T) {
			l := newCtrdLayout(t)
			tc.build(t, l)
			l.commit(t)
			r := h.ckpt(t, append([]string{"restore"}, append(caps, "containerd:"+l.dir)...)...)
			// (The layout's path holds the case's name: match past it.)
			if _, msg, _ := strings.Cut(r.stderr, l.dir); r.code != 1 || !strings.Contains(msg, tc.want) {
				t.Errorf("restore = exit %d, want 1 naming %q\n%s", r.code, tc.want, r.stderr)
			}
			t.Logf("restore: exit %d; %s", r.code, firstLine(r.stderr))
			h.removeAll(t)
			h.checkClean(t)
			s.check(t)
		})
	}
}
