package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

// TestCLICheckpointImage moves a container between two engine roots as a
// checkpoint image: checkpoint --create-image and image save on one,
// image load and restore --name IMAGE on the other; the counter continues
// there. restore of an image that is no checkpoint is refused saying so.
func TestCLICheckpointImage(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	dir := t.TempDir()
	host := func(n string) func(args ...string) string {
		g := []string{"--root", filepath.Join(dir, n, "root"), "--runroot", filepath.Join(dir, n, "run")}
		t.Cleanup(func() {
			ckpt(t, append(append([]string{}, g...), "rm", "-f", "m")...)
			ckpt(t, append(append([]string{}, g...), "rm", "-f", "m2")...)
			e := &engine.Engine{Root: filepath.Join(dir, n, "root"), RunRoot: filepath.Join(dir, n, "run")}
			_ = e.Close()
		})
		return func(args ...string) string {
			t.Helper()
			code, out, errOut := ckpt(t, append(append([]string{}, g...), args...)...)
			if code != 0 {
				t.Fatalf("ckpt %s %q = exit %d\nstderr: %s", n, args, code, errOut)
			}
			return out
		}
	}
	a, b := host("a"), host("b")
	a("image", "import", tarPath, "workload")
	b("image", "import", tarPath, "workload")
	a("run", "-d", "--name", "m", "workload", "/bin/counter", "-interval", "50ms")
	waitFor(t, func() bool { return strings.Contains(a("logs", "m"), "counter 3\n") })
	if out := a("checkpoint", "--create-image", "ckpt-m", "m"); out != "m\n" {
		t.Errorf("checkpoint --create-image printed %q, want the container", out)
	}
	file := filepath.Join(dir, "m.oci.tar")
	a("image", "save", "--format", "oci-archive", "-o", file, "ckpt-m")
	b("image", "load", "-i", file)
	id := strings.TrimSpace(b("restore", "--name", "m2", "ckpt-m"))
	if len(id) != 64 {
		t.Fatalf("restore --name m2 IMAGE printed %q, want the new container's ID", id)
	}
	at := strings.Count(a("logs", "m"), "\n")
	waitFor(t, func() bool { return strings.Count(b("logs", "m2"), "\n") > at+2 })

	gb := []string{"--root", filepath.Join(dir, "b", "root"), "--runroot", filepath.Join(dir, "b", "run")}
	code, _, errOut := ckpt(t, append(gb, "restore", "--name", "m3", "workload")...)
	if code == 0 || !strings.Contains(errOut, "not a checkpoint image") {
		t.Errorf("restore of a base image = exit %d, stderr %q; want it refused as not a checkpoint image", code, errOut)
	}
}
