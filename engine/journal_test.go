package engine

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestProcStart(t *testing.T) {
	a, err := procStart(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("procStart(self) = %d, %v", a, err)
	}
	if b, _ := procStart(os.Getpid()); b != a {
		t.Errorf("procStart(self) = %d, then %d", a, b)
	}
	if _, err := procStart(deadPID(t)); err == nil {
		t.Errorf("procStart(a reaped pid) succeeded")
	}
	if s, err := procSession(os.Getpid()); err != nil || s != unixGetsid(t) {
		t.Errorf("procSession(self) = %d, %v, want %d", s, err, unixGetsid(t))
	}
	if !alive(os.Getpid()) || alive(deadPID(t)) {
		t.Errorf("alive(self) = %v, alive(a reaped pid) = %v", alive(os.Getpid()), alive(deadPID(t)))
	}
}

// deadPID returns the pid of a process that ran and was reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), opFile)
	j, err := beginOp(path, opRecord{Op: opExport, Phase: "prepare", Archive: "/x/.a.tmp-1"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := readOpRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Op != opExport || r.Phase != "prepare" || r.PID != os.Getpid() || r.Start == 0 || r.Archive != "/x/.a.tmp-1" || r.At.IsZero() || !r.ownerAlive() {
		t.Errorf("record after beginOp = %+v (owner alive %v)", r, r.ownerAlive())
	}
	j.phase("dump")
	if err := j.update(func(r *opRecord) { r.Volumes = append(r.Volumes, "v") }); err != nil {
		t.Fatal(err)
	}
	if r, err = readOpRecord(path); err != nil || r.Phase != "dump" || len(r.Volumes) != 1 {
		t.Errorf("record after phase and update = %+v, %v", r, err)
	}
	// Another process with this pid is not the owner.
	r.Start++
	if r.ownerAlive() {
		t.Errorf("ownerAlive with another start time = true")
	}
	r.PID = deadPID(t)
	if r.ownerAlive() {
		t.Errorf("ownerAlive of a reaped pid = true")
	}
	j.end()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record after end: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Errorf("left beside the record: %v", ents)
	}
	var nilJournal *journal
	nilJournal.phase("x")
	nilJournal.end()
	if err := nilJournal.update(func(*opRecord) {}); err != nil {
		t.Errorf("update of a nil journal = %v", err)
	}
}

// killedOp makes, on a fresh engine without runc, container "c" in state
// st (whose init and monitor are gone unless st.PID says otherwise) with
// the record of an operation rec its killed process left; it returns the
// engine and the container's directory.
func killedOp(t *testing.T, st Container, rec opRecord) (*Engine, string) {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	e := &Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), RuntimePath: "/bin/true"}
	st.ID, st.Name = strings.Repeat("c", 64), "c"
	if st.Status == StatusRunning && st.MonitorPID == 0 {
		st.MonitorPID = deadPID(t)
	}
	cdir := e.containerDir(st.ID)
	if err := os.MkdirAll(filepath.Join(cdir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveState(&st); err != nil {
		t.Fatal(err)
	}
	rec.Op = cmpOr(rec.Op, opExport)
	j, err := beginOp(filepath.Join(cdir, opFile), rec)
	if err != nil {
		t.Fatal(err)
	}
	// Its process is gone.
	if err := j.update(func(r *opRecord) { r.PID = deadPID(t) }); err != nil {
		t.Fatal(err)
	}
	return e, cdir
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// touch creates the files (and their directories).
func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReconcileDump reconciles checkpoints and exports whose process was
// killed, as List (ps, inspect, ...) does, with the container's init gone.
func TestReconcileDump(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		st        Status // recorded
		stop, pre bool
		complete  bool // CRIU finished the dump
		want      Status
		images    bool // the dump's images stay
	}{
		{name: "stopped by a complete dump", st: StatusRunning, stop: true, complete: true, want: StatusCheckpointed, images: true},
		{name: "dump not complete", st: StatusRunning, stop: true, want: StatusExited},
		{name: "leave running, init gone", st: StatusRunning, complete: true, want: StatusExited},
		{name: "recorded checkpointed", st: StatusCheckpointed, stop: true, complete: true, want: StatusCheckpointed, images: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := Container{Status: tt.st, PID: deadPID(t), ExitCode: 0}
			archive := filepath.Join(t.TempDir(), ".a.tar.zst.tmp-1")
			e, cdir := killedOp(t, st, opRecord{Stop: tt.stop, TCP: true, Archive: archive,
				ImageDir: filepath.Join(t.TempDir(), "checkpoint"), LayerDirs: []string{filepath.Join(t.TempDir(), "layers")}})
			j, _ := readOpRecord(filepath.Join(cdir, opFile))
			touch(t, archive, filepath.Join(j.LayerDirs[0], "0"), filepath.Join(cdir, "cpuinfo-1", "cpuinfo.img"), e.criuConfigPath(st.ID),
				filepath.Join(j.ImageDir, "inventory.img"))
			if tt.complete {
				touch(t, filepath.Join(e.workDir(strings.Repeat("c", 64)), "stats-dump"))
			}
			list, err := e.List(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("List = %v, %v", list, err)
			}
			c := list[0]
			if c.Status != tt.want {
				t.Errorf("status after reconcile = %s, want %s", c.Status, tt.want)
			}
			if tt.want == StatusCheckpointed && tt.st == StatusRunning && (!c.CheckpointTCP || c.ImageDir != j.ImageDir || c.PID != 0 || c.CheckpointedAt.IsZero()) {
				t.Errorf("checkpointed record = %+v, want TCP, ImageDir %s, no PID, a time", c, j.ImageDir)
			}
			if got := exists(filepath.Join(j.ImageDir, "inventory.img")); got != tt.images {
				t.Errorf("images kept = %v, want %v", got, tt.images)
			}
			for _, p := range []string{filepath.Join(cdir, opFile), archive, j.LayerDirs[0], filepath.Join(cdir, "cpuinfo-1"), e.criuConfigPath(c.ID)} {
				if exists(p) {
					t.Errorf("%s left after reconcile", p)
				}
			}
		})
	}
}

