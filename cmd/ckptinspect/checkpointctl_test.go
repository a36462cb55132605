package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/inspect"
	"github.com/ckpt/ckpt/internal/testutil"
)

// TestCheckpointctlReadsV1 runs the real checkpointctl v1.6.0 (the peer
// inspection tool, built from the module proxy) on a v1 archive that ckpt
// exported: docs/FORMAT.md says what it reads of it. It shows the
// container's ID, the checkpoint and root filesystem diff sizes and, with
// --ps-tree, the process tree; it takes a v1 archive for containerd's
// (config.dump is ckpt's own and spec.dump names no engine), so it leaves
// the name, image and creation time empty.
func TestCheckpointctlReadsV1(t *testing.T) {
	if testing.Short() {
		t.Skip("builds checkpointctl")
	}
	goTool := testutil.RequireTool(t, "go")
	bin := t.TempDir()
	cmd := exec.Command(goTool, "install", "github.com/checkpoint-restore/checkpointctl@v1.6.0")
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		testutil.Missing(t, "go install checkpointctl@v1.6.0: %v\n%s", err, out)
	}
	archive := "../../testdata/ckpt/counter.tar.zst"
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := format.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		out, err := exec.Command(filepath.Join(bin, "checkpointctl"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("checkpointctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	show := run("show", archive)
	for _, want := range []string{m.Container.ID[:12], "containerd"} {
		if !strings.Contains(show, want) {
			t.Errorf("checkpointctl show = %q, want it to contain %q", show, want)
		}
	}
	// Both read podman's createdTime as the container's creation; podman's
	// config.dump has no checkpoint time, which checkpointctl leaves out
	// and ckptinspect takes from config.dump's tar header
	// (inspect.TestPodmanTimes).
	pod := "../../testdata/podman/counter.tar.zst"
	ps, err := inspect.Show(context.Background(), pod, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created := ps.Created.Format(time.RFC3339); !strings.Contains(run("show", pod), created) {
		t.Errorf("checkpointctl show %s does not show the creation time %s", pod, created)
	}
	tree := run("inspect", "--ps-tree", archive)
	for _, want := range []string{"ID: " + m.Container.ID, "Checkpoint size:", "Memory pages size:", "Root FS diff size:", "[1]  counter"} {
		if !strings.Contains(tree, want) {
			t.Errorf("checkpointctl inspect --ps-tree = %q, want it to contain %q", tree, want)
		}
	}
}
