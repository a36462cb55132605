package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format/criuimg"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/testutil"
	"go.podman.io/storage/pkg/reexec"
)

// TestMain lets the test binary act as the container monitor (the engine
// re-executes its own binary) and as containers/storage's helper.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == MonitorCommand {
		os.Exit(RunMonitor(os.Args[2:]))
	}
	os.Exit(runSuite(m))
}

// testRoots are the roots of the engines realEngine made (suite leak check).
var testRoots struct {
	sync.Mutex
	roots []string
}

// runSuite runs the tests with TMPDIR (so every t.TempDir, every engine
// root) in a directory of this run, then fails the run if a mount is
// left below it or a cgroup of one of its engines in any hierarchy: other
// test runs may share the host, so only this run's are looked at.
func runSuite(m *testing.M) int {
	base, err := os.MkdirTemp("", "ckpt-engine-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if base, err = filepath.EvalSymlinks(base); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", base)
	code := m.Run()
	if had {
		os.Setenv("TMPDIR", old)
	} else {
		os.Unsetenv("TMPDIR")
	}
	var leaks []string
	if os.Geteuid() == 0 {
		leaks = append(leaks, mountLeaks(base)...)
		testRoots.Lock()
		for _, r := range testRoots.roots {
			leaks = append(leaks, cgroupLeaks(&Engine{Root: r})...)
		}
		testRoots.Unlock()
	}
	for _, l := range leaks {
		fmt.Fprintln(os.Stderr, "leaked by the tests:", l)
	}
	if err := fsutil.RemoveAll(base); err != nil {
		fmt.Fprintln(os.Stderr, "remove the tests' temporary directory:", err)
		code = 1
	}
	if len(leaks) > 0 {
		return 1
	}
	return code
}

// mountLeaks returns the mounts left at or below dir, and unmounts them
// (so that removing dir cannot reach into them).
func mountLeaks(dir string) []string {
	points, err := fsutil.MountsUnder(dir, true)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return []string{err.Error()}
	}
	var out []string
	for _, p := range points {
		out = append(out, "mount "+p)
	}
	if len(points) > 0 {
		_ = fsutil.UnmountAll(dir, true)
	}
	return out
}

// cgroupLeaks returns the cgroups of engine e left in any hierarchy.
func cgroupLeaks(e *Engine) []string {
	mounts, err := cgroupMounts()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, m := range mounts {
		d := filepath.Join(m, e.cgroupParent())
		if _, err := os.Stat(d); err == nil {
			out = append(out, "cgroup "+d)
		}
	}
	return out
}

// checkEngineLeaks fails t if engine e (with no containers left) left a
// mount below dir (its roots' directory) or a cgroup.
func checkEngineLeaks(t testing.TB, e *Engine, dir string) {
	t.Helper()
	for _, l := range append(mountLeaks(dir), cgroupLeaks(e)...) {
		t.Errorf("leaked: %s", l)
	}
}

// workloadTar returns the workload root filesystem, building it if needed.
func workloadTar(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../testdata/workloads")
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "bin", "rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		out, err := exec.Command("make", "-C", dir, "bin/rootfs.tar").CombinedOutput()
		if err != nil {
			testutil.Missing(t, "build workload (make -C testdata/workloads): %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload %s: %v", tarPath, err)
	}
	return tarPath
}

// prerequisites checks root, CRIU >= 4 and runc, and returns the
// workload's root filesystem tar.
func prerequisites(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real CRIU tests are slow; skipped with -short")
	}
	testutil.RequireRoot(t)
	if err := (&Engine{}).preflight(context.Background()); err != nil {
		testutil.Missing(t, "%v", err)
	}
	return workloadTar(t)
}