// TestReconcilePreCheckpoint puts back the pre-checkpoint a killed -P
// moved aside, and keeps a recorded one that was not moved yet.
func TestReconcilePreCheckpoint(t *testing.T) {
	ctx := context.Background()
	for _, moved := range []bool{true, false} {
		rec := &PreCheckpointRecord{Images: format.Digest("sha256:" + strings.Repeat("0", 64)), At: time.Now().UTC()}
		e, cdir := killedOp(t, Container{Status: StatusRunning, PID: deadPID(t), PreCheckpoint: rec},
			opRecord{PreCheckpoint: true, ImageDir: filepath.Join(t.TempDir(), "unused")})
		pre, aside := filepath.Join(cdir, "pre-checkpoint"), e.preAsideDir(strings.Repeat("c", 64))
		if moved {
			touch(t, filepath.Join(aside, "old.img"), filepath.Join(pre, "new.img"))
		} else {
			touch(t, filepath.Join(pre, "old.img"))
		}
		if _, err := e.List(ctx); err != nil {
			t.Fatal(err)
		}
		if !exists(filepath.Join(pre, "old.img")) || exists(filepath.Join(pre, "new.img")) || exists(aside) {
			t.Errorf("moved=%v: after reconcile pre-checkpoint/old.img %v, new.img %v, aside %v; want the old level back", moved,
				exists(filepath.Join(pre, "old.img")), exists(filepath.Join(pre, "new.img")), exists(aside))
		}
	}
}

