package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// CheckpointOptions configures [Engine.Checkpoint]; the zero value
// checkpoints and stops the container, as `podman container checkpoint`.
type CheckpointOptions struct {
	// LeaveRunning leaves the container running after the dump (-R).
	LeaveRunning bool `json:"leave_running,omitempty"`
	// TCPEstablished dumps established TCP connections.
	TCPEstablished bool `json:"tcp_established,omitempty"`
	// FileLocks dumps file locks.
	FileLocks bool `json:"file_locks,omitempty"`
	// Keep keeps CRIU's dump.log and stats-dump after a successful dump.
	Keep bool `json:"keep,omitempty"`
	// PreCheckpoint takes a pre-checkpoint (-P) into the container's
	// pre-checkpoint directory; the container keeps running (LeaveRunning
	// is implied). With memory tracking it is a CRIU pre-dump
	// (PreCopyPreDump), else a full dump (PreCopyDedup): see
	// [Engine.PreCopyMethod]. A PreCopyDedup pre-checkpoint after another
	// one adds a level to the chain: it is deduplicated against the
	// previous one, which moves to pre-checkpoint.<k> (at most
	// format.MaxParentDepth levels; beyond, it is refused with
	// [ErrState]). Not with WithPrevious.
	PreCheckpoint bool `json:"pre_checkpoint,omitempty"`
	// WithPrevious takes the final checkpoint against the last
	// pre-checkpoint (the latest level of the chain), by the method that
	// pre-checkpoint was taken with:
	// after a pre-dump, CRIU dumps with the pre-checkpoint as parent
	// (runc --parent-path) and writes only the dirtied pages; after a
	// full dump, the full dump is deduplicated against it with
	// incremental.Dedup. Either way the checkpoint directory keeps only
	// the pages that changed and links to the pre-checkpoint
	// (checkpoint/parent -> ../pre-checkpoint), which CRIU's restore
	// follows. The container must have a pre-checkpoint.
	WithPrevious bool `json:"with_previous,omitempty"`
	// preDump and parentPath are runc's --pre-dump and --parent-path,
	// set by the engine for the PreCopyPreDump method.
	preDump    bool
	parentPath string
	// beforeDedup, if set (tests only), is called with the image
	// directory of a WithPrevious dump before it is deduplicated.
	beforeDedup func(imgDir string) error
}

// RestoreOptions configures [Engine.Restore].
type RestoreOptions struct {
	// TCPEstablished restores established TCP connections.
	TCPEstablished bool `json:"tcp_established,omitempty"`
	// TCPClose restores the container but closes its TCP connections.
	TCPClose bool `json:"tcp_close,omitempty"`
	// FileLocks restores file locks.
	FileLocks bool `json:"file_locks,omitempty"`
	// Keep keeps the CRIU images and restore.log after a successful
	// restore; by default they are removed.
	Keep bool `json:"keep,omitempty"`
	// ImageDir restores from these CRIU images instead of the container's
	// checkpoint directory (an import's staging directory, for a container
	// made with [Engine.Create]). They are never removed.
	ImageDir string `json:"image_dir,omitempty"`
	// keepChain keeps the container's pre-checkpoint chain after the
	// restore (an export's rollback: the chain must survive the failed
	// export).
	keepChain bool
}

// Phase is one timed step of a checkpoint or restore.
type Phase struct {
	// Name of the step, e.g. "runtime_checkpoint".
	Name string `json:"name"`
	// Microseconds it took.
	Microseconds int64 `json:"us"`
}

// CRIUStatistics are CRIU's own timings (µs) and page counts, read from
// stats-dump or stats-restore; the JSON names are podman's.
type CRIUStatistics struct {
	FreezingTime  uint32 `json:"freezing_time,omitempty"`
	FrozenTime    uint32 `json:"frozen_time,omitempty"`
	MemdumpTime   uint32 `json:"memdump_time,omitempty"`
	MemwriteTime  uint32 `json:"memwrite_time,omitempty"`
	PagesScanned  uint64 `json:"pages_scanned,omitempty"`
	PagesWritten  uint64 `json:"pages_written,omitempty"`
	ForkingTime   uint32 `json:"forking_time,omitempty"`
	RestoreTime   uint32 `json:"restore_time,omitempty"`
	PagesRestored uint64 `json:"pages_restored,omitempty"`
}

