package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/testutil"
)

// Fault tests: the real ckpt binary (cmd/ckpt, built here) on real runc
// and CRIU is killed with SIGKILL at each stop point of the fault-test
// hook (testStopEnv) of `checkpoint -e`, `checkpoint -R -e`,
// `checkpoint`, `restore`, `restore -i` and `run`, and then the next
// command (`ckpt ps -a --json`, once the children the killed process left
// are done) must find the documented state, reconciled: no operation
// record, no staging directory, no temporary archive, no images of a dump
// that was not recorded, a container that runs (and counts) or is
// checkpointed and restores; an import undone entirely unless its
// container was restored, and a retry of it succeeds. The stop points
// each command reaches are read from a run of it with the hook set to
// a point that does not exist, so a new phase without an expectation
// fails the test.

// ckptCLI runs the ckpt binary on one engine root.
type ckptCLI struct {
	t             *testing.T
	bin           string
	root, runRoot string
}

func (c *ckptCLI) cmd(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"--root", c.root, "--runroot", c.runRoot}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// run runs ckpt with args and returns its stdout, stderr and error.
func (c *ckptCLI) run(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	cmd := c.cmd(nil, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// must runs ckpt with args and fails the test if it fails.
func (c *ckptCLI) must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("ckpt %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// engine returns an in-process engine on the same roots, for looking.
func (c *ckptCLI) engine() *Engine { return &Engine{Root: c.root, RunRoot: c.runRoot} }

// points runs ckpt with args to the end with the hook on and returns the
// stop points it passed, in order.
func (c *ckptCLI) points(args ...string) []string {
	c.t.Helper()
	var errOut bytes.Buffer
	cmd := c.cmd([]string{testStopEnv + "=none"}, args...)
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("ckpt %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	var ps []string
	sc := bufio.NewScanner(&errOut)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "ckpt: test point "); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// killAt runs ckpt with args until it stops itself at point, kills it
// with SIGKILL and waits until every lock under the root is free (the
// children it left, runc or a monitor, are done with the container).
func (c *ckptCLI) killAt(point string, args ...string) {
	c.t.Helper()
	var errOut bytes.Buffer
	cmd := c.cmd([]string{testStopEnv + "=" + point}, args...)
	cmd.Stderr = &errOut
	// In a process group of its own: the kernel continues the stopped
	// members of an orphaned group (this one's may be) when one exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for !processStopped(cmd.Process.Pid) {
		select {
		case err := <-done:
			c.t.Fatalf("ckpt %s ended (%v) without stopping at %s:\n%s", strings.Join(args, " "), err, point, errOut.String())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			c.t.Fatalf("ckpt %s did not reach %s", strings.Join(args, " "), point)
		}
	}
	_ = cmd.Process.Kill()
	<-done
	c.checkHeld(point)
	c.waitIdle()
}

// checkHeld checks, right after a kill inside a step that a child goes on
// with (OP/dumping, OP/restoring, OP/starting), that the containers stay
// locked while the child works: while a `runc checkpoint` of the engine
// runs, and until the monitor has recorded its start in start.json. Then
// nothing can reconcile a container under the child's feet.
func (c *ckptCLI) checkHeld(point string) {
	c.t.Helper()
	_, what, _ := strings.Cut(point, "/")
	if what != "dumping" && what != "restoring" && what != "starting" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(c.root, "containers", "*"))
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		working := false
		for _, d := range dirs {
			pid := c.dumpingRunc()
			_, err := os.Stat(filepath.Join(d, startFile))
			waiting := what != "dumping" && errors.Is(err, os.ErrNotExist)
			if pid == 0 && !waiting {
				continue
			}
			working = true
			l, err := fsutil.TryLock(filepath.Join(d, lockFile), "test")
			if err != nil {
				continue
			}
			l.Unlock()
			// The monitor writes start.json before it lets go; runc lets go
			// as it exits.
			_, err = os.Stat(filepath.Join(d, startFile))
			time.Sleep(50 * time.Millisecond)
			if (waiting && errors.Is(err, os.ErrNotExist)) || (pid != 0 && alive(pid)) {
				c.t.Errorf("at %s: %s unlocked while the killed ckpt's child works (runc pid %d, monitor's start.json missing: %v)", point, d, pid, waiting)
				return
			}
		}
		if !working {
			return
		}
	}
}

// dumpingRunc returns the pid of a `runc checkpoint` of this engine, or 0.
func (c *ckptCLI) dumpingRunc() int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 3 && filepath.Base(args[0]) == "runc" && slices.Contains(args, "checkpoint") && slices.Contains(args, filepath.Join(c.runRoot, "runc")) {
			var pid int
			if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil && alive(pid) {
				return pid
			}
		}
	}
	return 0
}