// TestReconcileStart records a container the monitor of a killed restore
// started as running under it, and leaves one it did not start
// checkpointed with its images.
func TestReconcileStart(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		start *startRecord
		keep  bool
		want  Status
	}{
		{name: "started", start: &startRecord{PID: os.Getpid()}, want: StatusRunning},
		{name: "started, keep", start: &startRecord{PID: os.Getpid()}, keep: true, want: StatusRunning},
		{name: "failed", start: &startRecord{Error: "runc restore failed"}, want: StatusCheckpointed},
		{name: "no record", want: StatusCheckpointed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := strings.Repeat("c", 64)
			e, cdir := killedOp(t, Container{Status: StatusCheckpointed}, opRecord{Op: opRestore, Keep: tt.keep})
			imgDir := e.CheckpointDir(id)
			if err := e.reconcileLockedRecord(cdir, func(r *opRecord) { r.ImageDir = imgDir }); err != nil {
				t.Fatal(err)
			}
			touch(t, filepath.Join(imgDir, "inventory.img"))
			if tt.start != nil {
				recordStart(cdir, *tt.start, nil)
			}
			list, err := e.List(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("List = %v, %v", list, err)
			}
			c := list[0]
			if c.Status != tt.want {
				t.Errorf("status after reconcile = %s, want %s", c.Status, tt.want)
			}
			if tt.want == StatusRunning && (c.PID != os.Getpid() || c.MonitorPID != os.Getpid() || c.RestoredAt.IsZero()) {
				t.Errorf("running record = %+v, want the monitor's pids and a restore time", c)
			}
			wantImages := tt.want != StatusRunning || tt.keep
			if got := exists(filepath.Join(imgDir, "inventory.img")); got != wantImages {
				t.Errorf("images kept = %v, want %v", got, wantImages)
			}
			if exists(filepath.Join(cdir, opFile)) {
				t.Errorf("op.json left after reconcile")
			}
		})
	}
}

// reconcileLockedRecord changes the operation record in container
// directory cdir.
func (e *Engine) reconcileLockedRecord(cdir string, f func(*opRecord)) error {
	path := filepath.Join(cdir, opFile)
	r, err := readOpRecord(path)
	if err != nil {
		return err
	}
	j := &journal{path: path, rec: *r}
	return j.update(f)
}

// TestReconcileBusy leaves a record whose lock is held (the operation
// runs, or a child of a killed one finishes it), and says so.
func TestReconcileBusy(t *testing.T) {
	e, cdir := killedOp(t, Container{Status: StatusRunning, PID: deadPID(t)}, opRecord{Stop: true})
	l, err := fsutil.TryLock(filepath.Join(cdir, lockFile), "runc checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(cdir, opFile)) {
		t.Errorf("a record whose lock is held was reconciled")
	}
	_, _, err = e.lock(context.Background(), "c", "rm")
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "was killed") {
		t.Errorf("lock while a killed operation's child holds the lock = %v, want ErrBusy saying it was killed", err)
	}
	l.Unlock()
	c, l2, err := e.lock(context.Background(), "c", "rm")
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()
	if exists(filepath.Join(cdir, opFile)) || c.Status != StatusExited {
		t.Errorf("after lock: record left %v, status %s; want reconciled, exited", exists(filepath.Join(cdir, opFile)), c.Status)
	}
}

// TestReconcileImport undoes an import whose process was killed before
// its container existed: the volume it made, its staging directory and
// its record go; a volume another container uses now stays; a live
// import (its staging lock held) is left alone.
func TestReconcileImport(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	e := &Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), RuntimePath: "/bin/true"}
	st := e.volumeStore()
	for _, v := range []string{"mine", "used"} {
		if _, err := st.Create(ctx, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	user := &Container{ID: strings.Repeat("u", 64), Name: "user", Status: StatusExited, Mounts: []Mount{{Type: "volume", Name: "used", Destination: "/u"}}}
	if err := os.MkdirAll(e.containerDir(user.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveState(user); err != nil {
		t.Fatal(err)
	}
	staging, l, err := e.newStaging(-1)
	if err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(staging, "checkpoint", "inventory.img"))
	j, err := beginOp(e.importRecordPath(staging), opRecord{Op: opImport, Phase: "create", Staging: staging,
		Volumes: []string{"mine", "used"}, Container: strings.Repeat("d", 64)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.List(ctx); err != nil {
		t.Fatal(err)
	}
	if !exists(j.path) || !exists(staging) {
		t.Fatalf("a live import was reconciled")
	}
	l.Unlock() // killed
	list, err := e.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	for p, want := range map[string]bool{j.path: false, staging: false, staging + ".lock": false} {
		if exists(p) != want {
			t.Errorf("%s exists = %v after reconcile, want %v", p, !want, want)
		}
	}
	if ok, _ := st.Exists("mine"); ok {
		t.Errorf("the volume the import made is left")
	}
	if ok, _ := st.Exists("used"); !ok {
		t.Errorf("a volume in use was removed")
	}
}

// unixGetsid returns this process' session ID.
func unixGetsid(t *testing.T) int {
	t.Helper()
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}