// DumpResult is what an in-place checkpoint and an export report alike.
type DumpResult struct {
	// Container is the state afterwards: checkpointed, or running with
	// LeaveRunning or PreCheckpoint.
	Container *Container
	// Runtime is how long `runc checkpoint` took.
	Runtime time.Duration
	// Total is the whole operation's duration.
	Total time.Duration
	// Frozen is how long the engine kept the container from running: from
	// freezing it until it was thawed or stopped (exports, and checkpoints
	// that stop it; CRIU's own frozen time is in CRIU).
	Frozen time.Duration
	// CRIU holds CRIU's dump statistics, or nil if stats-dump was
	// unreadable.
	CRIU *CRIUStatistics
	// Phases are the engine's steps, in order.
	Phases []Phase
	// Dedup is what the deduplication against the pre-checkpoint did
	// (WithPrevious with PreCopyDedup), else nil.
	Dedup *incremental.Stats
	// PreCopy is the method of a PreCheckpoint or WithPrevious
	// checkpoint, else empty.
	PreCopy PreCopyMethod
	// freezeHook is whether the pre-dump action script froze the
	// container (freeze.go).
	freezeHook bool
}

// CheckpointResult describes one container's checkpoint.
type CheckpointResult struct {
	DumpResult
	// ImageDir holds the CRIU images.
	ImageDir string
}

// RestoreResult describes one container's restore.
type RestoreResult struct {
	// Container is the state after the restore (running).
	Container *Container
	// Runtime is how long `runc restore` took (measured by the monitor).
	Runtime time.Duration
	// Total is the whole operation's duration.
	Total time.Duration
	// CRIU holds CRIU's statistics, or nil if stats-restore was unreadable.
	CRIU *CRIUStatistics
	// Phases are the engine's steps, in order.
	Phases []Phase
}

type phaseTimer struct {
	last   time.Time
	phases []Phase
}

func newPhaseTimer() *phaseTimer { return &phaseTimer{last: time.Now()} }

func (p *phaseTimer) done(name string) {
	now := time.Now()
	p.phases = append(p.phases, Phase{Name: name, Microseconds: now.Sub(p.last).Microseconds()})
	p.last = now
}

// CheckpointDir returns the directory that holds a container's CRIU images.
func (e *Engine) CheckpointDir(id string) string {
	return filepath.Join(e.containerDir(id), "checkpoint")
}

// PreCheckpointDir returns the directory that holds a container's last
// pre-checkpoint (checkpoint -P), the sibling of [Engine.CheckpointDir].
func (e *Engine) PreCheckpointDir(id string) string {
	return filepath.Join(e.containerDir(id), format.PreCheckpointDir)
}

// errNoPreCheckpoint is the advice for a --with-previous without -P.
const errNoPreCheckpoint = "no pre-checkpoint: run checkpoint -P first"

// checkPrevious checks that c has a pre-checkpoint to deduplicate
// against: recorded, on disk, and with an archive if exported is set.
func (e *Engine) checkPrevious(c *Container, exported bool) error {
	if c.PreCheckpoint == nil {
		return fmt.Errorf("%w: %s (container %s)", ErrState, errNoPreCheckpoint, c.Name)
	}
	if _, err := os.Stat(filepath.Join(e.PreCheckpointDir(c.ID), "inventory.img")); err != nil {
		return fmt.Errorf("%w: %s (container %s: the pre-checkpoint images are gone)", ErrState, errNoPreCheckpoint, c.Name)
	}
	if err := e.checkPreChainDirs(c, false); err != nil {
		return fmt.Errorf("%w: run checkpoint -P again to start a new chain", err)
	}
	if exported && c.PreCheckpoint.Manifest == "" {
		return fmt.Errorf("%w: the pre-checkpoint of %s was taken in place, without an archive: run checkpoint -P --export first", ErrState, c.Name)
	}
	return nil
}

