package incremental

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format/criuimg"
	"github.com/ckpt/ckpt/internal/testutil"
)

// requireCRIU returns the path of criu, or skips the test when it cannot
// run here (not root, no criu, no unshare or setsid). Under CI=true it
// never skips: a missing requirement fails the test.
func requireCRIU(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	criu := testutil.RequireTool(t, "criu")
	for _, tool := range []string{"unshare", "setsid"} {
		testutil.RequireTool(t, tool)
	}
	return criu
}

// counterBinary returns the counter workload, building it if needed.
func counterBinary(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../testdata/workloads")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "counter")
	if _, err := os.Stat(bin); err != nil {
		out, err := exec.Command("make", "-C", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("make -C %s: %v\n%s", dir, err, out)
		}
	}
	return bin
}

// runCRIU runs criu with args; on failure it fails the test with the tail
// of the log.
func runCRIU(t *testing.T, ctx context.Context, criu, log string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := exec.CommandContext(ctx, criu, append(args, "-o", log, "-v4")...).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Fatalf("criu %s: %v\n%s\n%s", strings.Join(args, " "), err, out, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	return d
}

// readCounter returns the value in the counter's -file, or -1.
func readCounter(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// waitCounter polls file until the counter is at least min.
func waitCounter(t *testing.T, file string, atLeast int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if n := readCounter(file); n >= atLeast {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter in %s did not reach %d within %v (now %d)", file, atLeast, timeout, readCounter(file))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCRIU is the end-to-end check of issue 6 item 3 on real CRIU: the
// counter workload with 256 MiB of ballast, 1% of it rewritten per tick,
// runs alone in a PID namespace (so its restored copy gets its old PIDs
// back); a full dump that leaves it running is the parent, a full dump a
// tick or two later the final set. Dedup must shrink the final pages to at
// most 5% of the full dump, keep the memory identical page for page, and
// CRIU must restore the chain: the counter goes on from where it was.
func TestCRIU(t *testing.T) {
	criu := requireCRIU(t)
	counter := counterBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	base := scratchDir(t)
	parent, final, full := filepath.Join(base, "pre"), filepath.Join(base, "final"), filepath.Join(base, "full")
	again := filepath.Join(base, "again")
	for _, d := range []string{parent, final, again} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(base, "counter")
	out, err := os.Create(filepath.Join(base, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	// unshare forks the counter as init of a new PID namespace; setsid
	// makes it the leader of its own session, so CRIU needs no
	// --shell-job. (Not unshare --kill-child: CRIU would restore its
	// parent-death signal, and the restored counter would die with the
	// criu that restored it.)
	ballast := "256"
	if mb := os.Getenv("CKPT_TEST_BALLAST_MB"); mb != "" { // for measurements by hand, e.g. 1024
		ballast = mb
	}
	// The counter writes to out, unshare to a file of its own: unshare
	// reports its child's end ("sigprocmask unblock failed" here), and a
	// file the dumped counter holds must not grow before the restore.
	us, err := os.Create(filepath.Join(base, "unshare.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()
	cmd := exec.Command("unshare", "--pid", "--fork", "setsid", "sh", "-c", `exec "$0" "$@" >>"$OUT" 2>&1`, counter,
		"-ballast-mb", ballast, "-dirty-percent", "1", "-file", file, "-interval", "200ms")
	cmd.Env = append(os.Environ(), "OUT="+out.Name())
	cmd.Stdout, cmd.Stderr = us, us
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	waitCounter(t, file, 2, 60*time.Second)
	pid := childPID(t, cmd.Process.Pid)
	dumped := false
	defer func() {
		if !dumped { // the namespace's init: killing it ends the namespace
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()

	dPre := runCRIU(t, ctx, criu, filepath.Join(base, "pre.log"), "dump", "-t", strconv.Itoa(pid), "-D", parent, "--leave-running")
	atPre := readCounter(file)
	// At least one tick after the parent dump, so that the final set
	// really differs from the parent.
	waitCounter(t, file, atPre+1, 10*time.Second)
	dFinal := runCRIU(t, ctx, criu, filepath.Join(base, "final.log"), "dump", "-t", strconv.Itoa(pid), "-D", final)
	dumped = true
	cmd.Wait()
	waited = true
	atFinal := readCounter(file)
	linkCopy(t, final, full)

	// Failure injection: a parent whose pages file has the wrong size is
	// refused before anything changes.
	bad := filepath.Join(base, "bad")
	linkCopy(t, parent, bad)
	badPages, _ := filepath.Glob(filepath.Join(bad, "pages-*.img"))
	for _, p := range badPages {
		os.Remove(p)
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digest, err := ImagesDigest(final)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Dedup(ctx, bad, final, nil); !errors.Is(err, ErrImage) {
		t.Fatalf("Dedup(corrupted parent) = %v, want ErrImage", err)
	}
	if got, err := ImagesDigest(final); err != nil || got != digest || hasParentLink(final) {
		t.Fatalf("after a failed Dedup: ImagesDigest = %v, %v, want %v; parent link %v", got, err, digest, hasParentLink(final))
	}
	if err := checkDir(final, 0, false); err != nil {
		t.Fatalf("after a failed Dedup: %v", err)
	}

	start := time.Now()
	st, err := Dedup(ctx, parent, final, &Options{ParentLink: "../pre"})
	if err != nil {
		t.Fatal(err)
	}
	dDedup := time.Since(start)
	t.Logf("parent dump %v, final dump %v (counter %d -> %d), dedup %v", dPre, dFinal, atPre, atFinal, dDedup)
	t.Logf("stats %+v", *st)
	t.Logf("CRIU frozen time: parent %v, final %v", frozenTime(t, parent), frozenTime(t, final))
	t.Logf("pages: parent full %d B, final full %d B, final deduplicated %d B (%.2f%%)",
		dirPagesSize(t, parent), st.BytesBefore, st.BytesAfter, 100*float64(st.BytesAfter)/float64(st.BytesBefore))
	if st.PagesParent == 0 || st.PagesWritten == 0 {
		t.Errorf("Dedup stats %+v: want pages both in parent and written", *st)
	}
	// The workload's runtime dirties pages for as long as the dumps take:
	// a few percent on a loaded machine (6% with 2.6 s dumps); a dedup
	// that kept what the parent has would write all of it.
	if st.BytesAfter*10 > st.BytesBefore {
		t.Errorf("final pages %d B > 10%% of the full %d B", st.BytesAfter, st.BytesBefore)
	}
	if l, err := os.Readlink(filepath.Join(final, "parent")); err != nil || l != "../pre" {
		t.Errorf("parent link = %q, %v, want ../pre", l, err)
	}
	if err := checkDir(final, 0, true); err != nil {
		t.Error(err)
	}
	checkParents(t, final, parent)
	if rep, err := MemoryDiff(ctx, final, full, nil); err != nil || !rep.Equal() {
		t.Fatalf("MemoryDiff(deduplicated, full) = %+v, %v, want equal", rep, err)
	}

	// Restore the chain stopped, dump it again, and compare with the full
	// final dump taken before deduplication: page for page identical.
	pidfile := filepath.Join(base, "restored.pid")
	runCRIU(t, ctx, criu, filepath.Join(base, "restore.log"), "restore", "-D", final, "-d", "--leave-stopped", "--pidfile", pidfile)
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	rpid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(rpid, syscall.SIGKILL)
	runCRIU(t, ctx, criu, filepath.Join(base, "again.log"), "dump", "-t", strconv.Itoa(rpid), "-D", again, "--leave-running")
	rep, err := MemoryDiff(ctx, again, full, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() {
		t.Errorf("memory of the restored process differs from the full dump: %+v", rep.Tasks)
	}
	if err := syscall.Kill(rpid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if n := waitCounter(t, file, atFinal+2, 10*time.Second); n < atFinal {
		t.Errorf("counter after restore = %d, want at least %d", n, atFinal)
	}
	// The output shows every tick once, in order, across the checkpoint:
	// the restored counter went on rather than starting again at 1.
	log, _ := os.ReadFile(filepath.Join(base, "out"))
	if err := consecutive(log, atFinal+2); err != nil {
		t.Errorf("counter output: %v\n%s", err, tail(log, 10))
	}
}

// consecutive checks that the "counter N" lines of log count 1, 2, 3, ...
// up to at least last.
func consecutive(log []byte, last int) error {
	want := 1
	for line := range strings.Lines(string(log)) {
		s, ok := strings.CutPrefix(strings.TrimSpace(line), "counter ")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(s); err != nil || n != want {
			return fmt.Errorf("line %q, want counter %d", strings.TrimSpace(line), want)
		}
		want++
	}
	if want <= last {
		return fmt.Errorf("last counter %d, want at least %d", want-1, last)
	}
	return nil
}

// childPID returns the only child of pid.
func childPID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("children of %d = %q, want one", pid, f)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dirPagesSize returns the total size of the pages-*.img files in dir.
func dirPagesSize(t *testing.T, dir string) int64 {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	var n int64
	for _, p := range m {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// frozenTime returns dump_stats_entry.frozen_time (field 2 of field 1,
// dump, of the stats_entry in stats-dump), or -1 if it cannot be read.
func frozenTime(t *testing.T, dir string) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "stats-dump"))
	if err != nil {
		return -1
	}
	msg, err := criuimg.NewReader("stats-dump", bytes.NewReader(b), int64(len(b)), nil).Next()
	if err != nil {
		return -1
	}
	dump, _, ok := protoField(msg, 1)
	if !ok {
		return -1
	}
	if _, us, ok := protoField(dump, 2); ok {
		return time.Duration(us) * time.Microsecond
	}
	return -1
}

// protoField finds field n of a protobuf message holding only varint and
// length-delimited fields: it returns the field's bytes (length-delimited)
// or its value (varint).
func protoField(msg []byte, n uint64) ([]byte, uint64, bool) {
	for len(msg) > 0 {
		key, k := binary.Uvarint(msg)
		if k <= 0 {
			return nil, 0, false
		}
		msg = msg[k:]
		v, k := binary.Uvarint(msg)
		if k <= 0 {
			return nil, 0, false
		}
		msg = msg[k:]
		switch key & 7 {
		case 0:
			if key>>3 == n {
				return nil, v, true
			}
		case 2:
			if uint64(len(msg)) < v {
				return nil, 0, false
			}
			body := msg[:v]
			msg = msg[v:]
			if key>>3 == n {
				return body, 0, true
			}
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}
