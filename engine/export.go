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

// ExportOptions configures [Engine.Export]; the zero value exports with
// zstd, the container layer's changes and the named volumes, and stops the
// container once the archive is durable, as `podman container checkpoint
// --export` does.
type ExportOptions struct {
	// LeaveRunning keeps the container running after the export (-R). It
	// keeps running whatever happens, including a failed export.
	LeaveRunning bool
	// TCPEstablished dumps established TCP connections.
	TCPEstablished bool
	// FileLocks dumps file locks.
	FileLocks bool
	// Keep keeps CRIU's dump.log and stats-dump in the container's work
	// directory.
	Keep bool
	// Compression is the archive's outer compression; empty means zstd.
	Compression format.Compression
	// IgnoreRootfs leaves the container layer's changes (rootfs-diff.tar,
	// deleted.files) out of the archive.
	IgnoreRootfs bool
	// IgnoreVolumes leaves the named volumes' content out of the archive.
	IgnoreVolumes bool
	// Progress, if set, is called from the writing goroutine with the
	// number of archive bytes written so far.
	Progress func(written int64)
	// PreCheckpoint takes a pre-checkpoint (-P): a CRIU pre-dump where
	// CRIU has memory tracking, else a full dump ([Engine.PreCopyMethod]);
	// it leaves the container running (LeaveRunning is implied; it is
	// thawed right after the dump), kept in the container's
	// pre-checkpoint directory as the parent of the next WithPrevious
	// export, and written to an archive whose images are under
	// pre-checkpoint/. The archive carries no
	// container layer or volumes (IgnoreRootfs and IgnoreVolumes are
	// implied): the final archive brings them. After an exported
	// pre-checkpoint taken by full dump, it adds a level to the chain:
	// the images are deduplicated against the previous level and the
	// manifest's Parent names the previous archive (Depth one more). Not
	// with WithPrevious.
	PreCheckpoint bool
	// WithPrevious takes the final checkpoint of a pre-copy: a CRIU dump
	// with the pre-checkpoint as parent after a pre-dump, else a full
	// dump deduplicated against the last pre-checkpoint (incremental.Dedup)
	// before the archive is written, so the archive carries only the pages
	// that changed and its manifest's Parent names the pre-checkpoint
	// archive. The container must have a pre-checkpoint exported with
	// PreCheckpoint.
	WithPrevious bool
	// beforeDedup, if set (tests only), is called with the image
	// directory of a WithPrevious dump before it is deduplicated.
	beforeDedup func(imgDir string) error
}

// ExportResult describes an export.
type ExportResult struct {
	DumpResult
	// Path is the archive written.
	Path string
	// Size is the archive's size in bytes.
	Size int64
	// Manifest is the archive's manifest.
	Manifest *format.Manifest
	// prehashed is how many pages images were summed during the dump.
	prehashed int
}

// Export checkpoints a running container and writes everything needed to
// restore it on another host into a v1 archive at path (see
// docs/FORMAT.md): the CRIU images, the container record (config.dump),
// the OCI spec (spec.dump), CRIU's statistics and CPU description
// (cpuinfo.img), the container layer's changes (rootfs-diff.tar,
// deleted.files), the named volumes (volumes/<name>.tar) and ctr.log.
//
// The container is frozen for the dump only, which CRIU writes to the
// container directory or, if set, [Engine.TmpDir]. Without LeaveRunning, the
// engine freezes its cgroup just before the dump (CRIU's own freeze polls
// every 100 ms), CRIU kills it at the end of the dump and it becomes
// checkpointed, its images kept where they were dumped (restorable in
// place, as podman does): its downtime runs from that freeze to the end of
// CRIU's dump. With LeaveRunning, CRIU thaws it after
// the dump, unless its container layer's changes or volumes go into the
// archive: then it is frozen (runc pause) before the dump and thawed only
// once they are copied, so they match its memory. The pages images are
// summed while CRIU writes them (not for pre-copy, whose images are
// deduplicated after the dump). Only then is the archive compressed and
// written, with O_DIRECT where the file system has it: to a temporary
// file beside path (created with O_EXCL), synced, renamed to path and the
// directory synced. On any failure, including ctx being cancelled, the temporary
// file is removed, nothing is left at path and the container keeps
// running: if it was stopped already, it is restored from its images (if
// that fails too, it stays checkpointed and the error says so). A watchdog
// process thaws the container and removes the temporary file even if the
// calling process is killed (after the dump, if one was under way); a
// container stopped by then stays checkpointed, and the next command
// reconciles the rest (journal.go): the dump's images of a container
// that runs on, the layer copies, the temporary file.
func (e *Engine) Export(ctx context.Context, ref, path string, o *ExportOptions) (*ExportResult, error) {
	res, rb, err := e.export(ctx, ref, path, o)
	if err != nil && rb != nil {
		// The container was stopped after its dump and the archive
		// failed: restore it from its images, as it was.
		if _, rerr := e.Restore(context.WithoutCancel(ctx), rb.id, &RestoreOptions{TCPEstablished: rb.tcp, FileLocks: rb.fileLocks, keepChain: true}); rerr != nil {
			return nil, fmt.Errorf("%w\n(the container was stopped after its dump and restoring it failed: %w; it stays checkpointed: retry with `ckpt restore %s`)", err, rerr, rb.name)
		}
		return nil, fmt.Errorf("%w\n(the container was restored from its dump and keeps running)", err)
	}
	return res, err
}

