package engine

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/cri"
)

// TestIntegrationContainerdCheckpointImage restores a checkpoint image
// made by the real containerd 1.7 (Debian trixie's, the peer unpacked by
// scripts/peer-containerd.sh 1.7, daemon started here with its own root,
// state and socket): `ctr containers checkpoint --task --image --rw` of the
// counter, read from containerd's content store (the digest of `ctr
// images ls`). The counter goes on from the value its rw layer holds,
// with its layer's changes (containerd's whiteout a deletion); a corrupt
// blob is refused and leaves nothing.
func TestIntegrationContainerdCheckpointImage(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	rootfs := workloadTar(t)
	c := cri.StartCtr(t)
	const base, image = "localhost/ckpt-counter:ctr", "localhost/ckpt-counter:checkpoint"
	c.ImportImage(t, cri.OCIImage(t, t.TempDir(), rootfs, base, []string{"/bin/counter"}))
	c.RunCtr(t, base, "counter1", []string{"/bin/counter", "-write-files", "-interval", "100ms"})
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(c.LogPath("counter1"))
		if lastCounter(string(b)) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd's counter did not reach 3: %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Ctr(t, "containers", "checkpoint", "--task", "--image", "--rw", "counter1", image)
	c.Ctr(t, "tasks", "kill", "-s", "KILL", "counter1")
	dgst := c.ImageDigest(t, image)
	ref := TransportContainerd + ":" + c.Root() + "@" + dgst
	if d := os.Getenv("CKPT_CONTAINERD_OUT"); d != "" {
		saveLayout(t, c.Root(), dgst, image, d) // scripts/mkcontainerd.sh keeps it
	}

	_, err := e.RestoreImage(ctx, ref, nil)
	if !errors.Is(err, ErrUnknownImage) || !hasRemedy(err, RemedyImagePull, base) {
		t.Fatalf("RestoreImage without the base image = %v, want ErrUnknownImage with RemedyImagePull of %s", err, base)
	}
	if _, err := e.ImageImport(ctx, rootfs, base); err != nil {
		t.Fatal(err)
	}
	corruptContainerd(t, e, c.Root(), dgst)
	caps := []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"}
	res, err := e.RestoreImage(ctx, ref, &ImportOptions{CapAdd: caps})
	if err != nil {
		t.Fatal(err)
	}
	if res.Container.Name != "counter1" || res.Container.Image != base || !res.Legacy {
		t.Errorf("restored %s of %s (legacy %v), want counter1 of %s, legacy", res.Container.Name, res.Container.Image, res.Legacy, base)
	}
	at := rwCounter(t, c.Root(), dgst)
	if testing.Verbose() {
		t.Logf("containerd's log up to the kill:\n%s", tail(readFile(t, c.LogPath("counter1")), 5))
	}
	log := waitLog(t, e, "counter1", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkFromRW(t, log, at)
	root := res.Container.Rootfs
	if got := readFile(t, filepath.Join(root, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/deleted.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/deleted.txt (containerd's whiteout) still there: %v", err)
	}
}

// corruptContainerd restores copies of the content store at root with one
// byte changed in the CRIU tar, then in the spec: each is refused with
// ErrChecksum and leaves no container.
func corruptContainerd(t *testing.T, e *Engine, root, dgst string) {
	t.Helper()
	blobs, err := format.ContainerdBlobs(root)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := format.OpenContainerdCheckpoint(blobs, dgst)
	if err != nil {
		t.Fatal(err)
	}
	var spec string
	for _, d := range containerdIndex(t, blobs, dgst) {
		if d.MediaType == format.MediaTypeContainerdSpec {
			spec = d.Digest
		}
	}
	for _, victim := range []string{cp.CRIU.Digest, spec} {
		dir := t.TempDir() // an OCI layout's blobs: dir/blobs/sha256
		if err := os.CopyFS(filepath.Join(dir, "blobs"), os.DirFS(blobs)); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(victim, "sha256:"))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/3] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = e.RestoreImage(context.Background(), TransportContainerd+":"+dir+"@"+dgst, &ImportOptions{CapAdd: []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"}})
		if !errors.Is(err, format.ErrChecksum) {
			t.Errorf("RestoreImage with blob %s corrupt = %v, want ErrChecksum", victim, err)
		}
		noLeftovers(t, e, 0)
	}
}

// containerdIndex returns the entries of the index dgst in blobs.
func containerdIndex(t *testing.T, blobs, dgst string) []format.Descriptor {
	t.Helper()
	var idx struct {
		Manifests []format.Descriptor `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(blobs, "sha256", strings.TrimPrefix(dgst, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return idx.Manifests
}

// rwCounter returns the value of /tmp/counter in the rw layer of the
// checkpoint image dgst in the content store or OCI layout dir: the
// counter's value when containerd checkpointed it.
func rwCounter(t *testing.T, dir, dgst string) int {
	t.Helper()
	blobs, err := format.ContainerdBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := format.OpenContainerdCheckpoint(blobs, dgst)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(blobs, "sha256", strings.TrimPrefix(cp.RW.Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no tmp/counter in the rw layer: %v", err)
		}
		if h.Name == "tmp/counter" {
			b, _ := io.ReadAll(tr)
			n, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
}

// TestIntegrationKubeletCheckpointImage restores a Kubernetes-style
// checkpoint image made as the Kubernetes documentation says, with the
// real buildah (Debian 12's, scripts/peer-buildah.sh): `buildah from
// scratch`, `add` of the kubelet's archive (containerd's, uncompressed as
// the kubelet writes it) at /, `config --annotation
// io.kubernetes.cri-o.annotations.checkpoint.name=counter`, `commit`. ckpt
// pulls it from buildah's store (containers-storage:) on one root and from
// `buildah push`'s oci-archive on another, and restores it from each: the
// counter goes on from the archive's log.
func TestIntegrationKubeletCheckpointImage(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	b := testutil.RequireBuildah(t)
	archive := filepath.Join(b.Dir, "checkpoint.tar")
	testutil.UnzstdFile(t, filepath.Join("..", "testdata", "kubelet", "containerd-counter.tar.zst"), archive)
	const image = "localhost/checkpoint-counter:latest"
	ctr := b.Run(t, "from", "--signature-policy", b.Policy, "scratch")
	b.Run(t, "add", ctr, archive, "/")
	b.Run(t, "config", "--annotation="+AnnotationCRIOCheckpointName+"=counter", ctr)
	b.Run(t, "commit", "--signature-policy", b.Policy, ctr, image)
	b.Run(t, "rm", ctr)
	ociArchive := filepath.Join(b.Dir, "checkpoint-image.tar")
	b.Run(t, "push", "--signature-policy", b.Policy, image, "oci-archive:"+ociArchive)
	at := lastCounter(readArchiveLog(t, archive))
	caps := []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"}

	for _, src := range []string{"containers-storage:[" + b.Root + "]" + image, "oci-archive:" + ociArchive} {
		t.Run(strings.Split(src, ":")[0], func(t *testing.T) {
			e := e
			if !strings.HasPrefix(src, TransportStorage) {
				e = realEngine(t)
			}
			img, err := e.ImagePull(ctx, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.ImageImport(ctx, workloadTar(t), cri.SandboxImage); err != nil {
				t.Fatal(err)
			}
			res, err := e.RestoreImage(ctx, img.ID, &ImportOptions{CapAdd: caps})
			if err != nil {
				t.Fatal(err)
			}
			if k := res.Kube; k == nil || k.Pod != "web" || k.Namespace != "shop" || res.Container.Name != "counter" || !res.Legacy {
				t.Fatalf("RestoreImage: kube %+v, name %s, legacy %v; want pod shop/web, container counter, legacy", k, res.Container.Name, res.Legacy)
			}
			log := waitLog(t, e, "counter", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
			checkContinues(t, log, at)
		})
	}
}

// saveLayout writes the checkpoint image dgst of the containerd root into
// out as an OCI layout whose index.json lists it as name: its index, every
// blob the index lists and the base image's manifest, not the base image's
// config and layers (restoring needs the base image in ckpt's store).
func saveLayout(t *testing.T, root, dgst, name, out string) {
	t.Helper()
	blobs, err := format.ContainerdBlobs(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	var size int
	for _, d := range append(containerdIndex(t, blobs, dgst), format.Descriptor{Digest: dgst}) {
		b, err := os.ReadFile(filepath.Join(blobs, "sha256", strings.TrimPrefix(d.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		if d.Digest == dgst {
			size = len(b)
		}
		if err := os.WriteFile(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")), b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.index.v1+json", "digest": dgst, "size": size,
		"annotations": map[string]string{"org.opencontainers.image.ref.name": name},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreContainerdTestdata restores the containerd 1.7 checkpoint
// image kept in testdata/containerd (an OCI layout; no containerd needed),
// named by the layout alone: the counter goes on from its rw layer's
// value.
func TestRestoreContainerdTestdata(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	dir := testutil.UnpackZstdTar(t, filepath.Join("..", "testdata", "containerd", "ctr-counter.tar.zst"), t.TempDir())
	if _, err := e.ImageImport(ctx, workloadTar(t), "localhost/ckpt-counter:ctr"); err != nil {
		t.Fatal(err)
	}
	res, err := e.RestoreImage(ctx, TransportContainerd+":"+dir, &ImportOptions{Name: "copy", CapAdd: []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Container.Name != "copy" {
		t.Errorf("restored as %s, want copy", res.Container.Name)
	}
	var idx struct {
		Manifests []format.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "index.json"))), &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	at := rwCounter(t, dir, idx.Manifests[0].Digest)
	log := waitLog(t, e, "copy", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkFromRW(t, log, at)

	// Exported by ckpt (containerd's /run tmpfs now in ckpt's record) and
	// imported on a second root, it goes on again.
	if !slices.ContainsFunc(res.Container.Mounts, func(m Mount) bool { return m.Type == "tmpfs" && m.Destination == "/run" }) {
		t.Errorf("mounts %+v, want containerd's tmpfs at /run", res.Container.Mounts)
	}
	archive := filepath.Join(t.TempDir(), "copy.tar.zst")
	if _, err := e.Export(ctx, "copy", archive, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}); err != nil {
		t.Fatal(err)
	}
	other := realEngine(t)
	if _, err := other.ImageImport(ctx, workloadTar(t), "localhost/ckpt-counter:ctr"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Import(ctx, archive, &ImportOptions{CapAdd: []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"}}); err != nil {
		t.Fatal(err)
	}
	at = lastCounter(logText(extractMember(t, archive, format.ContainerLogName)))
	log = waitLog(t, other, "copy", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
}

// checkFromRW checks that the restored counter's log starts where the rw
// layer's /tmp/counter (at) says and goes on without a gap: at+1, or at
// if the dump caught the counter between writing the file and printing.
func checkFromRW(t *testing.T, log string, at int) {
	t.Helper()
	cs := counters(log)
	if len(cs) == 0 || cs[0] != at+1 && cs[0] != at {
		t.Fatalf("restored counter starts %v, want %d (the rw layer's /tmp/counter is %d)", cs[:min(len(cs), 3)], at+1, at)
	}
	checkContinues(t, log, cs[0])
}

// TestRecordRunTmpfs: ckpt's own record keeps a tmpfs mount at /run only
// (containerd's, carried by a restored containerd checkpoint); one
// anywhere else is refused as a bad archive.
func TestRecordRunTmpfs(t *testing.T) {
	for _, tc := range []struct {
		dest string
		ok   bool
	}{{"/run", true}, {"/run/", true}, {"/etc", false}, {"/", false}} {
		staging := t.TempDir()
		cfg, err := json.Marshal(&Container{Name: "c", Command: []string{"/bin/counter"}, Mounts: []Mount{{Type: "tmpfs", Destination: tc.dest}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(staging, format.ConfigName), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		rec, err := readRecord(staging, false)
		switch {
		case tc.ok && (err != nil || !slices.Equal(rec.Extra, []string{"/run"})):
			t.Errorf("tmpfs at %s: %v, extra %v; want /run kept", tc.dest, err, rec)
		case !tc.ok && !errors.Is(err, format.ErrFormat):
			t.Errorf("tmpfs at %s: %v, want ErrFormat", tc.dest, err)
		}
	}
}
