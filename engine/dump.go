package engine

import (
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

// The dump pipeline. An in-place checkpoint ([Engine.Checkpoint]) and an
// export ([Engine.Export]), with their pre-checkpoint (-P) and final
// (--with-previous) variants, dump a running container through the same
// phases, each a method of dumpJob:
//
//	plan     lock the container and check the options against it
//	begin    journal the operation (journal.go)
//	prepare  a -P's chain step, empty image and work directories, CRIU's
//	         configuration, the freeze of a dump that stops the container
//	dump     `runc checkpoint`, CRIU's statistics
//	dedup    a -P's level against the one below, a --with-previous full
//	         dump against its pre-checkpoint
//	save     the container's record, the chain extended or ended
//	tidy     CRIU's log and statistics removed unless Keep
//
// Each operation lists its phases (Checkpoint in checkpoint.go, export in
// export.go, which adds its own around these). A phase that changes the
// world pushes its undo on the job's undo stack right after it succeeds;
// what the operation holds while it runs (the lock, the journal, CRIU's
// configuration) goes on the held stack, released when it ends, after any
// undo, whatever happened (pipeline, undo.go).

// dumpJob is one dump of a running container.
type dumpJob struct {
	e   *Engine
	ctx context.Context
	op  string // opCheckpoint or opExport: the journal's and the lock's
	ref string
	// o is the caller's options, with what PreCheckpoint implies.
	o CheckpointOptions
	// exported: the dump goes into an archive (a -P's chain then needs
	// archives at every level).
	exported bool
	start    time.Time
	pt       *phaseTimer
	pipeline

	c      *Container
	lock   *fsutil.Lock
	j      *journal
	method PreCopyMethod
	imgDir string // where CRIU writes the images
	work   string // CRIU's work directory: dump.log, stats-dump
	// stop: the dump stops the container (neither -R nor -P). CRIU kills
	// it at the end of its dump, and the images are its checkpoint.
	stop bool
	// hold: the dump keeps the container frozen after CRIU is done (a
	// streamed export): the pre-dump script freezes it as for stop, and
	// CRIU, finding it frozen, leaves it so.
	hold     bool
	step     *preStep    // a -P's new level of the chain
	df       *dumpFreeze // how the container is frozen for a dump that stops it
	unfreeze *undoStep   // that freeze's undo, dropped once the dump stopped it
	res      DumpResult  // what the operation reports
	// oldMonitor is the container's monitor before the dump, which
	// records its exit once a dump stopped it.
	oldMonitor int
}

// newDumpJob starts a dump of op ("checkpoint" or "export") of container
// ref with options o (nil: the zero value).
func (e *Engine) newDumpJob(ctx context.Context, op, ref string, o *CheckpointOptions) *dumpJob {
	d := &dumpJob{e: e, ctx: ctx, op: op, ref: ref, exported: op == opExport, start: time.Now(), pt: newPhaseTimer()}
	if o != nil {
		d.o = *o
	}
	if d.o.PreCheckpoint {
		// A pre-checkpoint leaves the container running.
		d.o.LeaveRunning = true
	}
	return d
}

// plan locks the container, which must be running, checks the options
// against it (a -P must not make its chain too long, a --with-previous
// needs its pre-checkpoint) and picks the pre-copy method and where the
// images go.
func (d *dumpJob) plan() error {
	if d.o.PreCheckpoint && d.o.WithPrevious {
		return errors.New("a pre-checkpoint cannot be taken with previous: use one or the other")
	}
	c, l, err := d.e.lockRunning(d.ctx, d.ref, d.op)
	if err != nil {
		return err
	}
	d.c, d.lock = c, l
	d.held.push("unlock the container", func() error { l.Unlock(); return nil })
	if c.AutoRemove && !d.exported {
		return fmt.Errorf("%w: container %s was started with --rm: only an export (checkpoint --export) can checkpoint it, and removes it", ErrState, c.Name)
	}
	if err := checkNoStopped(c); err != nil {
		return err
	}
	// The record goes last, once everything else is undone or released
	// (it is begun by the begin phase).
	d.held.push("end the operation's record", func() error { d.j.end(); return nil })
	if d.o.WithPrevious {
		if err := d.e.checkPrevious(c, d.exported); err != nil {
			return err
		}
	}
	d.method = d.e.preCopyMethod(d.ctx, c, d.o.PreCheckpoint, d.o.WithPrevious)
	if d.o.PreCheckpoint {
		if err := d.e.checkPreCheckpointDepth(c, d.exported, d.method); err != nil {
			return err
		}
	}
	d.imgDir, d.work = d.e.CheckpointDir(c.ID), d.e.workDir(c.ID)
	if d.o.PreCheckpoint {
		d.imgDir = d.e.PreCheckpointDir(c.ID)
	}
	d.stop = !d.o.LeaveRunning && !d.o.PreCheckpoint
	d.oldMonitor = c.MonitorPID
	return nil
}

// begin journals the dump with what it will make, rec adding the
// operation's own (an export's archive and layer copies).
func (d *dumpJob) begin(rec opRecord) error {
	rec.Op, rec.Phase, rec.CheckpointedAt = d.op, "prepare", d.c.CheckpointedAt
	rec.ImageDir, rec.Stop, rec.PreCheckpoint, rec.TCP = d.imgDir, d.stop, d.o.PreCheckpoint, d.o.TCPEstablished
	j, err := d.e.beginContainerOp(d.c, rec)
	if err != nil {
		return err
	}
	d.j = j
	return nil
}

// prepare makes room for the dump: a -P moves the chain's latest level
// out of the way (put back on failure), the image and work directories
// are emptied, and CRIU's configuration is written for the dump, with the
// freeze of a dump that stops the container (freeze.go; thawed on
// failure).
func (d *dumpJob) prepare() error {
	if d.o.PreCheckpoint {
		// The chain so far stays until the new level is recorded.
		step, err := d.e.beginPreCheckpoint(d.c, d.method, d.exported)
		if err != nil {
			return err
		}
		d.step = step
		d.undo.push("put the previous pre-checkpoint back", func() error { step.rollback(); return nil })
	}
	for _, dir := range []string{d.imgDir, d.work} {
		if err := fsutil.RemoveAll(dir); err != nil {
			return fmt.Errorf("clear %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	df, removeConf, err := d.e.prepareDump(d.c, d.work, d.stop || d.hold)
	if err != nil {
		return err
	}
	d.df = df
	d.held.push("remove the CRIU configuration", func() error { removeConf(); return nil })
	if thaw := df.thawFunc(); thaw != nil {
		d.unfreeze = d.undo.push("thaw the container", func() error {
			if err := thaw(); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
	}
	return nil
}

// dumpLog is CRIU's log of the dump.
func (d *dumpJob) dumpLog() string { return filepath.Join(d.work, "dump.log") }

// dump runs `runc checkpoint` and reads CRIU's statistics. The dump is
// not interrupted when ctx is: killing runc while CRIU has the
// container's processes seized and infected with its parasite kills them
// (ctx is checked after). It is bounded in time and log size
// (CRIULimits) all the same, and runc holds the container's lock while it
// runs, also if this process is killed (journal.go). If it fails, the
// images are removed (dump.log stays in the work directory) and the
// container is thawed.
func (d *dumpJob) dump() error {
	o := d.step.withParent(withPreCopyArgs(&d.o, d.method))
	d.j.phase("dump")
	t0 := time.Now()
	b := d.e.criuBounds(memoryUsage(d.c.PID), d.dumpLog())
	argv := d.e.runc(filepath.Join(d.e.containerDir(d.c.ID), "runc.log")).checkpointArgs(d.c.ID, d.imgDir, d.work, o)
	_, err := runcToolWith(context.WithoutCancel(d.ctx), argv, d.dumpLog(),
		&toolOptions{inherit: []*os.File{d.lock.File()}, started: func() { d.j.running("dumping") }, bounds: &b})
	d.res.Runtime, d.res.PreCopy = time.Since(t0), d.method
	d.pt.done("runtime_checkpoint")
	if err != nil {
		_ = fsutil.RemoveAll(d.imgDir)
		if hint := dumpHint(d.dumpLog(), o); hint != "" {
			err = fmt.Errorf("%w\nhint: %s", err, hint)
		}
		return d.failedDump(err)
	}
	// runc has CRIU write stats-dump to the work directory.
	d.res.CRIU = dumpStats(d.work, d.imgDir)
	if d.stop {
		// CRIU killed the container: there is nothing to thaw.
		d.unfreeze.drop()
		d.res.Frozen, d.res.freezeHook = d.df.frozen(d.work, d.res.CRIU)
	}
	return nil
}

// failedDump returns the error of a failed dump saying what became of
// the container: a *StateError (LeftRunning) unless its record says it
// no longer runs.
func (d *dumpJob) failedDump(err error) error {
	if !d.exported {
		if x, lerr := d.e.loadState(d.c.ID); lerr == nil && x.Status != StatusRunning {
			return fmt.Errorf("%w (the container is no longer running: %s)", err, x.Status)
		}
	}
	return &StateError{Err: err, Left: LeftRunning}
}

// dumpStats returns CRIU's statistics of a dump from the first of dirs
// that has stats-dump, or nil.
func dumpStats(dirs ...string) *CRIUStatistics {
	for _, d := range dirs {
		if st, err := crit.GetDumpStats(d); err == nil && st != nil {
			return &CRIUStatistics{
				FreezingTime: st.GetFreezingTime(), FrozenTime: st.GetFrozenTime(),
				MemdumpTime: st.GetMemdumpTime(), MemwriteTime: st.GetMemwriteTime(),
				PagesScanned: st.GetPagesScanned(), PagesWritten: st.GetPagesWritten(),
			}
		}
	}
	return nil
}

// dedupLevel deduplicates a -P's new level against the level below it,
// when it adds a level to the chain by full dump.
func (d *dumpJob) dedupLevel() error {
	st, err := d.step.dedup(d.ctx, d.imgDir)
	if err != nil {
		return fmt.Errorf("%w (the container keeps running; the previous pre-checkpoints are kept)", err)
	}
	if st != nil {
		d.res.Dedup = st
		d.pt.done("dedup")
	}
	return nil
}

// dedupFinal deduplicates the full dump of a --with-previous checkpoint
// against its pre-checkpoint and links it to it. After a pre-dump CRIU
// wrote the parent link and only the dirtied pages itself. A failure
// leaves the full dump as it was.
func (d *dumpJob) dedupFinal() error {
	if !d.o.WithPrevious || d.method != PreCopyDedup {
		return nil
	}
	if d.o.beforeDedup != nil {
		if err := d.o.beforeDedup(d.imgDir); err != nil {
			return err
		}
	}
	st, err := incremental.Dedup(d.ctx, d.e.PreCheckpointDir(d.c.ID), d.imgDir, &incremental.Options{ParentLink: format.ParentLinkTarget})
	if err != nil {
		return err
	}
	d.res.Dedup = st
	d.pt.done("dedup")
	return nil
}

// save saves the container's record: with level as the chain's new
// latest level after a -P; without its chain after a full checkpoint,
// which depends on no pre-checkpoint, and then the chain's directories
// are removed.
func (d *dumpJob) save(level *PreCheckpointRecord) error {
	c := d.c
	if d.o.PreCheckpoint {
		c.PreCheckpoint = d.step.record(level)
	}
	endChain := !d.o.PreCheckpoint && !d.o.WithPrevious && c.PreCheckpoint != nil
	if endChain {
		c.PreCheckpoint = nil
	}
	if err := d.e.saveState(c); err != nil {
		return err
	}
	d.step.commit()
	if endChain {
		d.e.removePreChain(c.ID)
	}
	return nil
}

// markCheckpointed records in c that the dump stopped it.
func (d *dumpJob) markCheckpointed(at time.Time) {
	c := d.c
	c.CheckpointedAt, c.CheckpointTCP = at, d.o.TCPEstablished
	c.Status, c.PID, c.MonitorPID, c.FinishedAt = StatusCheckpointed, 0, 0, at
}

// waitOldMonitor lets the monitor of a container the dump stopped record
// the exit and drain the output, so that its last log lines come before
// the restored container's (at most ten seconds).
func (d *dumpJob) waitOldMonitor() {
	deadline := time.Now().Add(10 * time.Second)
	for d.oldMonitor > 0 && alive(d.oldMonitor) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// tidy removes CRIU's log and statistics of a dump that succeeded,
// unless Keep.
func (d *dumpJob) tidy() error {
	if !d.o.Keep {
		_ = os.Remove(d.dumpLog())
		_ = os.Remove(filepath.Join(d.work, crit.StatsDump))
	}
	return nil
}

// result is what the operation reports.
func (d *dumpJob) result() DumpResult {
	r := d.res
	r.Container, r.Total, r.Phases = d.c, time.Since(d.start), d.pt.phases
	return r
}