// rollback names the container an export stopped after its dump, to be
// restored if the archive fails.
type rollback struct {
	id, name       string
	tcp, fileLocks bool
}

// export does Export's work. After a failure with the container stopped
// (checkpointed), it returns a non-nil rollback; the container's lock is
// released by then, so Export can restore it.
func (e *Engine) export(ctx context.Context, ref, path string, o *ExportOptions) (_ *ExportResult, rb *rollback, err error) {
	if o == nil {
		o = &ExportOptions{}
	}
	start := time.Now()
	pt := newPhaseTimer()
	defer func() {
		if err != nil {
			err = fmt.Errorf("export %s: %w", ref, err)
		}
	}()
	comp, err := format.ParseCompression(string(o.Compression))
	if err != nil {
		return nil, nil, err
	}
	if path == "" {
		return nil, nil, errors.New("no archive path given")
	}
	if o.PreCheckpoint && o.WithPrevious {
		return nil, nil, errors.New("a pre-checkpoint cannot be taken with previous: use one or the other")
	}
	if o.PreCheckpoint {
		// A pre-checkpoint only carries memory: the import takes the
		// container layer and volumes from the final archive.
		oo := *o
		oo.LeaveRunning, oo.IgnoreRootfs, oo.IgnoreVolumes = true, true, true
		o = &oo
	}
	c, l, err := e.lockRunning(ctx, ref, "export")
	if err != nil {
		return nil, nil, err
	}
	defer l.Unlock()
	// The operation's record goes last, once everything else is undone
	// or done (it is begun below, once the temporary file exists).
	var j *journal
	defer func() { j.end() }()
	preDir := e.PreCheckpointDir(c.ID)
	if o.WithPrevious {
		if err := e.checkPrevious(c, true); err != nil {
			return nil, nil, err
		}
	}
	method := e.preCopyMethod(ctx, c, o.PreCheckpoint, o.WithPrevious)
	if o.PreCheckpoint {
		if err := e.checkPreCheckpointDepth(c, true, method); err != nil {
			return nil, nil, err
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory: give a file name", abs)
	}
	// The temporary file first: an unwritable directory fails before the
	// container is touched.
	f, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		return nil, nil, fmt.Errorf("create archive in %s: %w", dir, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// Transient images go to the TmpDir tmpfs, if set and with room for
	// the container's memory. A pre-copy's images stay in the container
	// directory in any case: the chain's parent links are relative to it,
	// and CRIU resolves them inside the container's mount namespace,
	// where an absolute link from the tmpfs would lead nowhere.
	// A LeaveRunning export's images are thrown away once in the archive:
	// they never go to the checkpoint directory, which may hold an
	// in-place checkpoint's, and the next operation on the container
	// removes them if this one dies (sweepContainer).
	imgDir, work, layersDir := e.CheckpointDir(c.ID), e.workDir(c.ID), ""
	sub := format.CheckpointDir
	switch {
	case o.PreCheckpoint:
		imgDir = preDir
	case !o.WithPrevious:
		if o.LeaveRunning {
			sub = exportImagesDir
			imgDir = filepath.Join(e.containerDir(c.ID), sub)
		}
		if t := e.transientDir(c.ID, memoryUsage(c.PID)); t != "" {
			imgDir, layersDir = filepath.Join(t, sub), filepath.Join(t, "layers")
		}
	}
	// The container layer's changes and the volumes are copied there too
	// (or, if it fills up, to the work directory).
	layerDirs := []string{filepath.Join(work, "layers")}
	if layersDir != "" {
		layerDirs = append([]string{layersDir}, layerDirs...)
	}
	defer func() {
		for _, d := range layerDirs {
			_ = fsutil.RemoveAll(d)
		}
	}()
	if transient := imgDir != e.CheckpointDir(c.ID) && imgDir != preDir; transient {
		defer func() {
			if err != nil && rb == nil {
				_ = fsutil.RemoveAll(imgDir) // nothing will restore from them
			}
		}()
	}

	wantLayers := !o.IgnoreRootfs || !o.IgnoreVolumes
	pause := o.LeaveRunning && wantLayers
	stop := !pause && !o.LeaveRunning && !o.PreCheckpoint
	if j, err = e.beginContainerOp(c, opRecord{Op: opExport, Phase: "prepare", CheckpointedAt: c.CheckpointedAt,
		ImageDir: imgDir, Stop: stop, PreCheckpoint: o.PreCheckpoint, TCP: o.TCPEstablished,
		Archive: tmp, LayerDirs: layerDirs}); err != nil {
		return nil, nil, err
	}

	// What the manifest says of this host is found meanwhile.
	hf := e.probeHost(ctx, e.containerDir(c.ID))
	defer hf.close()

	// A watchdog thaws the container and removes the temporary file if
	// this process dies before it finishes.
	wd, err := e.startWatchdog(c.ID, tmp)
	if err != nil {
		return nil, nil, err
	}
	// The container is frozen with runc pause only when something must be
	// read after the dump in the state the dump saw: the container layer
	// and volumes of a LeaveRunning export. Otherwise CRIU alone freezes
	// it, for its dump, and then kills it (without LeaveRunning: runc
	// removes it, as `ckpt checkpoint` does) or thaws it.
	dumpEnded := true
	defer func() { wd.stop(dumpEnded) }()
	released := !pause // thawed or stopped, or never paused
	var selfThaw func() error
	defer func() {
		if !released {
			// Thaw even if ctx is cancelled.
			if selfThaw != nil {
				if terr := selfThaw(); terr != nil && err == nil {
					err = fmt.Errorf("thaw container: %w", terr)
				}
			} else if _, terr := runcTool(context.Background(), append(e.runc("").base("resume"), c.ID), ""); terr != nil && err == nil {
				err = fmt.Errorf("thaw container: %w", terr)
			}
		}
	}()
	frozenAt := time.Now()
	if pause {
		j.phase("freeze")
		// runc pause is not interrupted either: a killed one can leave
		// the freezer half-way, which runc resume then refuses to undo.
		// (The thaw above is registered first: it is harmless if pause
		// failed.)
		if _, err := runcTool(context.Background(), append(e.runc("").base("pause"), c.ID), ""); err != nil {
			return nil, nil, fmt.Errorf("freeze container: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		pt.done("freeze")
	}

	var step *preStep
	if o.PreCheckpoint {
		// The chain so far stays until the new level is recorded.
		if step, err = e.beginPreCheckpoint(c, method, true); err != nil {
			return nil, nil, err
		}
		defer step.rollback()
	}
	for _, d := range []string{imgDir, work} {
		if err := fsutil.RemoveAll(d); err != nil {
			return nil, nil, fmt.Errorf("clear %s: %w", d, err)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// CRIU dumps and kills the container unless pause or LeaveRunning:
	// ckpt freezes its cgroup then, in milliseconds, rather than leave it
	// to CRIU, whose freeze polls every 100 ms (see freeze); at CRIU's
	// pre-dump action if it can, else now.
	df, removeConf, err := e.prepareDump(c, work, stop)
	if err != nil {
		return nil, nil, err
	}
	defer removeConf()
	if selfThaw = df.thawFunc(); selfThaw != nil {
		released = false
		if _, ok := df.frozenSince(); ok {
			pt.done("freeze")
		}
	}
	dumpLog := filepath.Join(work, "dump.log")
	co := withPreCopyArgs(&CheckpointOptions{LeaveRunning: o.LeaveRunning, TCPEstablished: o.TCPEstablished, FileLocks: o.FileLocks,
		PreCheckpoint: o.PreCheckpoint, WithPrevious: o.WithPrevious}, method)
	co = step.withParent(co)
	oldMonitor := c.MonitorPID
	t0 := time.Now()
	// The pages images are summed while CRIU writes them, unless they
	// are deduplicated after the dump (pre-copy).
	var th *tailHasher
	if !o.PreCheckpoint && !o.WithPrevious {
		th = startTailHasher(imgDir)
		defer th.stop()
	}
	// The dump is not interrupted when ctx is: killing runc while CRIU
	// has the container's processes seized and infected with its parasite
	// kills them. ctx is checked after. It is bounded in time and log
	// size (CRIULimits) all the same. runc holds the container's lock
	// while it runs, also if this process is killed (journal.go).
	j.phase("dump")
	b := e.criuBounds(memoryUsage(c.PID), dumpLog)
	_, err = runcToolWith(context.Background(), e.runc(filepath.Join(e.containerDir(c.ID), "runc.log")).checkpointArgs(c.ID, imgDir, work, co), dumpLog,
		&toolOptions{inherit: []*os.File{l.File()}, started: func() { j.running("dumping") }, bounds: &b})
	res := &ExportResult{Path: abs, DumpResult: DumpResult{Runtime: time.Since(t0), PreCopy: method}}
	pt.done("runtime_checkpoint")
	if th != nil {
		// It reads the rest while the archive is written.
		th.end()
	}
	if err != nil {
		// If runc failed oddly, CRIU may still run and re-freeze the
		// container when it ends: the watchdog thaws it after that.
		dumpEnded = false
		_ = fsutil.RemoveAll(imgDir)
		err = fmt.Errorf("%w\n(the container keeps running)", err)
		if hint := dumpHint(dumpLog, co); hint != "" {
			err = fmt.Errorf("%w\nhint: %s", err, hint)
		}
		return nil, nil, err
	}
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
	if !pause {
		res.Frozen, res.freezeHook = df.frozen(work, res.CRIU)
	}
	if stop {
		// CRIU thawed the cgroup to kill the container.
		released = true
	}
	parent := step.archiveParent()
	if o.WithPrevious {
		parent = finalParent(c.PreCheckpoint)
	}
	rec := *c
	rec.PreCheckpoint = nil
	rec.CheckpointedAt = time.Now().UTC()
	rec.CheckpointTCP = o.TCPEstablished

	// The container does not stay frozen while the archive is written:
	// with LeaveRunning its container layer and volumes are copied as
	// they are now and it is thawed (if it was paused for that); without,
	// CRIU stopped it, and it is now checkpointed with the images just
	// dumped, restored from them if the archive fails.
	var layers []layerMember
	if pause {
		j.phase("copy_layers")
		layers, err = e.layerMembers(ctx, c, o, layerDirs...)
		if err != nil {
			_ = fsutil.RemoveAll(imgDir)
			return nil, nil, fmt.Errorf("copy the container layer and volumes: %w (the container keeps running)", err)
		}
		pt.done("copy_layers")
		if _, err := runcTool(context.Background(), append(e.runc("").base("resume"), c.ID), ""); err != nil {
			return nil, nil, fmt.Errorf("thaw container: %w", err)
		}
		released = true
		res.Frozen = time.Since(frozenAt)
		pt.done("thaw")
	}
	wd.released()
	if !o.LeaveRunning {
		j.phase("stop")
		// Let the old monitor record the exit and drain the output
		// first, so that its last log lines come before the restored
		// container's.
		deadline := time.Now().Add(10 * time.Second)
		for oldMonitor > 0 && alive(oldMonitor) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		c.CheckpointedAt, c.CheckpointTCP = rec.CheckpointedAt, rec.CheckpointTCP
		c.Status, c.PID, c.MonitorPID, c.FinishedAt = StatusCheckpointed, 0, 0, c.CheckpointedAt
		c.ImageDir = ""
		if imgDir != e.CheckpointDir(c.ID) {
			c.ImageDir = imgDir
		}
		if err := e.saveState(c); err != nil {
			return nil, nil, fmt.Errorf("record the checkpointed container: %w", err)
		}
		rb = &rollback{id: c.ID, name: c.Name, tcp: o.TCPEstablished, fileLocks: o.FileLocks}
		pt.done("stop")
	}
	if res.Frozen == 0 {
		res.Frozen = time.Since(frozenAt)
	}
	fail := func(what string, err error) (*ExportResult, *rollback, error) {
		return nil, rb, fmt.Errorf("%s: %w (nothing was written to %s)", what, err, abs)
	}
	if err := ctx.Err(); err != nil {
		if rb == nil {
			_ = fsutil.RemoveAll(imgDir)
		}
		return fail("export", err)
	}

	// Deduplication needs only the dump: it runs with the container
	// thawed or stopped. It leaves the full dump as it was if it fails.
	if st, err := step.dedup(ctx, imgDir); err != nil {
		return nil, nil, fmt.Errorf("%w (the container keeps running; the previous pre-checkpoints are kept)", err)
	} else if st != nil {
		res.Dedup = st
		pt.done("dedup")
	}
	if o.WithPrevious && method == PreCopyDedup {
		// After a pre-dump CRIU wrote the parent link and only the dirtied
		// pages itself; after a full dump, deduplicate.
		if o.beforeDedup != nil {
			if err := o.beforeDedup(imgDir); err != nil {
				return fail("deduplicate against the pre-checkpoint", err)
			}
		}
		st, err := incremental.Dedup(ctx, preDir, imgDir, &incremental.Options{ParentLink: format.ParentLinkTarget})
		if err != nil {
			if rb == nil {
				_ = fsutil.RemoveAll(imgDir)
			}
			return fail("deduplicate against the pre-checkpoint", err)
		}
		res.Dedup = st
		pt.done("dedup")
	}

	if !o.LeaveRunning && wantLayers {
		j.phase("copy_layers")
		// Stopped: nothing changes them any more.
		if layers, err = e.layerMembers(ctx, c, o, layerDirs...); err != nil {
			return fail("copy the container layer and volumes", err)
		}
		pt.done("copy_layers")
	}
	j.phase("write")
	if os.Getenv(testStopEnv) != "" {
		// The fault tests' stop point inside the write.
		oo, once, progress := *o, false, o.Progress
		oo.Progress = func(n int64) {
			if !once {
				once = true
				j.running("writing")
			}
			if progress != nil {
				progress(n)
			}
		}
		o = &oo
	}
	size, m, md, err := e.writeArchive(ctx, f, &rec, imgDir, work, comp, o, parent, pt, layers, th, &res.prehashed, hf)
	if err != nil {
		return fail("write archive", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync archive", err)
	}
	if err := f.Close(); err != nil {
		return fail("close archive", err)
	}
	if err := ctx.Err(); err != nil {
		return fail("export", err)
	}
	j.phase("commit")
	if err := os.Rename(tmp, abs); err != nil {
		return fail("rename archive", err)
	}
	committed = true
	if err := fsutil.SyncDir(dir); err != nil {
		return nil, nil, fmt.Errorf("sync %s: %w (the archive %s is complete)", dir, err, abs)
	}
	pt.done("commit")
	res.Size, res.Manifest = size, m
	j.phase("record")

	if o.LeaveRunning {
		c.CheckpointedAt, c.CheckpointTCP = rec.CheckpointedAt, rec.CheckpointTCP
	}
	if o.PreCheckpoint {
		c.PreCheckpoint = step.record(&PreCheckpointRecord{
			Manifest: md, Images: format.ImagesDigest(m.Members, format.PreCheckpointDir), At: rec.CheckpointedAt,
			Method: method,
		})
	}
	endChain := !o.PreCheckpoint && !o.WithPrevious && c.PreCheckpoint != nil
	if endChain {
		c.PreCheckpoint = nil // a full checkpoint ends the chain
	}
	if o.LeaveRunning && !o.PreCheckpoint && !o.WithPrevious {
		// The images are in the archive and the container runs on:
		// removed before the page cache writes them to disk.
		_ = fsutil.RemoveAll(imgDir)
	}
	if err := e.saveState(c); err != nil {
		return nil, nil, fmt.Errorf("%w (the archive %s is complete)", err, abs)
	}
	step.commit()
	if endChain {
		e.removePreChain(c.ID)
	}
	pt.done("save_state")
	if !o.Keep {
		_ = os.Remove(dumpLog)
		_ = os.Remove(filepath.Join(work, crit.StatsDump))
	}
	res.Container, res.Total, res.Phases = c, time.Since(start), pt.phases
	return res, nil, nil
}