// processStopped reports whether process pid is stopped by a signal.
func processStopped(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
}

// waitIdle waits until the children a killed ckpt left (runc, CRIU, the
// export's watchdog; not the monitors) are done: no lock of a container
// or staging directory under the root is held, and no process but a
// monitor names the engine's directory.
func (c *ckptCLI) waitIdle() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		locks, _ := filepath.Glob(filepath.Join(c.root, "containers", "*", lockFile))
		more, _ := filepath.Glob(filepath.Join(c.root, "import", "staging-*.lock"))
		busy := c.namingProcess()
		for _, p := range append(locks, more...) {
			if busy != "" {
				break
			}
			l, err := fsutil.TryLock(p, "test")
			if errors.Is(err, fsutil.ErrLocked) {
				busy = p
				break
			}
			l.Unlock()
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s still locked", busy)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namingProcess returns the command line of a process other than a
// monitor that names the engine's directory, or "".
func (c *ckptCLI) namingProcess() string {
	dir := filepath.Dir(c.root)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		if strings.Contains(cmd, dir+"/") && !strings.Contains(cmd, MonitorCommand) {
			return cmd
		}
	}
	return ""
}

// ps is the next command: `ckpt ps -a --json`, by name.
func (c *ckptCLI) ps() map[string]*Container {
	c.t.Helper()
	var doc struct {
		Containers []*Container `json:"containers"`
	}
	if err := json.Unmarshal([]byte(c.must("ps", "-a", "--json")), &doc); err != nil {
		c.t.Fatal(err)
	}
	m := map[string]*Container{}
	for _, x := range doc.Containers {
		m[x.Name] = x
	}
	return m
}

// checkReconciled checks that no operation record, import record or
// staging directory is left under the root, nor what a dump leaves
// beside the images (CPU probe, layer copies, CRIU configuration).
func (c *ckptCLI) checkReconciled(point string) {
	c.t.Helper()
	for _, pat := range []string{
		filepath.Join("containers", "*", opFile), filepath.Join("containers", "*", "cpuinfo-*"),
		filepath.Join("containers", "*", "work", "layers"), filepath.Join("containers", "*", "criu.conf"),
		filepath.Join("import", "*"),
	} {
		if m, _ := filepath.Glob(filepath.Join(c.root, pat)); len(m) > 0 {
			c.t.Errorf("at %s: left after the next command: %v", point, m)
		}
	}
}

// checkImages checks whether container name has images in its
// checkpoint directory.
func (c *ckptCLI) checkImages(point, id string, want bool) {
	c.t.Helper()
	_, err := os.Stat(filepath.Join(c.root, "containers", id, "checkpoint", "inventory.img"))
	if got := err == nil; got != want {
		c.t.Errorf("at %s: images in checkpoint/: %v, want %v", point, got, want)
	}
}

// waitCounting waits until container name's counter goes on.
func (c *ckptCLI) waitCounting(point, name string) {
	c.t.Helper()
	e := c.engine()
	at := lastCounter(logsOf(c.t, e, name))
	waitLog(c.t, e, name, name+" counting after "+point, func(l string) bool { return lastCounter(l) >= at+2 })
}

// checkPoints checks that the table want has an expectation for each
// point reached and none for a point not reached.
func checkPoints(t *testing.T, got []string, want map[string]Status) {
	t.Helper()
	for _, p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("no expectation for stop point %s", p)
		}
	}
	for p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("stop point %s not reached (reached: %v)", p, got)
		}
	}
}

// gone is the outcome of an import that was undone.
const gone Status = "gone"

// newCLI builds a ckpt engine root with the workload image, and checks at
// the end, once its containers are removed, that no mount under its
// directory and no cgroup of its containers is left.
func newCLI(t *testing.T, bin string) *ckptCLI {
	dir := t.TempDir()
	c := &ckptCLI{t: t, bin: bin, root: filepath.Join(dir, "root"), runRoot: filepath.Join(dir, "run")}
	ids := map[string]bool{}
	t.Cleanup(func() {
		for name, x := range c.ps() {
			ids[x.ID] = true
			if _, errOut, err := c.run("rm", "-f", name); err != nil {
				t.Errorf("cleanup: rm %s: %v\n%s", name, err, errOut)
			}
		}
		e := c.engine()
		if s, err := e.storeOpen(); err == nil {
			_, _ = s.Shutdown(true)
		}
		_ = e.Close()
		checkNoLeaks(t, dir, ids)
	})
	c.must("image", "import", workloadTar(t), "workload")
	return c
}

