package cri

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckpointContainer makes a real containerd CRI checkpoint archive of
// the counter workload and checks it has the members containerd's
// CheckpointContainer writes. CKPT_KUBELET_OUT=DIR keeps the archive there
// (scripts/mkkubelet.sh).
func TestCheckpointContainer(t *testing.T) {
	c := Start(t)
	rootfs := filepath.Join("..", "..", "..", "testdata", "workloads", "bin", "rootfs.tar")
	if _, err := os.Stat(rootfs); err != nil {
		t.Fatalf("%v (run `make workloads`)", err)
	}
	c.ImportImage(t, OCIImage(t, t.TempDir(), rootfs, SandboxImage, []string{"/bin/counter", "-file", "", "-interval", "1h"}))
	pod := Pod{Name: "counter", Namespace: "default", UID: "5f0c1a2e-0000-4000-8000-000000000001"}
	id := c.RunContainer(t, pod, "counter", SandboxImage, []string{"/bin/counter", "-write-files"})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.Logs(t, id), "counter 5\n") {
		if time.Now().After(deadline) {
			t.Fatalf("the counter did not reach 5: %q", c.Logs(t, id))
		}
		time.Sleep(100 * time.Millisecond)
	}
	dir := t.TempDir()
	if out := os.Getenv("CKPT_KUBELET_OUT"); out != "" {
		dir = out
	}
	archive := filepath.Join(dir, ArchiveName(pod, "counter", time.Now()))
	c.Checkpoint(t, id, archive)
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%c %8d %s", h.Typeflag, h.Size, h.Name)
		seen[h.Name] = true
	}
	for _, want := range []string{"config.dump", "spec.dump", "status", "status.dump", "rootfs-diff.tar", "checkpoint/pstree.img", "container.log"} {
		if !seen[want] {
			t.Errorf("archive has no %s", want)
		}
	}
}
