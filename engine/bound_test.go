package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
)

func TestCRIULimitsTimeout(t *testing.T) {
	for _, tc := range []struct {
		l    CRIULimits
		work int64
		want time.Duration
	}{
		{CRIULimits{}, 0, DefaultCRIUTimeout},
		{CRIULimits{}, -1, DefaultCRIUTimeout},
		{CRIULimits{}, 3 << 29, DefaultCRIUTimeout + 3*DefaultCRIUTimeoutPerGiB/2},
		{CRIULimits{Timeout: time.Second, TimeoutPerGiB: 10 * time.Second}, 2 << 30, 21 * time.Second},
	} {
		if got := tc.l.timeout(tc.work); got != tc.want {
			t.Errorf("%+v.timeout(%d) = %v, want %v", tc.l, tc.work, got, tc.want)
		}
	}
	if got := (CRIULimits{}).maxLog(); got != DefaultCRIUMaxLog {
		t.Errorf("default maxLog = %d", got)
	}
}

// TestLogTailReadsTheEnd: a log of 1 GiB (sparse) is quoted from its end
// without reading the rest; lines are cut.
func TestLogTailReadsTheEnd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "restore.log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 4000)
	if _, err := f.WriteAt([]byte("\n(01.0) Error (criu/mem.c:1): first\n(02.0) Error (criu/cr-restore.c:2): "+long+"\n(03.0) done\n"), 1<<30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := logTail(p, 5)
	runtime.ReadMemStats(&after)
	if len(got) != 2 || got[0] != "(01.0) Error (criu/mem.c:1): first" || len(got[1]) > maxLogLine+10 || !strings.HasSuffix(got[1], "[...]") {
		t.Errorf("logTail() = %q", got)
	}
	// (TotalAlloc counts the parallel tests' allocations too.)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("logTail allocated %d bytes for a 1 GiB log", n)
	}
}

// TestCheckpointBounded: a dump whose runc (and what it started) hangs is
// killed at the timeout, one whose CRIU logs without end at the log's
// limit; either way the container keeps running, and nothing of the
// group stays.
func TestCheckpointBounded(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name, body string
		limits     CRIULimits
		want       error
	}{
		{"hang", `sleep 3600 & echo $! > "$pids"; echo $$ >> "$pids"; wait`, CRIULimits{Timeout: time.Second, TimeoutPerGiB: time.Millisecond}, ErrTimeout},
		{"log", `echo $$ > "$pids"; while :; do yes "(00.1) spin" | head -c 65536; sleep 0.01; done >> "$work/dump.log"`, CRIULimits{MaxLog: 1 << 20, Timeout: 30 * time.Second}, ErrLogLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t)
			pids := filepath.Join(t.TempDir(), "pids")
			e.RuntimePath = fakeBin(t, t.TempDir(), "runc", fmt.Sprintf(`pids=%q
while [ $# -gt 0 ]; do
	case "$1" in
	--work-path) work=$2; shift ;;
	checkpoint) sub=checkpoint ;;
	esac
	shift
done
[ "$sub" = checkpoint ] || exit 0
%s`, pids, tc.body))
			e.CRIULimits = tc.limits
			fakeRunning(t, e, "c")
			t0 := time.Now()
			_, err := e.Checkpoint(context.Background(), "c", nil)
			first, _, _ := strings.Cut(fmt.Sprint(err), "\n")
			if !errors.Is(err, tc.want) || !strings.Contains(first, "runc checkpoint killed: ") || !leftState(err, LeftRunning) {
				t.Fatalf("Checkpoint = %v, want %v saying the container still runs", err, tc.want)
			}
			t.Logf("killed after %v: %s", time.Since(t0).Round(time.Millisecond), first)
			b, _ := os.ReadFile(pids)
			for _, f := range strings.Fields(string(b)) {
				pid, _ := strconv.Atoi(f)
				for i := 0; i < 100 && alive(pid); i++ {
					time.Sleep(10 * time.Millisecond)
				}
				if alive(pid) {
					t.Errorf("process %d of the killed runc still runs", pid)
				}
			}
			if c, err := e.Inspect(context.Background(), "c"); err != nil || c.Status != StatusRunning {
				t.Errorf("after the killed dump: %+v, %v; want running", c, err)
			}
		})
	}
}

