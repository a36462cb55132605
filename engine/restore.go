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
	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// Restore restores a checkpointed container in place: a new monitor runs
// `runc restore` with fresh stdio pipes, which runc wires to the restored
// process in place of the old ones, so logs keep flowing. If CRIU fails
// the container stays checkpointed (restorable) and the error (an
// *ExitError) names restore.log and quotes its last error lines.
func (e *Engine) Restore(ctx context.Context, ref string, o *RestoreOptions) (*RestoreResult, error) {
	r := &restoreJob{e: e, ctx: ctx, ref: ref, start: time.Now(), pt: newPhaseTimer()}
	if o != nil {
		r.o = *o
	}
	if err := r.run(r.plan, r.check, r.begin, r.prepare, r.rewire, r.restore, r.record, r.tidy); err != nil {
		return nil, wrapf(err, "restore %s", ref)
	}
	r.res.Container, r.res.Total, r.res.Phases = r.c, time.Since(r.start), r.pt.phases
	return &r.res, nil
}

// restoreJob is one in-place restore, phase by phase.
type restoreJob struct {
	pipeline
	e     *Engine
	ctx   context.Context
	ref   string
	o     RestoreOptions
	start time.Time
	pt    *phaseTimer

	c      *Container
	lock   *fsutil.Lock
	j      *journal
	imgDir string // the images restored from
	work   string // CRIU's work directory: restore.log, stats-restore
	// transient: the images are the container's own on a tmpfs
	// (Container.ImageDir), where an export left them.
	transient bool
	// rewriteBundle: the layer's mount or the netns changed since the
	// bundle was written.
	rewriteBundle bool
	res           RestoreResult
}

// plan locks the container and picks the images: ImageDir's, those an
// export left on a tmpfs, or the checkpoint directory's.
func (r *restoreJob) plan() error {
	if r.o.TCPEstablished && r.o.TCPClose {
		return errors.New("--tcp-established and --tcp-close are mutually exclusive")
	}
	if err := r.e.preflight(r.ctx); err != nil {
		return err
	}
	c, l, err := r.e.lock(r.ctx, r.ref, "restore")
	if err != nil {
		return err
	}
	r.c, r.lock = c, l
	r.held.push("unlock the container", func() error { l.Unlock(); return nil })
	// The record goes last, once everything else is undone or released.
	r.held.push("end the operation's record", func() error { r.j.end(); return nil })
	r.imgDir, r.work = r.e.CheckpointDir(c.ID), r.e.workDir(c.ID)
	r.transient = r.o.ImageDir == "" && c.ImageDir != ""
	switch {
	case r.o.ImageDir != "":
		r.imgDir = r.o.ImageDir
	case r.transient:
		r.imgDir = c.ImageDir
	}
	return nil
}

// check refuses a restore the container cannot take: it runs, its images
// are gone, its TCP connections need a flag, or its checkpoint's
// pre-checkpoints are not as recorded.
func (r *restoreJob) check() error {
	c := r.c
	if c.Status == StatusRunning {
		return fmt.Errorf("%w: container %s is running", ErrState, c.Name)
	}
	if _, err := os.Stat(filepath.Join(r.imgDir, "inventory.img")); err != nil {
		if r.transient {
			return fmt.Errorf("%w: the checkpoint images of %s were kept on a tmpfs (%s) and are gone (a reboot clears them): restore its archive with `ckpt restore --import FILE`", ErrState, c.Name, r.imgDir)
		}
		return fmt.Errorf("%w: container %s has no checkpoint to restore", ErrState, c.Name)
	}
	if c.CheckpointTCP && !r.o.TCPEstablished && !r.o.TCPClose {
		return fmt.Errorf("%w: the checkpoint of %s has established TCP connections: restore with --tcp-established (or --tcp-close)", ErrState, c.Name)
	}
	if r.o.ImageDir == "" {
		return r.e.checkInPlaceParent(c, r.imgDir)
	}
	return nil
}

