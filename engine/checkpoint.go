package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
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
	// AfterDump, if set, is called with the CRIU image directory after a
	// successful dump, while the container's lock is still held and before
	// temporary files are removed (export hooks in here). Its error is
	// returned; the checkpoint itself stays valid.
	AfterDump func(ctx context.Context, c *Container, imageDir string) error `json:"-"`
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
func (e *Engine) Checkpoint(ctx context.Context, ref string, o *CheckpointOptions) (_ *CheckpointResult, err error) {
	if o == nil {
		o = &CheckpointOptions{}
	}
	start := time.Now()
	pt := newPhaseTimer()
	defer func() {
		if err != nil {
			err = fmt.Errorf("checkpoint %s: %w", ref, err)
		}
	}()
	if o.PreCheckpoint && o.WithPrevious {
		return nil, errors.New("a pre-checkpoint cannot be taken with previous: use one or the other")
	}
	if o.PreCheckpoint {
		oo := *o
		oo.LeaveRunning = true
		o = &oo
	}
	c, l, err := e.lockRunning(ctx, ref, "checkpoint")
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	method := e.preCopyMethod(ctx, c, o.PreCheckpoint, o.WithPrevious)
	if o.PreCheckpoint {
		if err := e.checkPreCheckpointDepth(c, false, method); err != nil {
			return nil, err
		}
	}
	if o.WithPrevious {
		if err := e.checkPrevious(c, false); err != nil {
			return nil, err
		}
	}
	o = withPreCopyArgs(o, method)
	imgDir, work, preDir := e.CheckpointDir(c.ID), e.workDir(c.ID), e.PreCheckpointDir(c.ID)
	if o.PreCheckpoint {
		imgDir = preDir
	}
	// A checkpoint that stops the container freezes it as an export does.
	stop := !o.LeaveRunning && !o.PreCheckpoint
	j, err := e.beginContainerOp(c, opRecord{Op: opCheckpoint, Phase: "prepare", CheckpointedAt: c.CheckpointedAt,
		ImageDir: imgDir, Stop: stop, PreCheckpoint: o.PreCheckpoint, TCP: o.TCPEstablished})
	if err != nil {
		return nil, err
	}
	// Last, once everything else is undone or done.
	defer j.end()
	var step *preStep
	if o.PreCheckpoint {
		// The chain so far stays until the new level is recorded.
		if step, err = e.beginPreCheckpoint(c, method, false); err != nil {
			return nil, err
		}
		defer step.rollback()
		o = step.withParent(o)
	}
	for _, d := range []string{imgDir, work} {
		if err := fsutil.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("clear %s: %w", d, err)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	df, removeConf, err := e.prepareDump(c, work, stop)
	if err != nil {
		return nil, err
	}
	defer removeConf()
	pt.done("prepare")
	dumpLog := filepath.Join(work, "dump.log")
	j.phase("dump")
	t0 := time.Now()
	// The dump is never interrupted: killing runc while CRIU is inside the
	// container's processes kills the container. A cancellation (Ctrl-C)
	// takes effect once the dump is over; it is bounded in time and log
	// size (CRIULimits) all the same. runc holds the container's lock
	// while it runs, also if this process is killed (journal.go).
	b := e.criuBounds(memoryUsage(c.PID), dumpLog)
	_, err = runcToolWith(context.WithoutCancel(ctx), e.runc(filepath.Join(e.containerDir(c.ID), "runc.log")).checkpointArgs(c.ID, imgDir, work, o), dumpLog,
		&toolOptions{inherit: []*os.File{l.File()}, started: func() { j.running("dumping") }, bounds: &b})
	runtimeDur := time.Since(t0)
	pt.done("runtime_checkpoint")
	if err != nil {
		if thaw := df.thawFunc(); thaw != nil {
			_ = thaw()
		}
		_ = fsutil.RemoveAll(imgDir) // not restorable; dump.log stays in work/
		state := "the container is still running"
		if x, lerr := e.loadState(c.ID); lerr == nil && x.Status != StatusRunning {
			state = "the container is no longer running: " + string(x.Status)
		}
		err = fmt.Errorf("%w\n(%s)", err, state)
		if hint := dumpHint(dumpLog, o); hint != "" {
			err = fmt.Errorf("%w\nhint: %s", err, hint)
		}
		return nil, err
	}
	res := &CheckpointResult{ImageDir: imgDir, DumpResult: DumpResult{Runtime: runtimeDur, PreCopy: method}}
	// runc has CRIU write stats-dump to the work directory.
	for _, d := range []string{work, imgDir} {
		if st, err := crit.GetDumpStats(d); err == nil && st != nil {
			res.CRIU = &CRIUStatistics{
				FreezingTime: st.GetFreezingTime(), FrozenTime: st.GetFrozenTime(),
				MemdumpTime: st.GetMemdumpTime(), MemwriteTime: st.GetMemwriteTime(),
				PagesScanned: st.GetPagesScanned(), PagesWritten: st.GetPagesWritten(),
			}
			break
		}
	}
	if stop {
		res.Frozen, res.freezeHook = df.frozen(work, res.CRIU)
	}
	pt.done("read_stats")
	j.phase("finish")
	if st, err := step.dedup(ctx, imgDir); err != nil {
		return nil, fmt.Errorf("%w (the container keeps running; the previous pre-checkpoints are kept)", err)
	} else if st != nil {
		res.Dedup = st
		pt.done("dedup")
	}
	if o.WithPrevious && method == PreCopyDedup {
		// The container is stopped already (without LeaveRunning): a
		// failed deduplication leaves the full dump, still restorable.
		var st *incremental.Stats
		if o.beforeDedup != nil {
			err = o.beforeDedup(imgDir)
		}
		if err == nil {
			st, err = incremental.Dedup(ctx, preDir, imgDir, &incremental.Options{ParentLink: format.ParentLinkTarget})
		}
		if err != nil {
			err = fmt.Errorf("deduplicate against the pre-checkpoint: %w (the full checkpoint is kept)", err)
			if !o.LeaveRunning {
				c.CheckpointedAt = time.Now().UTC()
				c.Status, c.PID, c.MonitorPID, c.FinishedAt = StatusCheckpointed, 0, 0, c.CheckpointedAt
				_ = e.saveState(c)
			}
			return nil, err
		}
		res.Dedup = st
		pt.done("dedup")
	}
	if !o.PreCheckpoint && c.ImageDir != "" {
		// Images an export left on a tmpfs are superseded.
		_ = e.removeTransient(c.ID)
		c.ImageDir = ""
	}
	if o.PreCheckpoint {
		d, err := incremental.ImagesDigest(preDir)
		if err != nil {
			return nil, fmt.Errorf("digest pre-checkpoint: %w", err)
		}
		c.PreCheckpoint = step.record(&PreCheckpointRecord{Images: d, At: time.Now().UTC(), Method: method})
	}
	endChain := !o.PreCheckpoint && !o.WithPrevious && c.PreCheckpoint != nil
	if endChain {
		// A full checkpoint depends on no pre-checkpoint: the chain ends.
		c.PreCheckpoint = nil
	}
	c.CheckpointedAt = time.Now().UTC()
	c.CheckpointTCP = o.TCPEstablished
	oldMonitor := c.MonitorPID
	if !o.LeaveRunning {
		c.Status, c.PID, c.MonitorPID, c.FinishedAt = StatusCheckpointed, 0, 0, c.CheckpointedAt
	}
	j.phase("record")
	if err := e.saveState(c); err != nil {
		return nil, err
	}
	step.commit()
	if endChain {
		e.removePreChain(c.ID)
	}
	if !o.LeaveRunning && oldMonitor > 0 {
		// Let the old monitor drain the output and exit, so that its last
		// log lines come before the restored container's.
		deadline := time.Now().Add(10 * time.Second)
		for alive(oldMonitor) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	pt.done("save_state")
	if o.AfterDump != nil {
		if err := o.AfterDump(ctx, c, imgDir); err != nil {
			return nil, err
		}
		pt.done("after_dump")
	}
	if !o.Keep {
		_ = os.Remove(dumpLog)
		_ = os.Remove(filepath.Join(work, crit.StatsDump))
	}
	res.Container, res.Total, res.Phases = c, time.Since(start), pt.phases
	return res, nil
}

// Restore restores a checkpointed container in place: a new monitor runs
// `runc restore` with fresh stdio pipes, which runc wires to the restored
// process in place of the old ones, so logs keep flowing. If CRIU fails
// the container stays checkpointed (restorable) and the error (an
// *ExitError) names restore.log and quotes its last error lines.
func (e *Engine) Restore(ctx context.Context, ref string, o *RestoreOptions) (_ *RestoreResult, err error) {
	if o == nil {
		o = &RestoreOptions{}
	}
	start := time.Now()
	pt := newPhaseTimer()
	defer func() {
		if err != nil {
			err = wrapf(err, "restore %s", ref)
		}
	}()
	if o.TCPEstablished && o.TCPClose {
		return nil, errors.New("--tcp-established and --tcp-close are mutually exclusive")
	}
	if err := e.preflight(ctx); err != nil {
		return nil, err
	}
	c, l, err := e.lock(ctx, ref, "restore")
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	imgDir, work := e.CheckpointDir(c.ID), e.workDir(c.ID)
	transient := o.ImageDir == "" && c.ImageDir != ""
	switch {
	case o.ImageDir != "":
		imgDir = o.ImageDir
	case transient:
		imgDir = c.ImageDir
	}
	if c.Status == StatusRunning {
		return nil, fmt.Errorf("%w: container %s is running", ErrState, c.Name)
	}
	if _, err := os.Stat(filepath.Join(imgDir, "inventory.img")); err != nil {
		if transient {
			return nil, fmt.Errorf("%w: the checkpoint images of %s were kept on a tmpfs (%s) and are gone (a reboot clears them): restore its archive with `ckpt restore --import FILE`", ErrState, c.Name, imgDir)
		}
		return nil, fmt.Errorf("%w: container %s has no checkpoint to restore", ErrState, c.Name)
	}
	if c.CheckpointTCP && !o.TCPEstablished && !o.TCPClose {
		return nil, fmt.Errorf("%w: the checkpoint of %s has established TCP connections: restore with --tcp-established (or --tcp-close)", ErrState, c.Name)
	}
	if o.ImageDir == "" {
		if err := e.checkInPlaceParent(c, imgDir); err != nil {
			return nil, err
		}
	}
	// The monitor's record of an earlier start would speak for this one.
	if err := os.Remove(filepath.Join(e.containerDir(c.ID), startFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	j, err := e.beginContainerOp(c, opRecord{Op: opRestore, Phase: "prepare", ImageDir: imgDir, Keep: o.Keep, Transient: transient})
	if err != nil {
		return nil, err
	}
	// Last, once everything else is undone or done.
	defer j.end()
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", work, err)
	}
	_ = os.Remove(filepath.Join(work, "restore.log"))
	_ = os.Remove(filepath.Join(e.containerDir(c.ID), exitFile))
	rootfs := c.Rootfs
	if !isMounted(rootfs) {
		// After a reboot (or a Create elsewhere): mount the layer again;
		// the path is stable.
		s, err := e.storeOpen()
		if err != nil {
			return nil, err
		}
		if rootfs, err = s.Mount(c.ID, ""); err != nil {
			return nil, fmt.Errorf("mount container layer: %w", err)
		}
	}
	// runc keeps the state of a container that exited by itself until it
	// is deleted (and a killed runc leaves its state, maybe with mounts);
	// the ID must be free for `runc restore`.
	if _, err := os.Stat(runcStateDir(e.runcRoot(), c.ID)); err == nil {
		if err := e.deleteRuntime(c); err != nil {
			return nil, fmt.Errorf("remove stale runtime state: %w", err)
		}
	}
	rewrite := rootfs != c.Rootfs
	c.Rootfs = rootfs
	if c.NetNS != "" && !isNetns(c.NetNS) {
		// Gone after a reboot: a new namespace with loopback up will do,
		// CRIU restores the container's sockets into it.
		_ = removeNetns(c.NetNS)
		c.NetNS = e.netnsPath(c.ID)
		if err := createNetns(c.NetNS); err != nil {
			return nil, err
		}
		rewrite = true
	}
	// A bundle of an older ckpt does not name the CRIU configuration.
	if rewrite || !e.namesCRIUConfig(c) {
		if err := e.writeBundle(c); err != nil {
			return nil, err
		}
	}
	// runc 1.1 does not pass --manage-cgroups-mode ignore on to CRIU
	// (CRIU restores in its default soft mode); CRIU's configuration file
	// overrides what runc sends.
	conf := "manage-cgroups=ignore\n"
	if o.TCPClose {
		conf += "tcp-close\n"
	}
	removeConf, err := e.setCRIUConfig(c, conf)
	if err != nil {
		return nil, err
	}
	defer removeConf()
	pt.done("prepare")
	b := e.criuBounds(imagesSize(imgDir), filepath.Join(work, "restore.log"))
	mntns := criuMntnsDirs()
	j.phase("start")
	res, err := e.startMonitor(ctx, &monitorConfig{
		Mode: monitorRestore, ID: c.ID, Dir: e.containerDir(c.ID),
		RuncPath: e.runtimePath(), RuncRoot: e.runcRoot(),
		ImageDir: imgDir, WorkDir: work, Restore: o, Rootfs: e.layerRoot(c),
		Timeout: b.timeout, Work: b.work, MaxLog: b.maxLog,
		lock: l.File(), started: func() { j.running("restoring") },
	})
	pt.done("monitor_restore")
	if err != nil {
		return nil, e.failedRestore(c, err, mntns)
	}
	out := &RestoreResult{Runtime: time.Duration(res.RuntimeUS) * time.Microsecond}
	for _, d := range []string{imgDir, work} {
		if st, err := crit.GetRestoreStats(d); err == nil && st != nil {
			out.CRIU = &CRIUStatistics{
				ForkingTime: st.GetForkingTime(), RestoreTime: st.GetRestoreTime(),
				PagesRestored: st.GetPagesRestored(),
			}
			break
		}
	}
	now := time.Now().UTC()
	c.Status, c.PID, c.MonitorPID = StatusRunning, res.PID, res.MonitorPID
	c.StartedAt, c.RestoredAt, c.FinishedAt, c.ExitCode = now, now, time.Time{}, 0
	// A restore ends the pre-checkpoint chain (kept with Keep, with the
	// images that may depend on it, and by an export's rollback).
	endChain := !o.Keep && !o.keepChain && o.ImageDir == "" && c.PreCheckpoint != nil
	if endChain {
		c.PreCheckpoint = nil
	}
	if transient && !o.Keep {
		c.ImageDir = ""
	}
	j.phase("record")
	if err := e.saveState(c); err != nil {
		return nil, err
	}
	pt.done("save_state")
	if endChain {
		e.removePreChain(c.ID)
	}
	if !o.Keep {
		switch {
		case transient:
			_ = e.removeTransient(c.ID) // the images and what lies beside them
		case o.ImageDir == "":
			_ = fsutil.RemoveAll(imgDir)
		}
		_ = os.Remove(filepath.Join(work, "restore.log"))
		_ = os.Remove(filepath.Join(work, crit.StatsRestore))
	}
	out.Container, out.Total, out.Phases = c, time.Since(start), pt.phases
	return out, nil
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

// dumpHint returns advice for known CRIU dump failures found in dump.log.
func dumpHint(dumpLog string, o *CheckpointOptions) string {
	data, err := os.ReadFile(dumpLog)
	if err != nil {
		return ""
	}
	switch {
	case bytes.Contains(data, []byte("Can't get 1:16 opt")):
		return inetSocketWarning
	case bytes.Contains(data, []byte("--tcp-established")) && !o.TCPEstablished:
		return "the container has established TCP connections: checkpoint with --tcp-established"
	}
	return ""
}