// checkNoLeaks checks /proc/self/mountinfo for mounts under dir and the
// cgroup hierarchies for cgroups of the containers ids.
func checkNoLeaks(t *testing.T, dir string, ids map[string]bool) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			t.Errorf("mount left: %s", f[4])
		}
	}
	for id := range ids {
		for _, pat := range []string{"/sys/fs/cgroup/*/" + id, "/sys/fs/cgroup/*/*/" + id, "/sys/fs/cgroup/*/*/*/" + id} {
			if m, _ := filepath.Glob(pat); len(m) > 0 {
				t.Errorf("cgroup left: %v", m)
			}
		}
	}
}

// TestKilled kills ckpt at every stop point of each command (see the top
// of this file).
func TestKilled(t *testing.T) {
	t.Parallel()
	prerequisites(t)
	goTool := testutil.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "ckpt")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../cmd/ckpt").CombinedOutput(); err != nil {
		t.Fatalf("build cmd/ckpt: %v\n%s", err, out)
	}
	t.Run("export", func(t *testing.T) {
		t.Parallel()
		testKilledExport(t, newCLI(t, bin), false)
	})
	t.Run("export-leave-running", func(t *testing.T) {
		t.Parallel()
		testKilledExport(t, newCLI(t, bin), true)
	})
	t.Run("checkpoint-restore", func(t *testing.T) {
		t.Parallel()
		testKilledInPlace(t, newCLI(t, bin))
	})
	t.Run("import-run", func(t *testing.T) {
		t.Parallel()
		testKilledImport(t, newCLI(t, bin), newCLI(t, bin))
	})
}

// counterArgs run the workload's counter writing into a named volume.
var counterArgs = []string{"-v", "vol:/data", "workload", "/bin/counter", "-interval", "50ms", "-file", "/data/counter"}

// testKilledExport kills `checkpoint -e` (or `checkpoint -R -e`) at each
// point: without -R the container is checkpointed once the dump has
// begun and restores; with -R it runs on, thawed, and its images are
// gone. Only a kill after the archive's rename leaves an archive, and a
// complete one.
func testKilledExport(t *testing.T, c *ckptCLI, leaveRunning bool) {
	c.must(append([]string{"run", "-d", "--name", "c"}, counterArgs...)...)
	id := c.ps()["c"].ID
	c.waitCounting("run", "c")
	after := StatusCheckpointed
	want := map[string]Status{
		"export/prepare": StatusRunning, "export/dump": StatusRunning, "export/dumping": after,
		"export/stop": after, "export/copy_layers": after, "export/write": after,
		"export/writing": after, "export/commit": after, "export/record": after,
	}
	flags := []string{"checkpoint"}
	if leaveRunning {
		flags = append(flags, "-R")
		for p := range want {
			want[p] = StatusRunning
		}
		delete(want, "export/stop")
		want["export/freeze"] = StatusRunning
	}
	archive := func(dir string) []string { return append(flags, "-e", filepath.Join(dir, "a.tar.zst"), "c") }
	dir := t.TempDir()
	ps := c.points(archive(dir)...)
	checkPoints(t, ps, want)
	if !leaveRunning {
		c.must("restore", "c")
	}
	for _, p := range ps {
		start := time.Now()
		dir := t.TempDir()
		c.killAt(p, archive(dir)...)
		x := c.ps()["c"]
		if x == nil || x.Status != want[p] {
			t.Fatalf("at %s: the next command finds %+v, want %s", p, x, want[p])
		}
		c.checkReconciled(p)
		ents, _ := os.ReadDir(dir)
		if p == "export/record" {
			if len(ents) != 1 || ents[0].Name() != "a.tar.zst" {
				t.Errorf("at %s: archive directory holds %v, want the archive", p, ents)
			} else if err := verifyArchive(filepath.Join(dir, "a.tar.zst")); err != nil {
				t.Errorf("at %s: the archive: %v", p, err)
			}
		} else if len(ents) != 0 {
			t.Errorf("at %s: archive directory holds %v, want nothing", p, ents)
		}
		c.checkImages(p, id, x.Status == StatusCheckpointed)
		if x.Status == StatusCheckpointed {
			c.must("restore", "c")
		}
		c.waitCounting(p, "c")
		t.Logf("%s: %s, then running again, in %v", p, want[p], time.Since(start).Round(time.Millisecond))
	}
}

// verifyArchive checks the archive at path with format.Verify.
func verifyArchive(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := format.Verify(f, nil)
	if err != nil {
		return err
	}
	return rep.Err()
}