// preCopyMethod returns the pre-copy method of a checkpoint: for a
// pre-checkpoint the host's ([Engine.PreCopyMethod]), for a final one the
// method its pre-checkpoint was taken with, else empty.
func (e *Engine) preCopyMethod(ctx context.Context, c *Container, pre, withPrevious bool) PreCopyMethod {
	switch {
	case pre:
		return e.PreCopyMethod(ctx)
	case withPrevious && c.PreCheckpoint != nil && c.PreCheckpoint.Method == PreCopyPreDump:
		return PreCopyPreDump
	case withPrevious:
		return PreCopyDedup
	}
	return ""
}

// withPreCopyArgs returns o with runc's pre-dump arguments set for
// method PreCopyPreDump: --pre-dump for a pre-checkpoint, --parent-path
// ../pre-checkpoint for the final checkpoint (CRIU then tracks memory
// and writes the parent link itself). Otherwise o is returned unchanged.
func withPreCopyArgs(o *CheckpointOptions, method PreCopyMethod) *CheckpointOptions {
	if method != PreCopyPreDump {
		return o
	}
	oo := *o
	oo.preDump = o.PreCheckpoint
	if o.WithPrevious {
		oo.parentPath = format.ParentLinkTarget
	}
	return &oo
}

func (e *Engine) workDir(id string) string { return filepath.Join(e.containerDir(id), "work") }

// Checkpoint dumps a running container with CRIU through `runc
// checkpoint`, keeping the images under Root/containers/<id>/checkpoint.
// Without LeaveRunning the container is stopped and becomes
// "checkpointed". If CRIU fails, the container keeps running and the
// error (an *ExitError) names dump.log and quotes its last error lines.
func (e *Engine) Checkpoint(ctx context.Context, ref string, o *CheckpointOptions) (*CheckpointResult, error) {
	d := e.newDumpJob(ctx, opCheckpoint, ref, o)
	begin := func() error { return d.begin(opRecord{}) }
	if err := d.run(d.plan, begin, d.prepareInPlace, d.dump, d.finishInPlace, d.recordInPlace, d.tidy); err != nil {
		return nil, wrapf(err, "checkpoint %s", ref)
	}
	return &CheckpointResult{ImageDir: d.imgDir, DumpResult: d.result()}, nil
}

// prepareInPlace is prepare, timed as the checkpoint's "prepare" phase
// from its start.
func (d *dumpJob) prepareInPlace() error {
	if err := d.prepare(); err != nil {
		return err
	}
	d.pt.done("prepare")
	return nil
}

// finishInPlace deduplicates the dump of an in-place checkpoint. A
// --with-previous checkpoint whose deduplication fails keeps its full
// dump, still restorable: a container the dump stopped is recorded
// checkpointed with it.
func (d *dumpJob) finishInPlace() error {
	d.pt.done("read_stats") // CRIU's statistics, read at the end of dump
	d.j.phase("finish")
	if err := d.dedupLevel(); err != nil {
		return err
	}
	if err := d.dedupFinal(); err != nil {
		if d.stop {
			d.markCheckpointed(time.Now().UTC())
			_ = d.e.saveState(d.c)
		}
		return fmt.Errorf("deduplicate against the pre-checkpoint: %w (the full checkpoint is kept)", err)
	}
	return nil
}

