package engine

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
)

// podmanRoot is a podman 5 with its own graph root and run root.
type podmanRoot struct {
	p      testutil.Podman
	graph  string
	global []string
}

// newPodmanRoot gives p a private store under t.TempDir, reset at the
// end.
func newPodmanRoot(t *testing.T, p testutil.Podman) *podmanRoot {
	t.Helper()
	dir := t.TempDir()
	runroot, err := os.MkdirTemp("", "prun")
	if err != nil {
		t.Fatal(err)
	}
	pr := &podmanRoot{p: p, graph: filepath.Join(dir, "graph")}
	pr.global = []string{"--root", pr.graph, "--runroot", runroot, "--tmpdir", filepath.Join(runroot, "tmp"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
	t.Cleanup(func() {
		_, _ = pr.try("rm", "-af", "-t", "0")
		_, _ = pr.try("system", "reset", "-f")
		_ = os.RemoveAll(runroot)
	})
	return pr
}

func (pr *podmanRoot) try(args ...string) (string, error) {
	cmd := exec.Command(pr.p.Path, append(append([]string{}, pr.global...), args...)...)
	cmd.Env = append(os.Environ(), "PODMAN_IGNORE_CGROUPSV1_WARNING=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (pr *podmanRoot) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := pr.try(args...)
	if err != nil {
		t.Fatalf("podman %q: %v\n%s", args, err, out)
	}
	return out
}

// waitCounter waits until podman's log of name counts to at least n.
func (pr *podmanRoot) waitCounter(t *testing.T, name string, n int) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		log := pr.run(t, "logs", name)
		if lastCounter(log) >= n {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("podman's counter %s did not reach %d in 30s:\n%s", name, n, tail(log, 5))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sharedBase imports the workload into podman's store and pulls it from
// there into e's, so that both stores hold it under one image ID (podman
// creates a restored container's storage from the archive's
// rootfsImageID). The layer has no "./" entry: podman 5.4's storage leaves
// a layer's root at 0555 where e's storage applies the entry's 0755, and
// CRIU refuses a root whose mode differs from the dumped one.
func sharedBase(t *testing.T, e *Engine, pr *podmanRoot) string {
	t.Helper()
	const name = "localhost/w:noroot"
	pr.run(t, "import", pr.p.PolicyFlag, noRootEntryTar(t), name)
	if _, err := e.ImagePull(context.Background(), "containers-storage:["+pr.graph+"]"+name, nil); err != nil {
		t.Fatal(err)
	}
	return name
}

// noRootEntryTar returns the workload's root filesystem tar without its
// "./" entry.
func noRootEntryTar(t *testing.T) string {
	t.Helper()
	in, err := os.Open(workloadTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "noroot.tar")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "./" || h.Name == "." {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkGoesOn fails unless log counts on without a gap from where the
// checkpoint stopped the counter (last) to at least last+5: podman's
// restore from an archive brings its ctr.log along (the log starts at 1),
// from an image it does not (the log starts at last+1).
func checkGoesOn(t *testing.T, who, log string, last int) {
	t.Helper()
	cs := counters(log)
	if len(cs) == 0 || (cs[0] != 1 && cs[0] != last+1) {
		t.Fatalf("%s: the log starts at %v, want 1 or %d", who, cs[:min(len(cs), 3)], last+1)
	}
	for i, c := range cs {
		if c != cs[0]+i {
			t.Fatalf("%s: the counter jumps at %d: %v", who, i, tailInts(cs, 10))
		}
	}
	if cs[len(cs)-1] < last+5 {
		t.Fatalf("%s: the counter reached %d, want %d", who, cs[len(cs)-1], last+5)
	}
}

// TestIntegrationPodman5RestoresCkpt: podman 5.4.2 restores a ckpt export
// (restore -i) and a ckpt checkpoint image saved as an oci-archive and
// loaded (restore IMAGE); each counter goes on from where ckpt stopped
// it, under the same container ID.
func TestIntegrationPodman5RestoresCkpt(t *testing.T) {
	e := realEngine(t)
	pr := newPodmanRoot(t, testutil.RequirePodman5(t))
	base := sharedBase(t, e, pr)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "100ms", "-file", ""}
	start := func(name string) *Container {
		c, err := e.Run(ctx, base, &RunOptions{Name: name, Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		waitLog(t, e, name, "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
		return c
	}
	// ckpt's container is removed first, its network namespace with it,
	// as on another host: podman must not find the path spec.dump names.
	podmanGoesOn := func(name, id string, restore ...string) {
		t.Helper()
		last := lastCounter(logsOf(t, e, name))
		if err := e.Remove(ctx, name, true); err != nil {
			t.Fatal(err)
		}
		pr.run(t, restore...)
		checkGoesOn(t, "podman "+name, pr.waitCounter(t, name, last+5), last)
		if got := strings.TrimSpace(pr.run(t, "inspect", "--format", "{{.Id}}", name)); got != id {
			t.Errorf("podman restored %s as %s, want ckpt's ID %s", name, got, id)
		}
	}

	c := start("ce")
	archive := filepath.Join(t.TempDir(), "ce.tar.zst")
	if _, err := e.Export(ctx, "ce", archive, nil); err != nil {
		t.Fatal(err)
	}
	podmanGoesOn("ce", c.ID, "container", "restore", "-i", archive)

	c = start("ci")
	if _, err := e.CheckpointImage(ctx, "ci", "localhost/ci-ckpt:1", nil); err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(t.TempDir(), "ci.oci.tar")
	if err := e.ImageSave(ctx, "localhost/ci-ckpt:1", "oci-archive", oci); err != nil {
		t.Fatal(err)
	}
	pr.run(t, "load", pr.p.PolicyFlag, "-i", oci)
	podmanGoesOn("ci", c.ID, "container", "restore", "localhost/ci-ckpt:1")
}

// TestIntegrationCkptRestoresPodman5Image: ckpt restores podman 5.4.2's
// own `checkpoint --create-image` image, taken from podman's store, and
// the counter goes on; a podman image of a container with a bind mount is
// refused as the same archive is (ErrHostResource), leaving nothing.
func TestIntegrationCkptRestoresPodman5Image(t *testing.T) {
	e := realEngine(t)
	pr := newPodmanRoot(t, testutil.RequirePodman5(t))
	base := sharedBase(t, e, pr)
	ctx := context.Background()
	podmanImage := func(name string, runFlags ...string) (string, int) {
		t.Helper()
		run := append([]string{"run", "-d", "--runtime", "runc", "--network", "none", "--name", name}, runFlags...)
		pr.run(t, append(run, base, "/bin/counter", "-interval", "100ms", "-file", "")...)
		pr.waitCounter(t, name, 3)
		img := "localhost/" + name + "-ckpt:1"
		// No --signature-policy: the commit reads podman's default policy.
		pr.run(t, "container", "checkpoint", "--create-image", img, name)
		last := lastCounter(pr.run(t, "logs", name))
		if _, err := e.ImagePull(ctx, "containers-storage:["+pr.graph+"]"+img, nil); err != nil {
			t.Fatal(err)
		}
		return img, last
	}

	img, last := podmanImage("pi")
	if _, err := e.RestoreImage(ctx, img, nil); err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, e, "pi", "the counter to go on", func(l string) bool { return lastCounter(l) >= last+5 })
	checkGoesOn(t, "ckpt pi", log, last)

	img, _ = podmanImage("pb", "-v", t.TempDir()+":/data")
	if _, err := e.RestoreImage(ctx, img, nil); !errors.Is(err, ErrHostResource) {
		t.Fatalf("restore of podman's image of a container binding a host directory = %v, want ErrHostResource", err)
	}
	noLeftovers(t, e, 1)
}
