package engine

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
)

// TestIntegrationPodmanDefaults restores archives podman made of a
// container run with podman's defaults (only the rlimits this machine
// cannot grant lowered), from podman 4.3 (Debian 12) and podman 5.4
// (Debian 13): podman 4's extra capabilities are refused until granted
// with CapAdd, and its extra masked path (/sys/dev/block) is masked again.
func TestIntegrationPodmanDefaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		podman func(testing.TB) testutil.Podman
		extra  []string
		capAdd []string
	}{
		{"podman4", testutil.RequirePodman, []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"},
			[]string{"NET_RAW", "MKNOD", "AUDIT_WRITE"}},
		{"podman5", testutil.RequirePodman5, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := realEngine(t)
			archive := podmanCounterArchive(t, c.podman(t), c.extra)
			ctx := context.Background()
			if _, err := e.ImageImport(ctx, workloadTar(t), "localhost/w:1"); err != nil {
				t.Fatal(err)
			}
			_, err := e.Import(ctx, archive, nil)
			if len(c.capAdd) > 0 {
				if !errors.Is(err, ErrHostResource) || !hasRemedy(err, RemedyCapAdd, "") {
					t.Fatalf("import without --cap-add = %v, want the capabilities named", err)
				}
				_, err = e.Import(ctx, archive, &ImportOptions{CapAdd: c.capAdd})
			}
			if err != nil {
				t.Fatal(err)
			}
			log := waitLog(t, e, "pd", "the counter to go on", func(l string) bool { return lastCounter(l) >= 8 })
			if cs := counters(log); len(cs) == 0 || cs[0] != 1 {
				t.Fatalf("counter did not go on from podman's log:\n%s", tail(log, 5))
			}
			for i, n := range counters(log) {
				if n != i+1 {
					t.Fatalf("counter jumps at %d: %v", i, counters(log))
				}
			}
		})
	}
}

// podmanCounterArchive has podman run the counter as "pd" from the
// workload imported as localhost/w:1 in a private store, checkpoints it
// with -e and returns the archive.
func podmanCounterArchive(t *testing.T, p testutil.Podman, runFlags []string) string {
	t.Helper()
	podman, dir := podmanCounter(t, p, runFlags)
	archive := filepath.Join(dir, "pd.tar.zst")
	podman("container", "checkpoint", "-e", archive, "pd")
	return archive
}

// podmanCounter has podman run the counter as "pd" from the workload
// imported as localhost/w:1 in a private store under dir (its graph root
// dir/graph) and returns a function running podman on that store.
func podmanCounter(t *testing.T, p testutil.Podman, runFlags []string) (podman func(args ...string) string, dir string) {
	t.Helper()
	dir = t.TempDir()
	// podman 4.3 refuses a runroot path of over 50 characters.
	runroot, err := os.MkdirTemp("", "prun")
	if err != nil {
		t.Fatal(err)
	}
	global := []string{"--root", filepath.Join(dir, "graph"), "--runroot", runroot, "--tmpdir", filepath.Join(runroot, "tmp"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
	podman = func(args ...string) string {
		t.Helper()
		cmd := exec.Command(p.Path, append(append([]string{}, global...), args...)...)
		cmd.Env = append(os.Environ(), "PODMAN_IGNORE_CGROUPSV1_WARNING=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(p.Path, append(append([]string{}, global...), "system", "reset", "-f")...)
		cmd.Env = append(os.Environ(), "PODMAN_IGNORE_CGROUPSV1_WARNING=1")
		_ = cmd.Run()
		_ = os.RemoveAll(runroot)
	})
	podman("import", p.PolicyFlag, workloadTar(t), "localhost/w:1")
	run := append([]string{"run", "-d", "--runtime", "runc", "--network", "none", "--name", "pd"}, runFlags...)
	podman(append(run, "localhost/w:1", "/bin/counter", "-interval", "100ms", "-file", "")...)
	for deadline := time.Now().Add(30 * time.Second); lastCounter(podman("logs", "pd")) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("podman's counter did not count to 3 in 30s:\n%s", podman("logs", "pd"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return podman, dir
}