// recordInPlace records the checkpoint in the container's record: a -P's
// new level, or a checkpoint whose images supersede those an export left
// on a tmpfs; a container the dump stopped is checkpointed.
func (d *dumpJob) recordInPlace() error {
	c := d.c
	if !d.o.PreCheckpoint && c.ImageDir != "" {
		// Images an export left on a tmpfs are superseded.
		_ = d.e.removeTransient(c.ID)
		c.ImageDir = ""
	}
	var level *PreCheckpointRecord
	if d.o.PreCheckpoint {
		images, err := incremental.ImagesDigest(d.imgDir)
		if err != nil {
			return fmt.Errorf("digest pre-checkpoint: %w", err)
		}
		level = &PreCheckpointRecord{Images: images, At: time.Now().UTC(), Method: d.method}
	}
	now := time.Now().UTC()
	c.CheckpointedAt, c.CheckpointTCP = now, d.o.TCPEstablished
	if d.stop {
		d.markCheckpointed(now)
	}
	d.j.phase("record")
	if err := d.save(level); err != nil {
		return err
	}
	if d.stop {
		d.waitOldMonitor()
	}
	d.pt.done("save_state")
	return nil
}

// failedRestore undoes what a failed `runc restore` of c left (mounts in
// the host's mount namespace, runc's state, processes and cgroups, CRIU's
// mount namespace directories), keeps CRIU's log out of the container's
// directory for the error to name, and returns err saying the container
// stays checkpointed.
func (e *Engine) failedRestore(c *Container, err error, mntns map[string]bool) error {
	work := e.workDir(c.ID)
	var errs []error
	if uerr := fsutil.UnmountAll(e.containerDir(c.ID), false); uerr != nil {
		errs = append(errs, uerr)
	}
	if derr := e.deleteRuntime(c); derr != nil {
		errs = append(errs, derr)
	}
	if cerr := e.removeCgroups(c); cerr != nil {
		errs = append(errs, cerr)
	}
	removeCRIUMntns(mntns, filepath.Join(work, "restore.log"))
	restoreLog, runcLog := e.keepRestoreLogs(c.ID, work)
	var x *ExitError
	if errors.As(err, &x) {
		switch {
		case restoreLog != "" && filepath.Base(x.LogPath) == "restore.log":
			x.LogPath = restoreLog
		case runcLog != "":
			// runc failed before CRIU wrote a log, or runc's own log is named.
			x.LogPath = runcLog
			if len(x.LogTail) == 0 {
				x.LogTail = logTail(runcLog, 5)
			}
		default:
			x.LogPath = existing(x.LogPath)
		}
	}
	if len(errs) > 0 {
		err = fmt.Errorf("%w\n(cleanup: %w)", err, errors.Join(errs...))
	}
	return &StateError{Err: err, Left: LeftCheckpointed}
}

// checkInPlaceParent checks, before CRIU runs, that a checkpoint taken
// --with-previous in place still has the pre-checkpoints it was
// deduplicated against: the parent links and the images recorded, at
// every level of the chain.
func (e *Engine) checkInPlaceParent(c *Container, imgDir string) error {
	target, err := os.Readlink(filepath.Join(imgDir, "parent"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || target != format.ParentLinkTarget {
		return fmt.Errorf("%w: the checkpoint of %s has an unexpected parent link %q", ErrState, c.Name, target)
	}
	if c.PreCheckpoint == nil {
		return fmt.Errorf("%w: the checkpoint of %s depends on a pre-checkpoint that is no longer recorded", ErrState, c.Name)
	}
	return e.checkPreChainDirs(c, true)
}

// inFlightHint explains CRIU's refusal of a listening socket whose accept
// queue holds connections (CRIU's --skip-in-flight would reset them, so
// ckpt does not offer it).
const inFlightHint = "a listening socket in the container has connections it has not accepted yet, which CRIU cannot checkpoint: " +
	"checkpoint again once the server has accepted them"

// dumpHint returns advice for known CRIU dump failures found in dump.log.
func dumpHint(dumpLog string, o *CheckpointOptions) string {
	data, err := os.ReadFile(dumpLog)
	if err != nil {
		return ""
	}
	switch {
	case bytes.Contains(data, []byte("Can't get 1:16 opt")):
		return inetSocketWarning
	case bytes.Contains(data, []byte("In-flight connection")):
		return inFlightHint
	case bytes.Contains(data, []byte("--tcp-established")) && !o.TCPEstablished:
		return "the container has established TCP connections: checkpoint with --tcp-established"
	}
	return ""
}