// begin journals the restore.
func (r *restoreJob) begin() error {
	// The monitor's record of an earlier start would speak for this one.
	if err := os.Remove(filepath.Join(r.e.containerDir(r.c.ID), startFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	j, err := r.e.beginContainerOp(r.c, opRecord{Op: opRestore, Phase: "prepare", ImageDir: r.imgDir, Keep: r.o.Keep, Transient: r.transient})
	if err != nil {
		return err
	}
	r.j = j
	return nil
}

// prepare clears what an earlier run left (CRIU's log, the exit record,
// runc's state of a container that exited by itself or whose runc was
// killed: the ID must be free for `runc restore`) and mounts the
// container layer again if it is not (after a reboot, or a Create
// elsewhere; the path is stable).
func (r *restoreJob) prepare() error {
	c := r.c
	if err := os.MkdirAll(r.work, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", r.work, err)
	}
	_ = os.Remove(filepath.Join(r.work, "restore.log"))
	_ = os.Remove(filepath.Join(r.e.containerDir(c.ID), exitFile))
	rootfs := c.Rootfs
	if !isMounted(rootfs) {
		s, err := r.e.storeOpen()
		if err != nil {
			return err
		}
		if rootfs, err = s.Mount(c.ID, ""); err != nil {
			return fmt.Errorf("mount container layer: %w", err)
		}
	}
	if _, err := os.Stat(runcStateDir(r.e.runcRoot(), c.ID)); err == nil {
		if err := r.e.deleteRuntime(c); err != nil {
			return fmt.Errorf("remove stale runtime state: %w", err)
		}
	}
	if rootfs != c.Rootfs {
		c.Rootfs = rootfs
		r.rewriteBundle = true
	}
	return nil
}

// rewire gives the container what its bundle names: a network namespace
// with loopback up if its own is gone (after a reboot; CRIU restores the
// container's sockets into it), the bundle rewritten if anything changed
// or it does not name CRIU's configuration (a bundle of an older ckpt),
// and that configuration, written for the restore.
func (r *restoreJob) rewire() error {
	c := r.c
	if c.NetNS != "" && !isNetns(c.NetNS) {
		_ = removeNetns(c.NetNS)
		c.NetNS = r.e.netnsPath(c.ID)
		if err := createNetns(c.NetNS); err != nil {
			return err
		}
		r.rewriteBundle = true
	}
	if r.rewriteBundle || !r.e.namesCRIUConfig(c) {
		if err := r.e.writeBundle(c); err != nil {
			return err
		}
	}
	// runc 1.1 does not pass --manage-cgroups-mode ignore on to CRIU
	// (CRIU restores in its default soft mode); CRIU's configuration file
	// overrides what runc sends.
	conf := "manage-cgroups=ignore\n"
	if r.o.TCPClose {
		conf += "tcp-close\n"
	}
	removeConf, err := r.e.setCRIUConfig(c, conf)
	if err != nil {
		return err
	}
	r.held.push("remove the CRIU configuration", func() error { removeConf(); return nil })
	r.pt.done("prepare")
	return nil
}

// restore has a new monitor run `runc restore`, bounded like a dump
// (CRIULimits). If it fails, what it left is undone and the container
// stays checkpointed (failedRestore).
func (r *restoreJob) restore() error {
	c := r.c
	b := r.e.criuBounds(imagesSize(r.imgDir), filepath.Join(r.work, "restore.log"))
	mntns := criuMntnsDirs()
	r.j.phase("start")
	mc := &monitorConfig{
		Mode: monitorRestore, ID: c.ID, Dir: r.e.containerDir(c.ID),
		RuncPath: r.e.runtimePath(), RuncRoot: r.e.runcRoot(),
		ImageDir: r.imgDir, WorkDir: r.work, Restore: &r.o, Rootfs: r.e.layerRoot(c),
		Timeout: b.timeout, Work: b.work, MaxLog: b.maxLog, OpenStdin: c.OpenStdin,
		Terminal: c.Terminal, lock: r.lock.File(), started: func() { r.j.running("restoring") },
	}
	if c.AutoRemove {
		mc.AutoRemove = r.e.config()
	}
	res, err := r.e.startMonitor(r.ctx, mc)
	r.pt.done("monitor_restore")
	if err != nil {
		if hint := restoreHint(filepath.Join(r.work, "restore.log")); hint != "" {
			err = fmt.Errorf("%w\nhint: %s", err, hint)
		}
		return r.e.failedRestore(c, err, mntns)
	}
	r.res.Runtime = time.Duration(res.RuntimeUS) * time.Microsecond
	r.res.CRIU = restoreStats(r.imgDir, r.work)
	now := time.Now().UTC()
	c.Status, c.PID, c.MonitorPID = StatusRunning, res.PID, res.MonitorPID
	c.StartedAt, c.RestoredAt, c.FinishedAt, c.ExitCode = now, now, time.Time{}, 0
	return nil
}

// restoreStats returns CRIU's statistics of a restore from the first of
// dirs that has stats-restore, or nil.
func restoreStats(dirs ...string) *CRIUStatistics {
	for _, d := range dirs {
		if st, err := crit.GetRestoreStats(d); err == nil && st != nil {
			return &CRIUStatistics{
				ForkingTime: st.GetForkingTime(), RestoreTime: st.GetRestoreTime(),
				PagesRestored: st.GetPagesRestored(),
			}
		}
	}
	return nil
}

// record saves the container's record, running. A restore ends the
// pre-checkpoint chain (kept with Keep, with the images that may depend
// on it, and by an export's rollback).
func (r *restoreJob) record() error {
	c := r.c
	endChain := !r.o.Keep && !r.o.keepChain && r.o.ImageDir == "" && c.PreCheckpoint != nil
	if endChain {
		c.PreCheckpoint = nil
	}
	if r.transient && !r.o.Keep {
		c.ImageDir = ""
	}
	r.j.phase("record")
	if err := r.e.saveState(c); err != nil {
		return err
	}
	r.pt.done("save_state")
	if endChain {
		r.e.removePreChain(c.ID)
	}
	return nil
}

// tidy removes the images and CRIU's log and statistics, unless Keep.
// Images kept elsewhere (ImageDir) are never removed.
func (r *restoreJob) tidy() error {
	if r.o.Keep {
		return nil
	}
	switch {
	case r.transient:
		_ = r.e.removeTransient(r.c.ID) // the images and what lies beside them
	case r.o.ImageDir == "":
		_ = fsutil.RemoveAll(r.imgDir)
	}
	_ = os.Remove(filepath.Join(r.work, "restore.log"))
	_ = os.Remove(filepath.Join(r.work, crit.StatsRestore))
	return nil
}

// restoreHint returns advice for known CRIU restore failures found in
// restore.log.
func restoreHint(restoreLog string) string {
	data, err := fileio.ReadTail(restoreLog, maxLogTailRead)
	if err != nil {
		return ""
	}
	if bytes.Contains(data, []byte("has bad size")) {
		// CRIU reopens a checkpoint's open files by path and refuses one
		// whose size changed.
		return "a file the container had open changed size after the checkpoint (a checkpoint left running, -R, went on writing it): " +
			"restore a newer checkpoint, or put the file back as it was"
	}
	return ""
}