func TestKeepLog(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.log"), filepath.Join(dir, "big.log")
	if err := os.WriteFile(small, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*maxKeptLogPart+4096)/16)
	copy(data[len(data)-4:], "END\n")
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := keepLog(small, small+".kept"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(small + ".kept"); err != nil || string(b) != "a\nb\n" {
		t.Errorf("small log kept as %q, %v", b, err)
	}
	if err := keepLog(big, big+".kept"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(big + ".kept")
	if err != nil || len(b) > 2*maxKeptLogPart+64 || !bytes.HasSuffix(b, []byte("END\n")) || !bytes.Contains(b, []byte("[... 4096 bytes left out ...]")) {
		t.Errorf("big log kept: %d bytes, %v", len(b), err)
	}
	for _, p := range []string{small, big} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := keepLog(empty, empty+".kept"); err == nil {
		t.Errorf("an empty log was kept")
	}
}

// TestKeepRestoreLogs: the logs of a failed restore move to Root/logs,
// of which the newest maxKeptLogs are kept.
func TestKeepRestoreLogs(t *testing.T) {
	e := testEngine(t)
	id := newID()
	work := e.workDir(id)
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var last string
	for i := 0; i < maxKeptLogs+3; i++ {
		if err := os.WriteFile(filepath.Join(work, "restore.log"), []byte(fmt.Sprintf("restore %d\n", i)), 0o600); err != nil {
			t.Fatal(err)
		}
		rl, runcLog := e.keepRestoreLogs(id, work)
		if rl == "" || runcLog != "" {
			t.Fatalf("keepRestoreLogs = %q, %q", rl, runcLog)
		}
		last = rl
	}
	ents, _ := os.ReadDir(filepath.Join(e.root(), logsDir))
	if len(ents) != maxKeptLogs {
		t.Errorf("%d log directories kept, want %d", len(ents), maxKeptLogs)
	}
	if b, err := os.ReadFile(last); err != nil || string(b) != fmt.Sprintf("restore %d\n", maxKeptLogs+2) {
		t.Errorf("newest kept log = %q, %v", b, err)
	}
}

// TestSweepContainer: what an operation that died left in a container's
// directories goes when the container is next locked.
func TestSweepContainer(t *testing.T) {
	e := testEngine(t)
	e.TmpDir = mountTmpfs(t, "size=16m")
	c := fakeRunning(t, e, "c")
	dir := e.containerDir(c.ID)
	left := []string{
		filepath.Join(dir, "cpuinfo-123"), filepath.Join(dir, exportImagesDir), filepath.Join(e.workDir(c.ID), "layers"),
		filepath.Join(e.TmpDir, c.ID, exportImagesDir), filepath.Join(e.TmpDir, c.ID, "layers"),
		filepath.Join(e.root(), "import", "staging-123"),
	}
	keep := []string{e.CheckpointDir(c.ID), e.PreCheckpointDir(c.ID), filepath.Join(e.TmpDir, c.ID, "checkpoint")}
	for _, d := range append(append([]string{}, left...), keep...) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "pages-1.img"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, l, err := e.lock(context.Background(), "c", "test")
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	for _, d := range left {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	for _, d := range keep {
		if _, err := os.Stat(filepath.Join(d, "pages-1.img")); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}

// TestCloseRemovesIdleRunRoot: Close removes the default run root when
// the engine has no containers and no other engine has its store open.
func TestCloseRemovesIdleRunRoot(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("uses a real image store")
	}
	e := &Engine{Root: filepath.Join(t.TempDir(), "root")}
	rr := e.runRoot()
	t.Cleanup(func() { _ = os.RemoveAll(rr) })
	open := func(e *Engine) {
		t.Helper()
		if _, err := e.storeOpen(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(rr); err != nil {
			t.Fatalf("run root %s: %v", rr, err)
		}
	}
	// Another engine on the same root has its store open: kept.
	open(e)
	other := &Engine{Root: e.Root}
	open(other)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rr); err != nil {
		t.Errorf("run root removed while another engine uses it: %v", err)
	}
	// A container exists: kept.
	if err := os.MkdirAll(e.containerDir(newID()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rr); err != nil {
		t.Errorf("run root removed while the engine has a container: %v", err)
	}
	// None: removed.
	if err := os.RemoveAll(e.containersDir()); err != nil {
		t.Fatal(err)
	}
	open(e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rr); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("idle run root %s left: %v", rr, err)
	}
}