// testKilledInPlace kills `checkpoint` at each point (checkpointed once
// the dump has begun, and restorable) and then `restore` (running once
// the monitor has begun restoring, otherwise checkpointed with its
// images).
func testKilledInPlace(t *testing.T, c *ckptCLI) {
	c.must(append([]string{"run", "-d", "--name", "c"}, counterArgs...)...)
	id := c.ps()["c"].ID
	c.waitCounting("run", "c")
	want := map[string]Status{
		"checkpoint/prepare": StatusRunning, "checkpoint/dump": StatusRunning,
		"checkpoint/dumping": StatusCheckpointed, "checkpoint/finish": StatusCheckpointed,
		"checkpoint/record": StatusCheckpointed,
	}
	ps := c.points("checkpoint", "c")
	checkPoints(t, ps, want)
	c.must("restore", "c")
	for _, p := range ps {
		c.killAt(p, "checkpoint", "c")
		x := c.ps()["c"]
		if x == nil || x.Status != want[p] {
			t.Fatalf("at %s: the next command finds %+v, want %s", p, x, want[p])
		}
		c.checkReconciled(p)
		c.checkImages(p, id, x.Status == StatusCheckpointed)
		if x.Status == StatusCheckpointed {
			c.must("restore", "c")
		}
		c.waitCounting(p, "c")
	}

	want = map[string]Status{
		"restore/prepare": StatusCheckpointed, "restore/start": StatusCheckpointed,
		"restore/restoring": StatusRunning, "restore/record": StatusRunning,
	}
	c.must("checkpoint", "c")
	ps = c.points("restore", "c")
	checkPoints(t, ps, want)
	for _, p := range ps {
		c.must("checkpoint", "c")
		c.killAt(p, "restore", "c")
		x := c.ps()["c"]
		if x == nil || x.Status != want[p] {
			t.Fatalf("at %s: the next command finds %+v, want %s", p, x, want[p])
		}
		c.checkReconciled(p)
		c.checkImages(p, id, x.Status == StatusCheckpointed)
		if x.Status == StatusCheckpointed {
			c.must("restore", "c")
		}
		c.waitCounting(p, "c")
	}
}

// testKilledImport kills `restore -i` at each point on engine dst, of an
// archive exported from src: the import is undone entirely (container,
// storage layer, netns, volume, staging) and a retry succeeds, unless the
// monitor had begun restoring, after which the container runs. Then it
// kills `run` at each point: created before the monitor starts, running
// after.
func testKilledImport(t *testing.T, src, dst *ckptCLI) {
	src.must(append([]string{"run", "-d", "--name", "c"}, counterArgs...)...)
	src.waitCounting("run", "c")
	archive := filepath.Join(t.TempDir(), "c.tar.zst")
	src.must("checkpoint", "-R", "-e", archive, "c")
	src.must("rm", "-f", "c")

	e := dst.engine()
	reset := func() {
		dst.must("rm", "-f", "c")
		if err := e.volumeStore().Remove(context.Background(), "vol", true); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]Status{
		"import/extract": gone, "import/check": gone, "import/volumes": gone, "import/create": gone,
		"import/apply_rootfs": gone, "import/restore": gone, "restore/prepare": gone, "restore/start": gone,
		"restore/restoring": StatusRunning, "restore/record": StatusRunning, "import/record": StatusRunning,
	}
	ps := dst.points("restore", "-i", archive)
	checkPoints(t, ps, want)
	id := dst.ps()["c"].ID
	reset()
	for _, p := range ps {
		dst.killAt(p, "restore", "-i", archive)
		all := dst.ps()
		dst.checkReconciled(p)
		if want[p] == gone {
			if len(all) != 0 {
				t.Fatalf("at %s: the next command finds %v, want no container", p, all)
			}
			noLeftovers(t, e, 0)
			if _, err := os.Lstat(e.netnsPath(id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("at %s: netns left: %v", p, err)
			}
			// A retry succeeds.
			dst.must("restore", "-i", archive)
		} else if x := all["c"]; x == nil || x.Status != want[p] {
			t.Fatalf("at %s: the next command finds %+v, want %s", p, x, want[p])
		}
		dst.waitCounting(p, "c")
		reset()
	}

	want = map[string]Status{"run/start": StatusCreated, "run/starting": StatusRunning, "run/record": StatusRunning}
	ps = dst.points("run", "-d", "--name", "r", "workload", "/bin/counter", "-interval", "50ms")
	checkPoints(t, ps, want)
	dst.must("rm", "-f", "r")
	for _, p := range ps {
		dst.killAt(p, "run", "-d", "--name", "r", "workload", "/bin/counter", "-interval", "50ms")
		x := dst.ps()["r"]
		if x == nil || x.Status != want[p] {
			t.Fatalf("at %s: the next command finds %+v, want %s", p, x, want[p])
		}
		dst.checkReconciled(p)
		if x.Status == StatusRunning {
			dst.waitCounting(p, "r")
		}
		dst.must("rm", "-f", "r")
	}
}
