package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/cri"
)

// TestImportContainerdCRI restores a real containerd CRI checkpoint
// archive, the kubelet's forensic checkpoint, made by containerd 2.x (the
// peer, scripts/peer-containerd.sh) of the counter in a pod: the base
// image must be imported first, containerd's extra capabilities granted,
// then the counter goes on from where containerd took it, with its layer
// changes (containerd's OCI whiteout included) and its log, as a
// standalone container named after its Kubernetes name.
func TestImportContainerdCRI(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	rootfs := workloadTar(t)
	c := cri.Start(t)
	c.ImportImage(t, cri.OCIImage(t, t.TempDir(), rootfs, cri.SandboxImage, []string{"/bin/counter", "-file", "", "-interval", "1h"}))
	pod := cri.Pod{Name: "web", Namespace: "shop", UID: "5f0c1a2e-0000-4000-8000-000000000002"}
	id := c.RunContainer(t, pod, "counter", cri.SandboxImage, []string{"/bin/counter", "-write-files"})
	deadline := time.Now().Add(20 * time.Second)
	for lastCounter(logText([]byte(c.Logs(t, id)))) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("containerd's counter did not reach 3: %q", c.Logs(t, id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := t.TempDir()
	if d := os.Getenv("CKPT_KUBELET_OUT"); d != "" {
		out = d // scripts/mkkubelet.sh keeps the archive
	}
	archive := filepath.Join(out, cri.ArchiveName(pod, "counter", time.Now()))
	c.Checkpoint(t, id, archive)

	_, err := e.Import(ctx, archive, nil)
	if !errors.Is(err, ErrUnknownImage) || !hasRemedy(err, RemedyImagePull, cri.SandboxImage) {
		t.Fatalf("Import without the base image = %v, want ErrUnknownImage with RemedyImagePull of %s", err, cri.SandboxImage)
	}
	if _, err := e.ImageImport(ctx, rootfs, cri.SandboxImage); err != nil {
		t.Fatal(err)
	}
	_, err = e.Import(ctx, archive, nil)
	if !errors.Is(err, ErrHostResource) || !hasRemedy(err, RemedyCapAdd, "") {
		t.Fatalf("Import without --cap-add = %v, want ErrHostResource with RemedyCapAdd", err)
	}
	for _, c := range []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"} {
		if !strings.Contains(err.(*RemedyError).Arg, c) {
			t.Errorf("RemedyCapAdd names %q, want %s among them", err.(*RemedyError).Arg, c)
		}
	}
	noLeftovers(t, e, 0)
	res, err := e.Import(ctx, archive, &ImportOptions{CapAdd: []string{"net_raw", "CAP_MKNOD", "audit_write"}})
	if err != nil {
		t.Fatal(err)
	}
	k := res.Kube
	if k == nil || k.Engine != format.EngineContainerd || k.Pod != "web" || k.Namespace != "shop" || k.Container != "counter" {
		t.Fatalf("ImportResult.Kube = %+v, want containerd's pod shop/web, container counter", k)
	}
	if res.Container.Name != "counter" || !slices.Contains(res.Container.CapAdd, "CAP_NET_RAW") {
		t.Errorf("restored container name %q caps %v, want counter with CAP_NET_RAW", res.Container.Name, res.Container.CapAdd)
	}
	if lost := strings.Join(res.PodLost, "; "); !strings.Contains(lost, "network") || !strings.Contains(lost, "other containers") {
		t.Errorf("PodLost = %q, want the pod's network namespace and other containers", lost)
	}
	at := lastCounter(readArchiveLog(t, archive))
	log := waitLog(t, e, "counter", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
	root := res.Container.Rootfs
	if got := readFile(t, filepath.Join(root, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "etc/modified.txt")); got != "modified by counter\n" {
		t.Errorf("/etc/modified.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/deleted.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/deleted.txt (containerd's whiteout) still there: %v", err)
	}
}

// readArchiveLog returns the text of the CRI log member of a kubelet
// archive.
func readArchiveLog(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := format.Extract(context.Background(), f, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	zr.Close()
	for _, n := range []string{format.CRILogName, format.CRIOLogName} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			return logText(b)
		}
	}
	t.Fatalf("%s has no container log", archive)
	return ""
}

// TestImportCRIOLayout restores a CRI-O-layout archive built (by
// cri.BuildCRIO; CRI-O is not packaged here) from the real CRIU images of
// a ckpt checkpoint, on a second engine root: the container goes on as a
// standalone container named after its Kubernetes name.
func TestImportCRIOLayout(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	ctr, err := e.Run(ctx, "workload", &RunOptions{Name: "src", Command: []string{"/bin/counter", "-write-files"}})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "src", "the counter", func(l string) bool { return lastCounter(l) >= 3 })
	v1 := filepath.Join(t.TempDir(), "src.tar.zst")
	if _, err := e.Export(ctx, "src", v1, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := os.Open(v1)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := format.Extract(ctx, f, dir, nil)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	zr.Close()
	pod := cri.Pod{Name: "web", Namespace: "shop", UID: "5f0c1a2e-0000-4000-8000-000000000003"}
	out := t.TempDir()
	if d := os.Getenv("CKPT_KUBELET_OUT"); d != "" {
		out = d // scripts/mkkubelet.sh keeps the archive
	}
	archive := filepath.Join(out, cri.ArchiveName(pod, "counter", time.Now()))
	cri.BuildCRIO(t, cri.CRIOSource{Dir: dir, Pod: pod, Container: "counter", ID: ctr.ID, Image: "workload", Created: ctr.CreatedAt}, archive)
	at := lastCounter(readArchiveLog(t, archive))

	other := realEngine(t)
	res, err := other.Import(ctx, archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := res.Kube; k == nil || k.Engine != format.EngineCRIO || k.Pod != "web" || k.Namespace != "shop" || k.Container != "counter" {
		t.Fatalf("ImportResult.Kube = %+v, want CRI-O's pod shop/web, container counter", k)
	}
	if !res.Legacy || res.Container.Name != "counter" {
		t.Errorf("Import legacy=%v name=%s, want a legacy archive restored as counter", res.Legacy, res.Container.Name)
	}
	log := waitLog(t, other, "counter", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
	if got := readFile(t, filepath.Join(res.Container.Rootfs, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(res.Container.Rootfs, "etc/deleted.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/deleted.txt (deleted.files) still there: %v", err)
	}
}

// TestImportKubeletTestdata restores the kubelet archives kept in
// testdata/kubelet (no containerd needed): each goes on from where it was
// taken, as a standalone container named counter.
func TestImportKubeletTestdata(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, image string
		capAdd      []string
	}{
		{"containerd-counter.tar.zst", cri.SandboxImage, []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"}},
		{"crio-counter.tar.zst", "workload", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			e := realEngine(t)
			ctx := context.Background()
			if tc.image != "workload" {
				if _, err := e.ImageImport(ctx, workloadTar(t), tc.image); err != nil {
					t.Fatal(err)
				}
			}
			archive := filepath.Join("..", "testdata", "kubelet", tc.file)
			res, err := e.Import(ctx, archive, &ImportOptions{CapAdd: tc.capAdd})
			if err != nil {
				t.Fatal(err)
			}
			if k := res.Kube; k == nil || k.Pod != "web" || k.Namespace != "shop" || res.Container.Name != "counter" {
				t.Fatalf("Import: kube %+v, name %s; want pod shop/web, container counter", k, res.Container.Name)
			}
			at := lastCounter(readArchiveLog(t, archive))
			log := waitLog(t, e, "counter", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
			checkContinues(t, log, at)
		})
	}
}
