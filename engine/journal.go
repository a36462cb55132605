package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
)

// Crash consistency.
//
// A checkpoint, export, restore, run or import changes the world in
// several steps, and a ckpt process can be killed (SIGKILL, OOM, a lost
// terminal) between any two. Each such operation journals itself: before
// its first change it writes an operation record ([opRecord]), durably,
// naming everything it is about to make; it updates the record's phase as
// it goes; and it removes the record once it has finished, or undone, its
// work. Container operations keep the record in containers/<id>/op.json
// and write it under the container's lock. An import keeps it in
// Root/import/<staging directory's name>.json under its staging lock,
// because its first changes (staging, volumes) come before its container
// exists.
//
// Locks are flocks, which the kernel drops when their holder dies. So a
// record whose lock is free is a killed process's: the next command that
// loads a container (List, Inspect and what is built on them, lock)
// reconciles it under the lock first, and only then reads the state. The
// rules look at the world, not at the phase, which is recorded for people
// and tests; see reconcileDump, reconcileStart and reconcileImport.
//
// Children that carry on an operation's work hold its lock while they run,
// so nothing is reconciled under their feet: `runc checkpoint` (and with
// it CRIU's dump) inherits the container's lock, and the monitor holds it
// while runc creates, starts or restores the container, until it has
// recorded the outcome in start.json. A dump whose ckpt process was killed
// thus finishes, and the container is busy ([ErrBusy]) until it has.

// opFile is a container's operation record; startFile the monitor's
// record of its last start.
const (
	opFile    = "op.json"
	startFile = "start.json"
)

// Operations.
const (
	opCheckpoint = "checkpoint"
	opExport     = "export"
	opRestore    = "restore"
	opRun        = "run"
	opImport     = "import"
)

// opRecord is the journal of one operation in progress.
type opRecord struct {
	// Op is the operation: checkpoint, export, restore, run or import.
	Op string `json:"op"`
	// Phase is the step it began last (informational).
	Phase string `json:"phase"`
	// PID and Start (clock ticks after boot, /proc/<pid>/stat field 22)
	// identify the ckpt process that runs it; Boot is the boot's ID.
	PID   int    `json:"pid"`
	Start uint64 `json:"start,omitempty"`
	Boot  string `json:"boot_id,omitempty"`
	// At is when it began.
	At time.Time `json:"at"`

	// CheckpointedAt is the container's CheckpointedAt when a checkpoint
	// or export began: a record that differs was saved by the operation.
	CheckpointedAt time.Time `json:"checkpointed_at,omitzero"`
	// ImageDir is where the dump goes (checkpoint, export) or where the
	// restore reads from (restore).
	ImageDir string `json:"image_dir,omitempty"`
	// Stop is a dump that stops the container (no -R, no -P).
	Stop bool `json:"stop,omitempty"`
	// PreCheckpoint is a -P: the dump goes to the pre-checkpoint
	// directory, and the previous level may have been moved aside.
	PreCheckpoint bool `json:"pre_checkpoint,omitempty"`
	// TCP: the dump includes established TCP connections.
	TCP bool `json:"tcp,omitempty"`
	// Archive is an export's temporary file beside its target.
	Archive string `json:"archive,omitempty"`
	// LayerDirs are where an export copies the container layer and
	// volumes.
	LayerDirs []string `json:"layer_dirs,omitempty"`
	// Keep is a restore's --keep: its images stay; Transient, that they
	// are the container's tmpfs images (Container.ImageDir).
	Keep      bool `json:"keep,omitempty"`
	Transient bool `json:"transient,omitempty"`

	// Staging is an import's staging directory (locked by Staging.lock).
	Staging string `json:"staging,omitempty"`
	// Container is the ID of the container an import creates, recorded
	// once its ID is reserved and before its directory exists.
	Container string `json:"container,omitempty"`
	// Volumes are the named volumes an import creates, each recorded
	// before it is made.
	Volumes []string `json:"volumes,omitempty"`
}

// journal is an operation's record on disk. Its methods do nothing on a
// nil journal.
type journal struct {
	path string
	rec  opRecord
	// notify, if set, is told each phase (ImportOptions.Phase).
	notify func(name string)
}

// beginOp writes the record of an operation about to start at path,
// durably: what it names must be findable after a crash.
func beginOp(path string, rec opRecord) (*journal, error) {
	rec.PID, rec.At = os.Getpid(), time.Now().UTC()
	rec.Start, _ = procStart(rec.PID)
	rec.Boot = bootID()
	j := &journal{path: path, rec: rec}
	data, err := json.MarshalIndent(&j.rec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode operation record: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("record operation: %w", err)
	}
	testPoint(rec.Op + "/" + rec.Phase)
	return j, nil
}

// beginContainerOp journals op on container c, whose lock the caller
// holds.
func (e *Engine) beginContainerOp(c *Container, rec opRecord) (*journal, error) {
	return beginOp(filepath.Join(e.containerDir(c.ID), opFile), rec)
}

