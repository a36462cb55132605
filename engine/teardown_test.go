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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/testutil"
)

// misbehavingCRIU puts a criu first on PATH (runc 1.1 runs the criu on
// PATH) that runs the real one, except for the second `criu swrk` of each
// runc process (the first asks CRIU's version): that one misbehaves as
// mode says, standing for a CRIU that a corrupt image sends astray:
//
//   - "hang": it never answers.
//   - "log": it logs without end.
//   - "yard": it dies (SIGABRT, as on a CRIU BUG) leaving what CRIU
//     leaves then: its cgroup yard, a tmpfs in the work directory with a
//     hierarchy bound in it (canary stands for the host's pids
//     hierarchy), and a /tmp/.criu.mntns.* directory that its log names.
//
// root is the engine root whose (single) container it restores. It
// returns the directory where the fake records its pid (file pid) and, in
// "yard" mode, the mount namespace directory it made (file mntns). The
// test must not be parallel (it sets PATH).
func misbehavingCRIU(t *testing.T, mode, root, canary string) string {
	t.Helper()
	real := testutil.RequireTool(t, "criu")
	bin, state := t.TempDir(), t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
real=%q state=%q root=%q canary=%q
[ "$1" = swrk ] || exec "$real" "$@"
mkdir "$state/runc-$PPID" 2>/dev/null && exec "$real" "$@"
echo $$ > "$state/pid"
work=$(ls -d "$root"/containers/*/work | head -n 1)
case %q in
hang) exec sleep 3600 ;;
log) # About as fast as CRIU logged over a corrupt pagemap (21 MB/s).
	while :; do yes "(00.000001) pie: 1: spinning over a corrupt pagemap entry" | head -c 1048576; sleep 0.05; done >> "$work/restore.log" ;;
yard)
	y=$(mktemp -d "$work/.criu.cgyard.XXXXXX")
	mount -t tmpfs none "$y" && mkdir "$y/pids" && mount --bind "$canary" "$y/pids" || exit 3
	m=$(mktemp -d /tmp/.criu.mntns.XXXXXX) && chmod 777 "$m" && echo "$m" > "$state/mntns"
	{ echo "(00.000100) cg: Preparing cgroups yard (cgroups restore mode 0x4)"
	  echo "(00.000200) mnt: 	[$m/13-0000000000/proc](135->205)"
	  echo "(00.000300) Error (criu/bfd.c:330): BUG at criu/bfd.c:330"; } >> "$work/restore.log"
	kill -ABRT $$ ;;
esac
exit 1
`, real, state, root, canary, mode)
	if err := os.WriteFile(filepath.Join(bin, "criu"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return state
}

// exportCounter runs a counter on a new engine, exports it (stopping it)
// and returns the archive.
func exportCounter(t *testing.T, args ...string) string {
	t.Helper()
	src := realEngine(t)
	ctx := context.Background()
	cmd := append([]string{"/bin/counter", "-interval", "50ms", "-file", ""}, args...)
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "c", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "c", "counter 2", func(l string) bool { return lastCounter(l) >= 2 })
	archive := filepath.Join(t.TempDir(), "c.tar")
	if _, err := src.Export(ctx, "c", archive, &ExportOptions{Compression: "none"}); err != nil {
		t.Fatal(err)
	}
	return archive
}

// checkGone checks that the process recorded in state/pid is gone.
func checkGone(t *testing.T, state string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "pid"))
	if err != nil {
		t.Fatalf("the misbehaving CRIU never ran: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 0 && alive(pid) {
		t.Errorf("the misbehaving CRIU (pid %d) still runs", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// checkRolledBack checks that engine e is as before an import that
// failed: no container, no mount below its directory, no cgroup.
func checkRolledBack(t *testing.T, e *Engine) {
	t.Helper()
	if list, err := e.List(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("containers after a failed import: %v, %v", list, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root(), "import")); len(ents) != 0 {
		t.Errorf("staging directories left: %v", ents)
	}
	ps, err := fsutil.MountsUnder(filepath.Dir(e.Root), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		// The image store's own mounts (overlay's private home) stay.
		if !strings.HasPrefix(p, e.storageRoot()+"/") {
			t.Errorf("mount left: %s", p)
		}
	}
	if ls := cgroupLeaks(e); len(ls) > 0 {
		t.Errorf("cgroups left: %v", ls)
	}
}

// TestImportCRIUDiesMidway: a CRIU that dies midway through a restore
// leaves its cgroup yard mounted in the work directory, with a host
// hierarchy in it. The rollback unmounts it before removing the
// container's directory, so nothing of the hierarchy is touched (a canary
// file in the directory bound there survives), no mount and no container
// is left, CRIU's mount namespace directory is gone, and the error names
// a restore.log that is still there.
func TestImportCRIUDiesMidway(t *testing.T) {
	archive := exportCounter(t)
	dst := realEngine(t)
	canary := filepath.Join(t.TempDir(), "hierarchy")
	if err := os.MkdirAll(filepath.Join(canary, "some-cgroup"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "some-cgroup", "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := misbehavingCRIU(t, "yard", dst.Root, canary)
	_, err := dst.Import(context.Background(), archive, nil)
	var x *ExitError
	if !errors.As(err, &x) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("Import = %v, want an *ExitError, rolled back", err)
	}
	t.Logf("import: %v", err)
	if b, rerr := os.ReadFile(x.LogPath); rerr != nil || !bytes.Contains(b, []byte("BUG at criu/bfd.c:330")) {
		t.Errorf("the error names %s: %v; want the failed restore's log, kept", x.LogPath, rerr)
	}
	if !strings.HasPrefix(x.LogPath, filepath.Join(dst.Root, logsDir)+"/") {
		t.Errorf("log kept at %s, want below %s", x.LogPath, filepath.Join(dst.Root, logsDir))
	}
	if b, rerr := os.ReadFile(filepath.Join(canary, "some-cgroup", "keep")); rerr != nil || string(b) != "keep" {
		t.Errorf("the hierarchy bound in the yard was written to: %q, %v", b, rerr)
	}
	m, rerr := os.ReadFile(filepath.Join(state, "mntns"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	if _, serr := os.Stat(strings.TrimSpace(string(m))); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("CRIU's %s is left: %v", strings.TrimSpace(string(m)), serr)
		_ = os.Remove(strings.TrimSpace(string(m)))
	}
	checkGone(t, state)
	checkRolledBack(t, dst)
}

// TestRestoreCRIULimits: a CRIU that never answers is killed at the
// timeout, one that logs without end at the log's limit; each error says
// so in its first line, nothing is left and the container stays
// checkpointed: it restores with a sane CRIU afterwards.
func TestRestoreCRIULimits(t *testing.T) {
	e := realEngine(t)
	ctx := context.Background()
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "b", Command: []string{"/bin/counter", "-interval", "50ms", "-file", ""}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "b", "counter 2", func(l string) bool { return lastCounter(l) >= 2 })
	path := os.Getenv("PATH")
	for _, tc := range []struct {
		mode   string
		limits CRIULimits
		want   error
		first  string
	}{
		{"hang", CRIULimits{Timeout: 2 * time.Second, TimeoutPerGiB: time.Millisecond}, ErrTimeout, "runc restore killed: it ran past its time limit of 2s"},
		{"log", CRIULimits{MaxLog: 8 << 20, Timeout: 20 * time.Second}, ErrLogLimit, "runc restore killed: CRIU's log grew past its limit of 8.0 MiB"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			if _, err := e.Checkpoint(ctx, "b", nil); err != nil {
				t.Fatal(err)
			}
			state := misbehavingCRIU(t, tc.mode, e.Root, "")
			e.CRIULimits = tc.limits
			t0 := time.Now()
			_, err := e.Restore(ctx, "b", nil)
			took := time.Since(t0)
			first, _, _ := strings.Cut(fmt.Sprint(err), "\n")
			if !errors.Is(err, tc.want) || !strings.Contains(first, tc.first) {
				t.Fatalf("Restore = %v; want %v, first line saying %q", err, tc.want, tc.first)
			}
			t.Logf("killed after %v: %s", took.Round(time.Millisecond), first)
			var x *ExitError
			if errors.As(err, &x) && x.LogPath != "" {
				b, err := os.ReadFile(x.LogPath)
				if err != nil {
					t.Errorf("the error names %s: %v", x.LogPath, err)
				}
				_, cut, _ := strings.Cut(string(b), "\n[... ")
				cut, _, _ = strings.Cut(cut, " bytes left out")
				t.Logf("log kept: %s, %d bytes (%s bytes cut out of the middle)", x.LogPath, len(b), cut)
			}
			checkGone(t, state)
			os.Setenv("PATH", path)
			e.CRIULimits = CRIULimits{}
			c, err := e.Inspect(ctx, "b")
			if err != nil || c.Status != StatusCheckpointed {
				t.Fatalf("after the killed restore: %+v, %v; want checkpointed", c, err)
			}
			ps, _ := fsutil.MountsUnder(filepath.Dir(e.Root), true)
			for _, p := range ps {
				// The image store's (the layer, overlay's home) and the
				// network namespace's pin stay.
				if !strings.HasPrefix(p, e.storageRoot()+"/") && p != e.netnsPath(c.ID) {
					t.Errorf("mount left: %s", p)
				}
			}
			if _, err := e.Restore(ctx, "b", nil); err != nil {
				t.Fatalf("restore with a sane CRIU: %v", err)
			}
			at := lastCounter(logsOf(t, e, "b"))
			waitLog(t, e, "b", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+2 })
		})
	}
}

// TestTwoRootsOneArchive: two engines restore one archive (the same
// container ID) at the same time, each into a cgroup of its own.
func TestTwoRootsOneArchive(t *testing.T) {
	t.Parallel()
	archive := exportCounter(t)
	ctx := context.Background()
	var seen []string
	for _, e := range []*Engine{realEngine(t), realEngine(t)} {
		r, err := e.Import(ctx, archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", r.Container.PID))
		if err != nil {
			t.Fatal(err)
		}
		want := e.cgroupParent() + "/" + r.Container.ID
		got := ""
		// Every hierarchy: v1 controllers and the unified one.
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[2] != want {
				t.Errorf("restored into cgroup %s, want %s", line, want)
			}
			got = parts[2]
		}
		seen = append(seen, got)
	}
	if seen[0] == seen[1] {
		t.Errorf("both roots restored into pids cgroup %s", seen[0])
	}
}

// buildCkpt builds cmd/ckpt into a temporary directory.
func buildCkpt(t *testing.T) string {
	t.Helper()
	goBin := testutil.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "ckpt")
	out, err := exec.Command(goBin, "build", "-tags="+testutil.BuildTags, "-o", bin, "../cmd/ckpt").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/ckpt: %v\n%s", err, out)
	}
	return bin
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestSIGTERMDuringImport sends SIGTERM to `ckpt restore -i` (the real
// binary, real runc and CRIU) once CRIU has forked the tasks it restores: ckpt
// stops CRIU (the restore runs in the detached monitor) and rolls the
// import back, leaving no container, mount, cgroup, runc state, staging
// directory or CRIU mount namespace directory.
func TestSIGTERMDuringImport(t *testing.T) {
	t.Parallel()
	bin := buildCkpt(t)
	// A ballast makes the restore take long enough to be interrupted.
	archive := exportCounter(t, "-ballast-mb", "256")
	dst := realEngine(t)
	cmd := exec.Command(bin, "--root", dst.Root, "--runroot", dst.RunRoot, "restore", "-i", archive)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var signalled time.Time
	for deadline := time.Now().Add(2 * time.Minute); signalled.IsZero(); {
		logs, _ := filepath.Glob(filepath.Join(dst.Root, "containers/*/work/restore.log"))
		// Once CRIU has forked the container's tasks: its cgroup yard and
		// mount namespaces are set up, the memory is being restored.
		if b, err := fileio.ReadTail(firstOf(logs), 1<<20); err == nil && bytes.Contains(b, []byte("Forking task")) {
			signalled = time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("ckpt restore -i ended before CRIU started: %v\n%s", err, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("CRIU never started")
		}
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("ckpt restore -i still runs a minute after SIGTERM\n%s", stderr.String())
	}
	t.Logf("exited %v after SIGTERM: %v\n%s", time.Since(signalled).Round(time.Millisecond), err, stderr.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") ||
		!strings.Contains(stderr.String(), "rolled back") {
		t.Errorf("ckpt restore -i after SIGTERM: %v; want exit status 1 and an error saying it was interrupted and rolled back", err)
	}
	checkRolledBack(t, dst)
	if ents, _ := os.ReadDir(dst.runcRoot()); len(ents) != 0 {
		t.Errorf("runc state left: %v", ents)
	}
	// CRIU's mount namespace directory, if its log names one, is gone.
	kept, _ := filepath.Glob(filepath.Join(dst.Root, logsDir, "*", "restore.log"))
	for _, l := range kept {
		b, _ := os.ReadFile(l)
		t.Logf("CRIU had made its cgroup yard: %v", bytes.Contains(b, []byte("cgroups yard")))
		seen := map[string]bool{}
		for _, m := range regexp.MustCompile(`/tmp/\.criu\.mntns\.[A-Za-z0-9]{6}`).FindAll(b, -1) {
			if seen[string(m)] {
				continue
			}
			seen[string(m)] = true
			if _, err := os.Stat(string(m)); err == nil {
				t.Errorf("CRIU's %s is left", m)
			}
		}
		if len(seen) == 0 {
			t.Errorf("CRIU's log %s names no mount namespace directory", l)
		}
	}
}
