package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// ociLayer writes a gzip-compressed tar of the named entries (a name
// ending in "/" is a directory) and returns its path.
func ociLayer(t *testing.T, names ...string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rootfs-diff.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOCIWhiteouts checks containerd's rootfs diff reading: whiteouts
// become deleted paths (an opaque directory the directory itself), a
// top-level opaque whiteout is refused, and the stream Apply gets has no
// whiteout left.
func TestOCIWhiteouts(t *testing.T) {
	p := ociLayer(t, "added.txt", "etc/", "etc/.wh.deleted.txt", "var/cache/", "var/cache/.wh..wh..opq", "var/cache/new", ".wh.gone")
	got, err := ociWhiteouts(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"etc/deleted.txt", "var/cache", "gone"}; !slices.Equal(got, want) {
		t.Errorf("ociWhiteouts = %q, want %q", got, want)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc := withoutWhiteouts(f)
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if want := []string{"added.txt", "etc/", "var/cache/", "var/cache/new"}; !slices.Equal(names, want) {
		t.Errorf("withoutWhiteouts kept %q, want %q", names, want)
	}
	if _, err := ociWhiteouts(ociLayer(t, ".wh..wh..opq")); !errors.Is(err, format.ErrFormat) {
		t.Errorf("ociWhiteouts of a top-level opaque whiteout = %v, want ErrFormat", err)
	}
}

// TestCheckCapAdd checks the capability grant of an import: podman's
// spellings are accepted, an unknown name is ErrOptions, a needed one not
// granted is ErrHostResource with RemedyCapAdd naming it.
func TestCheckCapAdd(t *testing.T) {
	need := []string{"CAP_CHOWN", "CAP_NET_RAW", "CAP_MKNOD"}
	got, err := checkCapAdd(need, []string{"net_raw", "CAP_MKNOD", "NET_RAW"})
	if err != nil || !slices.Equal(got, []string{"CAP_NET_RAW", "CAP_MKNOD"}) {
		t.Errorf("checkCapAdd granted = %q, %v; want CAP_NET_RAW, CAP_MKNOD", got, err)
	}
	if _, err := checkCapAdd(nil, []string{"CAP_FLY"}); !errors.Is(err, ErrOptions) {
		t.Errorf("checkCapAdd of an unknown capability = %v, want ErrOptions", err)
	}
	_, err = checkCapAdd(need, []string{"CAP_MKNOD"})
	if !errors.Is(err, ErrHostResource) || !hasRemedy(err, RemedyCapAdd, "CAP_NET_RAW") {
		t.Errorf("checkCapAdd without CAP_NET_RAW = %v, want RemedyCapAdd CAP_NET_RAW", err)
	}
	if _, err := checkCapAdd([]string{"CAP_CHOWN", "CAP_KILL"}, nil); err != nil {
		t.Errorf("checkCapAdd of default capabilities = %v", err)
	}
}

// TestReadKubeletRecord checks what an import takes from a kubelet
// archive: the Kubernetes container name, the image ID without its
// digest algorithm, the kubelet's mounts provided again, the service
// account token dropped, a volume as a bind mount to grant, the
// capabilities, and what of the pod is lost.
func TestReadKubeletRecord(t *testing.T) {
	staging := t.TempDir()
	spec := `{"process":{"args":["/bin/counter"],"env":["PATH=/bin","HOSTNAME=web"],"cwd":"/",
		"capabilities":{"bounding":["CAP_CHOWN","CAP_NET_RAW"]}},
	"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/9/ns/net"},{"type":"ipc","path":"/proc/9/ns/ipc"}]},
	"mounts":[{"destination":"/etc/hosts","type":"bind","source":"/var/lib/kubelet/pods/u/etc-hosts"},
		{"destination":"/dev/termination-log","type":"bind","source":"/var/lib/kubelet/pods/u/containers/c/x"},
		{"destination":"/var/run/secrets/kubernetes.io/serviceaccount","type":"bind","source":"/var/lib/kubelet/pods/u/volumes/sa","options":["ro"]},
		{"destination":"/data","type":"bind","source":"/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/data"},
		{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup"}],
	"annotations":{"io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-name":"web","io.kubernetes.cri.sandbox-namespace":"shop"}}`
	if err := os.WriteFile(filepath.Join(staging, format.SpecName), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `{"id":"` + strings.Repeat("ab", 32) + `","name":"app_web_shop_u_0","rootfsImage":"docker.io/library/app:1","rootfsImageRef":"sha256:` + strings.Repeat("cd", 32) + `","rootfsImageName":"docker.io/library/app:1"}`
	if err := os.WriteFile(filepath.Join(staging, format.ConfigName), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord(staging, true)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OCILayer {
		t.Error("a containerd record's rootfs diff is not taken for an OCI layer")
	}
	if rec.Kube == nil || rec.Kube.Engine != format.EngineContainerd || rec.Name != "app" || rec.ImageID != strings.Repeat("cd", 32) || rec.Image != "docker.io/library/app:1" {
		t.Errorf("record kube=%+v name=%q image=%q id=%q", rec.Kube, rec.Name, rec.Image, rec.ImageID)
	}
	if want := []string{"/etc/hosts", "/dev/termination-log", "/sys/fs/cgroup"}; !slices.Equal(rec.Extra, want) {
		t.Errorf("Extra = %q, want %q", rec.Extra, want)
	}
	if want := []string{"/var/run/secrets/kubernetes.io/serviceaccount"}; !slices.Equal(rec.Dropped, want) {
		t.Errorf("Dropped = %q, want %q", rec.Dropped, want)
	}
	if len(rec.Binds) != 1 || rec.Binds[0].Destination != "/data" {
		t.Errorf("Binds = %+v, want /data only", rec.Binds)
	}
	if !slices.Equal(rec.Caps, []string{"CAP_CHOWN", "CAP_NET_RAW"}) || slices.Contains(rec.Env, "HOSTNAME=web") {
		t.Errorf("Caps = %q Env = %q", rec.Caps, rec.Env)
	}
	lost := strings.Join(rec.Lost, "; ")
	for _, w := range []string{"network, ipc namespaces", "other containers", "service account token"} {
		if !strings.Contains(lost, w) {
			t.Errorf("Lost = %q, want it to name %q", lost, w)
		}
	}
}
