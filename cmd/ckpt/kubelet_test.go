package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

// TestCLIImportKubelet restores the real containerd CRI archive of
// testdata/kubelet with the CLI: refused until its image is imported and
// containerd's capabilities are granted, each time saying what to run;
// then restored with a note of what of the pod is lost.
func TestCLIImportKubelet(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	archive := "../../testdata/kubelet/containerd-counter.tar.zst"
	dir := t.TempDir()
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	ck := func(args ...string) (int, string, string) {
		t.Helper()
		return ckpt(t, append(append([]string{}, g...), args...)...)
	}
	t.Cleanup(func() {
		ck("rm", "-f", "counter")
		e := &engine.Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
		_ = e.ImageRemove(context.Background(), "localhost/ckpt-counter:cri")
		_ = e.Close()
	})
	steps := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"restore", "-i", archive}, exitFailure, "fetch it first with `ckpt image pull localhost/ckpt-counter:cri` (or `ckpt image pull containers-storage:localhost/ckpt-counter:cri` for podman's, `ckpt image load -i FILE`, `ckpt image import ROOTFS.tar localhost/ckpt-counter:cri`)"},
		{[]string{"image", "import", tarPath, "localhost/ckpt-counter:cri"}, 0, ""},
		{[]string{"restore", "-i", archive}, exitFailure, "grant them with --cap-add CAP_"},
		{[]string{"restore", "-i", archive, "--cap-add", "CAP_NET_RAW,CAP_MKNOD,CAP_AUDIT_WRITE"}, 0,
			"note: container counter of pod shop/web (containerd) restored as a standalone container; not restored: the pod's ipc, uts, network namespaces"},
	}
	for _, s := range steps {
		code, _, errOut := ck(s.args...)
		if code != s.code || !strings.Contains(errOut, s.stderr) {
			t.Fatalf("ckpt %q = exit %d, stderr:\n%s\nwant exit %d and %q", s.args, code, errOut, s.code, s.stderr)
		}
	}
}