// realEngine returns an engine on real runc and CRIU with its own roots
// under t.TempDir, with the workload imported as "workload". Its
// containers are removed at the end.
func realEngine(t testing.TB) *Engine {
	t.Helper()
	tarPath := prerequisites(t)
	dir := t.TempDir()
	e := &Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
	testRoots.Lock()
	testRoots.roots = append(testRoots.roots, e.Root)
	testRoots.Unlock()
	ctx := context.Background()
	t.Cleanup(func() {
		list, _ := e.List(context.Background())
		for _, c := range list {
			if err := e.Remove(context.Background(), c.ID, true); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if s, err := e.storeOpen(); err == nil {
			_, _ = s.Shutdown(true)
		}
		_ = e.Close()
		checkEngineLeaks(t, e, dir)
	})
	if _, err := e.ImageImport(ctx, tarPath, "workload"); err != nil {
		t.Fatal(err)
	}
	return e
}

func logsOf(t *testing.T, e *Engine, ref string) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.Logs(context.Background(), ref, &b, false); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var counterRE = regexp.MustCompile(`(?m)^counter (\d+)$`)

// counters returns the "counter N" values of a log, in order.
func counters(log string) []int {
	var out []int
	for _, m := range counterRE.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// logText returns the output lines of a raw ctr.log (k8s-file records,
// as an archive holds it), one per line.
func logText(raw []byte) string {
	var b strings.Builder
	for line := range strings.Lines(string(raw)) {
		b.WriteString(parseLogRecord(strings.TrimSuffix(line, "\n")).Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func lastCounter(log string) int {
	c := counters(log)
	if len(c) == 0 {
		return 0
	}
	return c[len(c)-1]
}

// waitLog waits until ok(log) holds.
func waitLog(t *testing.T, e *Engine, ref string, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		log := logsOf(t, e, ref)
		if ok(log) {
			return log
		}
		if time.Now().After(deadline) {
			c, _ := e.Inspect(context.Background(), ref)
			t.Fatalf("timed out waiting for %s; state %+v; log tail:\n%s", what, c, tail(log, 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkContinues checks that the counter went on from `from` after a
// restore: the line after the last "counter from" is "counter from+1".
func checkContinues(t *testing.T, log string, from int) {
	t.Helper()
	cs := counters(log)
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i] == from {
			if i+1 < len(cs) && cs[i+1] != from+1 {
				t.Fatalf("after restore the counter went from %d to %d, want %d (log tail:\n%s)", from, cs[i+1], from+1, tail(log, 10))
			}
			return
		}
	}
	t.Fatalf("counter %d not in log", from)
}

func TestIntegrationCheckpointRestore(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	c, err := e.Run(ctx, "workload", &RunOptions{Name: "ctr", Command: []string{"/bin/counter", "-interval", "50ms"}})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "ctr", "counter 5", func(l string) bool { return lastCounter(l) >= 5 })

	for round := 1; round <= 2; round++ {
		keep := round == 2
		if round == 2 {
			// A bundle written by an older ckpt, which did not name
			// the CRIU configuration: ckpt freezes before runc instead.
			spec, err := specFor(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeSpec(filepath.Join(e.containerDir(c.ID), "config.json"), spec); err != nil {
				t.Fatal(err)
			}
		}
		res, err := e.Checkpoint(ctx, "ctr", &CheckpointOptions{Keep: keep})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if res.Container.Status != StatusCheckpointed || res.CRIU == nil || res.CRIU.FrozenTime == 0 {
			t.Fatalf("round %d: checkpoint result %+v, criu %+v", round, res.Container, res.CRIU)
		}
		// ckpt froze it (at CRIU's pre-dump action in round 1, before
		// runc in round 2): CRIU found it frozen (its own freeze polls
		// every 100 ms). Its configuration is gone again.
		if res.freezeHook != (round == 1) || res.CRIU.FreezingTime >= 50_000 || res.Frozen <= 0 || res.Frozen >= res.Total {
			t.Errorf("round %d: pre-dump freeze %v, CRIU freezing %d µs, frozen %v of %v", round, res.freezeHook, res.CRIU.FreezingTime, res.Frozen, res.Total)
		}
		if _, err := os.Stat(e.criuConfigPath(c.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("round %d: CRIU configuration left after the checkpoint: %v", round, err)
		}
		_, err = os.Stat(filepath.Join(e.workDir(c.ID), "dump.log"))
		if keep != (err == nil) {
			t.Errorf("round %d: keep=%v but dump.log present=%v", round, keep, err == nil)
		}
		before := lastCounter(logsOf(t, e, "ctr"))
		time.Sleep(300 * time.Millisecond)
		if after := lastCounter(logsOf(t, e, "ctr")); after != before {
			t.Fatalf("round %d: counter moved from %d to %d while checkpointed", round, before, after)
		}
		t.Logf("round %d: checkpointed at counter %d in %v (runc %v)", round, before, res.Total, res.Runtime)

		rres, err := e.Restore(ctx, "ctr", &RestoreOptions{Keep: keep})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !e.namesCRIUConfig(c) {
			t.Errorf("round %d: the restored container's bundle does not name its CRIU configuration", round)
		}
		if rres.Container.Status != StatusRunning {
			t.Fatalf("round %d: restored status %s", round, rres.Container.Status)
		}
		_, err = os.Stat(filepath.Join(e.CheckpointDir(c.ID), "inventory.img"))
		if keep != (err == nil) {
			t.Errorf("round %d: keep=%v but images present=%v", round, keep, err == nil)
		}
		log := waitLog(t, e, "ctr", "counter to pass the checkpoint", func(l string) bool { return lastCounter(l) >= before+3 })
		checkContinues(t, log, before)
		t.Logf("round %d: restored in %v (runc %v), counter goes on: %d", round, rres.Total, rres.Runtime, lastCounter(log))

		// The counter file in the container layer is written again too.
		data, err := os.ReadFile(filepath.Join(c.Rootfs, "tmp", "counter"))
		if n, _ := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || n <= before {
			t.Errorf("round %d: /tmp/counter = %q, %v; want > %d", round, data, err, before)
		}
		// exec works in the restored container.
		var out bytes.Buffer
		code, err := e.Exec(ctx, "ctr", []string{"/bin/counter", "-ticks", "1", "-interval", "1ms", "-file", ""}, &ExecOptions{Stdout: &out, Stderr: &out})
		if err != nil || code != 0 || !strings.Contains(out.String(), "counter 1") {
			t.Errorf("round %d: exec = %d, %v, output %q", round, code, err, out.String())
		}
	}

	// A second operation while one holds the lock is refused.
	_, l, err := e.lock(ctx, "ctr", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Checkpoint(ctx, "ctr", nil); !errors.Is(err, ErrBusy) {
		t.Errorf("Checkpoint while locked = %v, want ErrBusy", err)
	}
	l.Unlock()

	st, err := e.Stop(ctx, "ctr", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusExited || st.ExitCode != 0 {
		t.Errorf("after stop: %s, exit code %d; want exited 0", st.Status, st.ExitCode)
	}
	if err := e.Remove(ctx, "ctr", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, "ctr"); !errors.Is(err, ErrUnknownContainer) {
		t.Errorf("Inspect after rm = %v, want ErrUnknownContainer", err)
	}
}

func TestIntegrationLeaveRunning(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	vol := t.TempDir()
	c, err := e.Run(ctx, "workload", &RunOptions{
		Name: "lr", Command: []string{"/bin/counter", "-interval", "50ms", "-file", "/data/counter"},
		Volumes: []string{vol + ":/data"}, Env: []string{"X=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "lr", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	// Two checkpoints in a row, leaving it running.
	for i := 0; i < 2; i++ {
		res, err := e.Checkpoint(ctx, "lr", &CheckpointOptions{LeaveRunning: true})
		if err != nil {
			t.Fatalf("checkpoint -R #%d: %v", i+1, err)
		}
		if res.Container.Status != StatusRunning {
			t.Fatalf("checkpoint -R #%d: status %s, want running", i+1, res.Container.Status)
		}
		at := lastCounter(logsOf(t, e, "lr"))
		waitLog(t, e, "lr", "counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	}
	if data, err := os.ReadFile(filepath.Join(vol, "counter")); err != nil || len(data) == 0 {
		t.Errorf("bind-mounted /data/counter = %q, %v", data, err)
	}
	// A dump that caught the counter writing its temporary file cannot be
	// restored once the counter has renamed it (CRIU reopens open files by
	// path): checkpoint -R again until the images hold no such file.
	for i := 0; holdsFile(t, e.CheckpointDir(c.ID), "counter.tmp"); i++ {
		if i == 5 {
			t.Fatal("five -R checkpoints in a row caught the counter's temporary file open")
		}
		if _, err := e.Checkpoint(ctx, "lr", &CheckpointOptions{LeaveRunning: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Restore(ctx, "lr", nil); !errors.Is(err, ErrState) {
		t.Errorf("Restore(running) = %v, want ErrState", err)
	}
	if err := e.Remove(ctx, "lr", false); !errors.Is(err, ErrState) {
		t.Errorf("Remove(running) without force = %v, want ErrState", err)
	}
	// Stopped, it can be restored from the last --leave-running images
	// (runc's state of the stopped container is cleared first).
	if _, err := e.Stop(ctx, "lr", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	atStop := logsOf(t, e, "lr")
	if _, err := e.Restore(ctx, "lr", nil); err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, e, "lr", "counter after restoring a stopped container", func(l string) bool {
		return len(counters(l[len(atStop):])) >= 2
	})
	if first, last := counters(log[len(atStop):])[0], lastCounter(atStop); first <= 1 || first > last {
		t.Errorf("restored counter starts at %d, want a value in (1, %d]", first, last)
	}
	if err := e.Remove(ctx, "lr", true); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationTCPEstablished(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	_, err := e.Run(ctx, "workload", &RunOptions{Name: "tcp", Command: []string{"/bin/counter", "-tcp", "-interval", "50ms"}})
	if err != nil {
		t.Fatal(err)
	}
	tcpOK := regexp.MustCompile(`(?m)^tcp ok (\d+)$`)
	lastOK := func(l string) int {
		m := tcpOK.FindAllStringSubmatch(l, -1)
		if len(m) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n
	}
	waitLog(t, e, "tcp", "tcp ok 3", func(l string) bool { return lastOK(l) >= 3 })

	bug, err := e.HasInetSocketBug(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Checkpoint(ctx, "tcp", &CheckpointOptions{TCPEstablished: true})
	if bug {
		// CRIU < 4.2 cannot dump inet sockets on Linux >= 6.16. The engine
		// must say so and leave the container running, connection intact.
		var x *ExitError
		if err == nil || !errors.As(err, &x) || !strings.Contains(err.Error(), "criu#2705") {
			t.Fatalf("Checkpoint on a host with the CRIU socket bug = %v, want *ExitError with the hint", err)
		}
		at := lastOK(logsOf(t, e, "tcp"))
		waitLog(t, e, "tcp", "tcp to go on after the failed dump", func(l string) bool { return lastOK(l) >= at+3 })
		if c, _ := e.Inspect(ctx, "tcp"); c.Status != StatusRunning {
			t.Fatalf("after failed checkpoint: %s, want running", c.Status)
		}
		t.Logf("host limitation: %s; checked that the failure is reported and the container keeps running", inetSocketWarning)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !res.Container.CheckpointTCP {
		t.Errorf("CheckpointTCP not recorded")
	}
	before := lastOK(logsOf(t, e, "tcp"))
	if _, err := e.Restore(ctx, "tcp", nil); !errors.Is(err, ErrState) {
		t.Errorf("Restore without --tcp-established = %v, want ErrState", err)
	}
	if _, err := e.Restore(ctx, "tcp", &RestoreOptions{TCPEstablished: true}); err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, e, "tcp", "tcp ok after restore", func(l string) bool { return lastOK(l) >= before+3 })
	if strings.Contains(log, "tcp error") {
		t.Fatalf("connection broke across checkpoint/restore:\n%s", tail(log, 10))
	}
	// --tcp-close restores the process but closes its connections: the
	// workload notices and exits 3.
	if _, err := e.Checkpoint(ctx, "tcp", &CheckpointOptions{TCPEstablished: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Restore(ctx, "tcp", &RestoreOptions{TCPClose: true}); err != nil {
		t.Fatal(err)
	}
	st, err := e.waitExit(ctx, res.Container.ID, 10*time.Second)
	if err != nil || st.Status != StatusExited || st.ExitCode != 3 {
		t.Fatalf("after restore --tcp-close: %+v, %v; want exited with status 3", st, err)
	}
	if log := logsOf(t, e, "tcp"); !strings.Contains(log, "tcp error") {
		t.Errorf("after restore --tcp-close the workload saw no connection error:\n%s", tail(log, 5))
	}
}

// TestIntegrationRestoreElsewhere restores one checkpoint into two new
// containers made with Create (the path an import takes): each continues
// the counter in its own PID namespace.
func TestIntegrationRestoreElsewhere(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "50ms", "-file", ""}
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "src", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "src", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	res, err := e.Checkpoint(ctx, "src", &CheckpointOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	at := lastCounter(logsOf(t, e, "src"))
	for _, name := range []string{"copy1", "copy2"} {
		c, err := e.Create(ctx, "workload", &RunOptions{Name: name, Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != StatusCreated {
			t.Fatalf("Create() status = %s, want created", c.Status)
		}
		if _, err := e.Restore(ctx, name, &RestoreOptions{ImageDir: res.ImageDir}); err != nil {
			t.Fatal(err)
		}
		log := waitLog(t, e, name, "the copy to count on", func(l string) bool { return lastCounter(l) >= at+3 })
		if cs := counters(log); cs[0] != at+1 {
			t.Errorf("%s: first counter %d, want %d", name, cs[0], at+1)
		}
	}
	if _, err := os.Stat(filepath.Join(res.ImageDir, "inventory.img")); err != nil {
		t.Errorf("restore with ImageDir removed the images: %v", err)
	}
	if _, err := e.Create(ctx, "workload", &RunOptions{Name: "copy1", Command: cmd}); !errors.Is(err, ErrNameInUse) {
		t.Errorf("Create(existing name) = %v, want ErrNameInUse", err)
	}
}

// TestIntegrationPodmanStore points --storage-root at a store podman made
// and runs, checkpoints and restores podman's image from it.
func TestIntegrationPodmanStore(t *testing.T) {
	t.Parallel()
	tarPath := prerequisites(t)
	podman := testutil.RequirePodman(t)
	dir := t.TempDir()
	graph := filepath.Join(dir, "graph")
	// podman 4.3 refuses a runroot path of over 50 characters.
	runroot, err := os.MkdirTemp("", "prun")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(runroot) })
	cmd := exec.Command(podman.Path, "--root", graph, "--runroot", runroot, "--storage-driver", "overlay",
		"import", podman.PolicyFlag, tarPath, "podimg")
	cmd.Env = append(os.Environ(), "PODMAN_IGNORE_CGROUPSV1_WARNING=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	e := &Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), StorageRoot: graph}
	ctx := context.Background()
	t.Cleanup(func() {
		_ = e.Remove(context.Background(), "p", true)
		if s, err := e.storeOpen(); err == nil {
			_, _ = s.Shutdown(true)
		}
		_ = e.Close()
	})
	img, err := e.ImageInspect(ctx, "podimg")
	if err != nil || !slices.Contains(img.Names, "localhost/podimg:latest") {
		t.Fatalf("podman's image in the shared store: %+v, %v", img, err)
	}
	if _, err := e.Run(ctx, "podimg", &RunOptions{Name: "p", Command: []string{"/bin/counter", "-interval", "50ms"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "p", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	if _, err := e.Checkpoint(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	at := lastCounter(logsOf(t, e, "p"))
	if _, err := e.Restore(ctx, "p", nil); err != nil {
		t.Fatal(err)
	}
	checkContinues(t, waitLog(t, e, "p", "counter after restore", func(l string) bool { return lastCounter(l) >= at+2 }), at)
}

// holdsFile reports whether the CRIU images in dir record an open regular
// file whose path ends in name.
func holdsFile(t *testing.T, dir, name string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "files.img"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := criuimg.ReadFiles(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Reg != nil && strings.HasSuffix(f.Reg.Name, "/"+name) {
			return true
		}
	}
	return false
}
