package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

// TestCLIRestoreContainerd restores the containerd 1.7 checkpoint image of
// testdata/containerd with `ckpt restore containerd:DIR`: the missing base
// image and the missing capabilities are each named with the command or
// flag that fixes them, then the counter goes on as counter1.
func TestCLIRestoreContainerd(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	dir := t.TempDir()
	layout := testutil.UnpackZstdTar(t, "../../testdata/containerd/ctr-counter.tar.zst", filepath.Join(dir, "layout"))
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	t.Cleanup(func() {
		ckpt(t, append(append([]string{}, g...), "rm", "-f", "counter1")...)
		e := &engine.Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
		_ = e.Close()
	})
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return ckpt(t, append(append([]string{}, g...), args...)...)
	}
	ref := "containerd:" + layout
	if code, _, errOut := run("restore", ref); code == 0 || !strings.Contains(errOut, "ckpt image pull localhost/ckpt-counter:ctr") {
		t.Errorf("restore without the base image = exit %d, stderr %q; want the image pull named", code, errOut)
	}
	if code, _, errOut := run("image", "import", tarPath, "localhost/ckpt-counter:ctr"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := run("restore", ref); code == 0 || !strings.Contains(errOut, "--cap-add") {
		t.Errorf("restore without --cap-add = exit %d, stderr %q; want --cap-add named", code, errOut)
	}
	if code, _, errOut := run("restore", "containerd:"+filepath.Join(dir, "nothing")); code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 || !strings.Contains(errOut, "no blobs/sha256") {
		t.Errorf("restore of a directory without a store = exit %d, stderr %q; want one line saying so", code, errOut)
	}
	code, out, errOut := run("restore", "--cap-add", "CAP_NET_RAW,CAP_MKNOD,CAP_AUDIT_WRITE", ref)
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("restore containerd: = exit %d, stdout %q, stderr %q; want the new container's ID", code, out, errOut)
	}
	waitFor(t, func() bool {
		_, logs, _ := run("logs", "counter1")
		return strings.Count(logs, "counter ") >= 3
	})
}