// phase records that the operation begins step name. The record is
// replaced atomically but not synced: the phase only informs.
func (j *journal) phase(name string) {
	if j == nil {
		return
	}
	j.rec.Phase = name
	_ = j.write()
	testPoint(j.rec.Op + "/" + name)
	if j.notify != nil {
		j.notify(name)
	}
}

// update changes the record with f before the operation makes what it
// adds; a kill -9 leaves the file to the next command, which sees it
// (a crash of the host may not: the things made may not be on disk
// either).
func (j *journal) update(f func(*opRecord)) error {
	if j == nil {
		return nil
	}
	f(&j.rec)
	return j.write()
}

// running marks a point inside a step, where a child (runc, CRIU, the
// monitor) or a write is under way; only fault tests stop there.
func (j *journal) running(what string) {
	if j != nil {
		testPoint(j.rec.Op + "/" + what)
	}
}

// end removes the record: the operation has finished or undone its work.
func (j *journal) end() {
	if j == nil {
		return
	}
	if err := os.Remove(j.path); err == nil {
		_ = fsutil.SyncDir(filepath.Dir(j.path))
	}
}

func (j *journal) write() error {
	data, err := json.MarshalIndent(&j.rec, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(j.path, data)
}

// replaceFile replaces path with data through a temporary file and a
// rename, without syncing: readers see the old or the new content.
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

func readOpRecord(path string) (*opRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec opRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &rec, nil
}

// owner describes the process that ran the operation, for messages.
func (r *opRecord) owner() string {
	return fmt.Sprintf("ckpt %s (pid %d, at %s)", r.Op, r.PID, r.Phase)
}

// ownerAlive reports whether the process that wrote r still runs.
func (r *opRecord) ownerAlive() bool {
	if r.PID <= 0 || !alive(r.PID) || (r.Boot != "" && r.Boot != bootID()) {
		return false
	}
	st, err := procStart(r.PID)
	return err != nil || r.Start == 0 || st == r.Start
}

// bootID returns the kernel's ID of this boot, or "".
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// removeTemps removes the temporary files replaceFile and
// fsutil.WriteFileAtomic leave beside path when killed midway.
func removeTemps(path string) {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}

// procStart returns the start time of process pid in clock ticks after
// boot (field 22 of /proc/<pid>/stat).
func procStart(pid int) (uint64, error) {
	f, err := procStat(pid, 22)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f, 10, 64)
}

// procStat returns field n (counted from 1, as proc(5) does) of
// /proc/<pid>/stat. The fields after the command name are split after its
// closing parenthesis, since the name may hold spaces and parentheses.
func procStat(pid, n int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || n < 3 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:]) // from field 3 (state) on
	if len(f) < n-2 {
		return "", fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return f[n-3], nil
}

// startRecord is what the monitor records in start.json once runc has
// created and started, or restored, the container (or failed to), right
// before it lets go of the container's lock: the outcome of a start whose
// ckpt process was killed.
type startRecord struct {
	MonitorPID int       `json:"monitor_pid"`
	PID        int       `json:"pid,omitempty"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// recordStart writes the monitor's start.json into the container
// directory dir and closes lock, the container's lock the monitor held
// for the start (nil if none).
func recordStart(dir string, rec startRecord, lock *os.File) {
	rec.MonitorPID, rec.At = os.Getpid(), time.Now().UTC()
	if data, err := json.Marshal(rec); err == nil {
		if err := replaceFile(filepath.Join(dir, startFile), data); err != nil {
			fmt.Fprintf(os.Stderr, "ckpt monitor: record start: %v\n", err)
		}
	}
	if lock != nil {
		_ = lock.Close()
	}
}

func readStartRecord(dir string) (startRecord, bool) {
	var s startRecord
	data, err := os.ReadFile(filepath.Join(dir, startFile))
	if err != nil || json.Unmarshal(data, &s) != nil {
		return s, false
	}
	return s, true
}

// testStopEnv names the fault tests' hook. A ckpt process whose
// environment sets it prints each stop point it reaches to stderr
// ("ckpt: test point export/dump") and, at the point it names, stops
// itself with SIGSTOP so that a test can kill it there; SIGCONT lets the
// operation go on unchanged. Points are OP/PHASE for each journaled phase
// and OP/dumping, OP/writing, OP/restoring, OP/starting inside the steps
// that run runc, CRIU, the monitor or the archive's write.
const testStopEnv = "CKPT_TEST_STOP_AT"

// testPoint is a stop point of the fault tests' hook (testStopEnv).
func testPoint(name string) {
	at := os.Getenv(testStopEnv)
	if at == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "ckpt: test point %s\n", name)
	if at == name {
		// To this thread: the stop takes it before it returns from the
		// system call (a signal to the process may let it run on for a
		// moment, past the point).
		runtime.LockOSThread()
		_ = syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGSTOP)
		runtime.UnlockOSThread()
	}
}

// errReconcileBusy reports a record whose lock is held: its operation
// runs, or a child of a killed one finishes it.
var errReconcileBusy = errors.New("operation in progress")
