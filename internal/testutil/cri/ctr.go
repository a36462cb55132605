package cri

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartCtr unpacks the peer containerd 1.7 if needed (scripts/peer-containerd.sh
// 1.7) and starts it without its CRI plugin, to be driven by its ctr
// (Ctr) in a namespace named after its directory, which also names the
// cgroup parent of its containers; cleanup is registered on t.
func StartCtr(t testing.TB) *Containerd {
	t.Helper()
	c := launch(t, "1.7", "", (*Containerd).configCtr)
	if c == nil {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := exec.Command(filepath.Join(c.Bin, "ctr"), "-a", c.socket, "version").Run()
		if err == nil {
			t.Logf("%s answers after %v", c.Version, time.Since(deadline.Add(-30*time.Second)).Round(time.Millisecond))
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer within 30 s: %v (log: %s)", err, c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// configCtr is containerd 1.7's configuration: everything under c.Dir,
// no CRI plugin, the plugins that would reach outside it disabled. It also
// sets c.ns.
func (c *Containerd) configCtr(string) string {
	c.ns = filepath.Base(c.Dir)
	return fmt.Sprintf(`version = 2
root = '%[1]s/root'
state = '%[1]s/state'
disabled_plugins = ['io.containerd.grpc.v1.cri', 'io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.blockfile', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']
[grpc]
  address = '%[2]s'
[ttrpc]
  address = '%[2]s.ttrpc'
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '%[1]s/opt'
`, c.Dir, c.socket)
}

// Root is containerd's root directory (its content store is under it).
func (c *Containerd) Root() string { return filepath.Join(c.Dir, "root") }

// RunCtr runs `ctr run -d` of image as container id with command, the
// system's runc with its root under c.Dir, stdout and stderr to the file
// LogPath(id), and returns once the task runs.
func (c *Containerd) RunCtr(t testing.TB, image, id string, command []string) {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	c.ctrs = append(c.ctrs, id)
	c.Ctr(t, append([]string{"run", "-d", "--runc-binary", runc, "--runc-root", filepath.Join(c.Dir, "runc"),
		"--log-uri", "file://" + c.LogPath(id), image, id}, command...)...)
}

// LogPath is the file RunCtr sends container id's output to.
func (c *Containerd) LogPath(id string) string { return filepath.Join(c.Dir, id+".log") }

// ImageDigest returns the digest of image ref (`ctr images ls`).
func (c *Containerd) ImageDigest(t testing.TB, ref string) string {
	t.Helper()
	for line := range strings.SplitSeq(c.Ctr(t, "images", "ls"), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == ref {
			return f[2]
		}
	}
	t.Fatalf("ctr images ls has no %s", ref)
	return ""
}

// removeCtrs kills and removes the containers RunCtr made.
func (c *Containerd) removeCtrs(t testing.TB) {
	for _, id := range c.ctrs {
		base := []string{"-a", c.socket, "-n", c.ns}
		ctr := filepath.Join(c.Bin, "ctr")
		if out, err := exec.Command(ctr, append(base, "tasks", "rm", "-f", id)...).CombinedOutput(); err != nil && !strings.Contains(string(out), "not found") {
			t.Logf("ctr tasks rm -f %s: %v: %s", id, err, out)
		}
		if out, err := exec.Command(ctr, append(base, "containers", "rm", id)...).CombinedOutput(); err != nil {
			t.Logf("ctr containers rm %s: %v: %s", id, err, out)
		}
	}
	c.ctrs = nil
	_ = os.Remove(filepath.Join(c.Dir, "runc"))
}
