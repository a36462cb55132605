package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/internal/fsutil"
	"golang.org/x/crypto/ssh"
)

// ExportOptions configures [Engine.Export]; the zero value exports with
// zstd, the container layer's changes and the named volumes, and stops the
// container once the archive is durable, as `podman container checkpoint
// --export` does.
//
// The embedded CheckpointOptions dump the container as for
// [Engine.Checkpoint], but for an archive:
//   - With LeaveRunning (-R) the container keeps running whatever
//     happens, including a failed export.
//   - A PreCheckpoint's archive holds its images under pre-checkpoint/
//     and no container layer or volumes (IgnoreRootfs and IgnoreVolumes
//     are implied): the final archive brings them. One taken by full dump
//     after an exported pre-checkpoint adds a level to the chain: its
//     images are deduplicated against the previous level and its
//     manifest's Parent names the previous archive (Depth one more).
//   - WithPrevious needs a pre-checkpoint exported with PreCheckpoint:
//     the archive carries only the pages that changed since, and its
//     manifest's Parent names the pre-checkpoint's archive.
//   - Keep keeps CRIU's dump.log and stats-dump in the container's work
//     directory.
type ExportOptions struct {
	CheckpointOptions
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
	// Stream writes a streamed archive (docs/FORMAT.md §10) in one pass:
	// the pages images go into it while CRIU writes them, none staged on
	// disk (stream.go). The container stays frozen until the archive is
	// complete (with LeaveRunning, until its layer is copied). Not with
	// PreCheckpoint or WithPrevious, nor gzip.
	Stream bool
	// Output, if set, receives a streamed archive (Stream implied)
	// instead of a file at the path given, which is then only a name for
	// messages. A failure to write it, such as a reader that went away,
	// fails the export and leaves the container running.
	Output io.Writer
	// SealTo, if set, seals the archive to these keys (format/seal,
	// docs/FORMAT.md §11): the archive, compressed as usual, is encrypted
	// as it is written, and nothing but the envelope's header is in
	// clear, on disk or in the stream. A pre-copy chain may be sealed
	// level by level (PreCheckpoint, WithPrevious): a level's parent is
	// named by the digest of the manifest inside its envelope.
	SealTo []age.Recipient
	// SignKey, if set, signs a sealed archive (SealTo required): an
	// OpenSSH SSHSIG signature over the whole envelope, in its trailer
	// (docs/FORMAT.md rule 37), which `ssh-keygen -Y verify` checks too.
	SignKey ssh.Signer
	// Confirm, if set, is called once a streamed archive's last byte is
	// written to Output (close it there: the reader's end of the stream),
	// while the container is still frozen and alive; it returns nil once
	// the reader has restored the container (the target confirmed).
	// Only then is the container stopped (without LeaveRunning). An error
	// fails the export and the container is thawed and runs on. Only
	// with Output.
	Confirm func() error
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
// docs/FORMAT.md): the CRIU images, the container record (config.dump,
// in libpod's shape with ckpt's record inside: configdump.go),
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
			var se *StateError
			if errors.As(rerr, &se) {
				rerr = se.Err // its note is the one below
			}
			return nil, &StateError{Err: fmt.Errorf("%w; restoring %s from the dump failed: %w", err, rb.name, rerr), Left: LeftCheckpointed}
		}
		return nil, &StateError{Err: err, Left: LeftRestored}
	}
	return res, err
}

// rollback names the container an export stopped after its dump, to be
// restored if the archive fails.
type rollback struct {
	id, name       string
	tcp, fileLocks bool
}

// export does Export's work: the dump's phases (dump.go) and the
// archive's. After a failure with the container stopped (checkpointed)
// and no archive, it returns a non-nil rollback; the container's lock is
// released by then, so Export can restore it.
func (e *Engine) export(ctx context.Context, ref, path string, o *ExportOptions) (*ExportResult, *rollback, error) {
	x := e.newExportJob(ctx, ref, path, o)
	err := x.run(x.check, x.plan, x.open, x.pause, x.prepareExport, x.startStream, x.dump, x.release,
		x.recordStop, x.dedup, x.gather, x.write, x.confirm, x.commit, x.record, x.stopStreamed, x.tidy)
	if err != nil {
		return nil, x.rb, wrapf(err, "export %s", ref)
	}
	return &ExportResult{DumpResult: x.result(), Path: x.abs, Size: x.archive.size,
		Manifest: x.archive.manifest, prehashed: x.archive.prehashed}, nil, nil
}

// exportJob is one export: a dump (dump.go) and the archive it goes
// into.
type exportJob struct {
	*dumpJob
	opts ExportOptions // the caller's, with what PreCheckpoint implies
	comp format.Compression
	path string // the target as given
	abs  string // its absolute path
	dir  string // its directory
	tmp  string // the temporary archive beside it
	f    *os.File
	// removeTmp is the temporary archive's undo, dropped once renamed.
	removeTmp *undoStep
	// layerDirs are where the layer's changes and the volumes are copied:
	// beside transient images first, then the work directory.
	layerDirs  []string
	wantLayers bool // the archive carries the layer's changes or volumes
	// pauses: the container is paused (runc pause) from before the dump
	// until its layer and volumes are copied (-R with layers).
	pauses   bool
	unpause  *undoStep // the pause's undo, dropped once thawed
	frozenAt time.Time
	// ranAt is when a dump that leaves the container running let it run
	// again (logCut).
	ranAt   time.Time
	hf      *hostFacts
	wd      *watchdog
	th      *tailHasher // sums the pages images during the dump
	rec     Container   // the container's record as dumped, for the archive
	parent  *format.Parent
	layers  []layerMember
	archive *archiveResult
	// rb is set while a failure restores the container: from the record
	// of the stop until the archive is renamed.
	rb *rollback
	// streaming: a streamed export (stream.go). The dump leaves the
	// container running, frozen, until the archive is complete.
	streaming bool
	out       *streamOut
	sw        *format.StreamWriter
	sealer    *seal.Writer // between sw and out, for a sealed streamed archive
	ps        *pageStreams
	streamed  map[string]bool // the pages images sw has
	cpuinfo   string
}

// newExportJob starts an export of container ref to path with options o
// (nil: the zero value).
func (e *Engine) newExportJob(ctx context.Context, ref, path string, o *ExportOptions) *exportJob {
	x := &exportJob{path: path}
	if o != nil {
		x.opts = *o
	}
	if x.opts.PreCheckpoint {
		// A pre-checkpoint only carries memory: the import takes the
		// container layer and volumes from the final archive.
		x.opts.LeaveRunning, x.opts.IgnoreRootfs, x.opts.IgnoreVolumes = true, true, true
	}
	x.streaming = x.opts.Stream || x.opts.Output != nil
	x.dumpJob = e.newDumpJob(ctx, opExport, ref, &x.opts.CheckpointOptions)
	if x.streaming {
		// CRIU leaves it running; it is stopped once the archive is
		// complete (stopStreamed).
		x.o.LeaveRunning = true
	}
	return x
}

// check refuses what the options alone rule out.
func (x *exportJob) check() error {
	comp, err := format.ParseCompression(string(x.opts.Compression))
	if err != nil {
		return err
	}
	x.comp = comp
	if x.opts.SignKey != nil && len(x.opts.SealTo) == 0 {
		return fmt.Errorf("%w: a signature goes with a sealed archive: give --encrypt-to too", ErrOptions)
	}
	if x.opts.Confirm != nil && x.opts.Output == nil {
		return fmt.Errorf("%w: Confirm needs Output (the reader that confirms)", ErrOptions)
	}
	if x.streaming {
		switch {
		case x.opts.PreCheckpoint || x.opts.WithPrevious:
			return errors.New("a streamed export takes a full checkpoint: not with --pre-checkpoint or --with-previous")
		case comp == format.Gzip:
			return errors.New("a streamed archive is zstd or uncompressed: not gzip")
		case x.opts.Output != nil:
			return nil
		}
	}
	if x.path == "" {
		return errors.New("no archive path given")
	}
	return checkArchivePath(x.path)
}

// checkArchivePath refuses an archive path whose directory is missing or
// not a directory, or that names a directory, in the caller's terms: it
// runs before the container is looked up or touched.
func checkArchivePath(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it, or give a path in an existing directory", dir)
	case err != nil:
		return fmt.Errorf("directory %s: %w", dir, unwrapPath(err))
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: give a file name", path)
	}
	return nil
}

// unwrapPath returns the error of a *os.PathError, whose path the caller
// names itself, or err.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// open creates the temporary archive, picks where the dump and the layer
// copies go, journals the export, and starts what runs beside the dump:
// the host's probe, for the manifest, and the watchdog, which thaws the
// container and removes the temporary file if this process dies before
// it finishes.
func (x *exportJob) open() error {
	if x.opts.Output != nil {
		x.abs = x.path
	} else if err := x.createTemp(); err != nil {
		return err
	}
	x.pickDirs()
	if err := x.begin(opRecord{Archive: x.tmp, LayerDirs: x.layerDirs}); err != nil {
		return err
	}
	dirs := x.layerDirs
	x.held.push("remove the layer copies", func() error {
		for _, d := range dirs {
			_ = fsutil.RemoveAll(d)
		}
		return nil
	})
	hf := x.e.probeHost(x.ctx, x.e.containerDir(x.c.ID))
	x.hf = hf
	x.held.push("finish probing the host", func() error { hf.close(); return nil })
	wd, err := x.e.startWatchdog(x.c.ID, x.c.PID, x.tmp)
	if err != nil {
		return err
	}
	x.wd = wd
	x.held.push("stop the watchdog", func() error { wd.stop(); return nil })
	return nil
}

// createTemp creates the temporary archive beside the target first: an
// unwritable directory fails before the container is touched.
func (x *exportJob) createTemp() error {
	abs, err := filepath.Abs(x.path)
	if err != nil {
		return err
	}
	x.abs, x.dir = abs, filepath.Dir(abs)
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory: give a file name", abs)
	}
	f, err := os.CreateTemp(x.dir, "."+filepath.Base(abs)+".tmp-*")
	if err != nil {
		// The temporary file's name means nothing to the caller.
		return fmt.Errorf("cannot create %s: %w", x.path, unwrapPath(err))
	}
	x.f, x.tmp = f, f.Name()
	x.removeTmp = x.undo.push("remove the temporary archive", func() error {
		_ = f.Close()
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	return nil
}

// pickDirs picks where the images and the layer copies go. Transient
// images go to the TmpDir tmpfs, if set and with room for the container's
// memory, and the layer copies beside them (or, if it fills up, to the
// work directory). A pre-copy's images stay in the container directory in
// any case: the chain's parent links are relative to it, and CRIU
// resolves them inside the container's mount namespace, where an absolute
// link from the tmpfs would lead nowhere. A LeaveRunning export's images
// are thrown away once in the archive: they never go to the checkpoint
// directory, which may hold an in-place checkpoint's, and the next
// operation on the container removes them if this one dies
// (sweepContainer).
func (x *exportJob) pickDirs() {
	layersDir := ""
	if !x.o.PreCheckpoint && !x.o.WithPrevious {
		sub := format.CheckpointDir
		if x.o.LeaveRunning {
			sub = exportImagesDir
			x.imgDir = filepath.Join(x.e.containerDir(x.c.ID), sub)
		}
		if t := x.e.transientDir(x.c.ID, memoryUsage(x.c.PID)); t != "" {
			x.imgDir, layersDir = filepath.Join(t, sub), filepath.Join(t, "layers")
		}
	}
	x.layerDirs = []string{filepath.Join(x.work, "layers")}
	if layersDir != "" {
		x.layerDirs = append([]string{layersDir}, x.layerDirs...)
	}
	x.wantLayers = !x.opts.IgnoreRootfs || !x.opts.IgnoreVolumes
	x.pauses = x.o.LeaveRunning && x.wantLayers || x.streaming
}

// pause freezes the container with runc pause when something must be
// read after the dump in the state the dump saw: the container layer and
// volumes of a LeaveRunning export, and a streamed export, which holds it
// frozen until its archive is complete. A streamed export whose bundle
// passes ckpt's CRIU configuration is frozen later instead, at CRIU's
// pre-dump action (hold; prepareDump). Otherwise CRIU alone freezes it, for
// its dump, and then kills it (without LeaveRunning: runc removes it, as
// `ckpt checkpoint` does) or thaws it. runc pause is not interrupted
// either: a killed one can leave the freezer half-way, which runc resume
// then refuses to undo.
func (x *exportJob) pause() error {
	x.frozenAt = time.Now()
	if !x.pauses {
		return nil
	}
	if x.streaming && x.e.namesCRIUConfig(x.c) {
		if _, err := freezerOf(x.c.PID); err == nil {
			// Frozen at CRIU's pre-dump action instead (prepare), so
			// that it runs on while runc and CRIU start.
			x.hold = true
			return nil
		}
	}
	x.j.phase("freeze")
	if _, err := runcTool(context.Background(), append(x.e.runc("").base("pause"), x.c.ID), ""); err != nil {
		_ = x.resume() // harmless if the pause did nothing
		return fmt.Errorf("freeze container: %w", err)
	}
	x.unpause = x.undo.push("thaw the container", x.resume)
	if err := x.ctx.Err(); err != nil {
		return err
	}
	x.pt.done("freeze")
	return nil
}

// logCut is when a dump that leaves the container running let it run
// again (its log is archived up to then), or zero. The process was frozen
// until then, so every record read before it was written before the
// checkpoint, and a restored copy does not write it again.
func (x *exportJob) logCut() time.Time {
	if !x.o.LeaveRunning {
		return time.Time{}
	}
	return x.ranAt
}

// resume thaws a paused container, even if ctx is cancelled.
func (x *exportJob) resume() error {
	if x.hold && x.df != nil && x.df.f != nil {
		return x.df.f.thaw()
	}
	_, err := runcTool(context.Background(), append(x.e.runc("").base("resume"), x.c.ID), "")
	return err
}

// prepareExport is prepare (dump.go), timed as the "freeze" phase when
// ckpt froze the container before runc started.
func (x *exportJob) prepareExport() error {
	if err := x.prepare(); err != nil {
		return err
	}
	if _, ok := x.df.frozenSince(); ok && x.unfreeze != nil {
		x.pt.done("freeze")
	}
	if x.hold {
		x.unpause = x.unfreeze
	}
	return nil
}

// heldFrozen makes sure a streamed export's container, held frozen by the
// pre-dump script, is frozen after the dump, and dates the freeze. If the
// script could not freeze it, CRIU froze it and let it run again at its
// end: it is frozen now, having run for a moment after its checkpoint.
func (x *exportJob) heldFrozen() {
	if !x.hold {
		return
	}
	if t, ok := x.df.frozenSince(); ok {
		x.frozenAt = t
		return
	}
	x.frozenAt = time.Now()
	if x.df.f != nil {
		_ = x.df.f.freeze()
	}
}

// dump dumps the container (dump.go), summing its pages images while
// CRIU writes them unless they are deduplicated after the dump
// (pre-copy), and keeps the container's record as dumped for the
// archive. The images of a container that runs on are removed if the
// export fails.
func (x *exportJob) dump() error {
	if !x.o.PreCheckpoint && !x.o.WithPrevious && !x.streaming {
		th := startTailHasher(x.imgDir)
		x.th = th
		x.held.push("stop summing the pages", func() error { th.stop(); return nil })
	}
	err := x.dumpJob.dump()
	if err == nil {
		x.heldFrozen()
	}
	if x.streaming {
		if serr := x.endStream(err == nil); err == nil && serr != nil {
			// The dump went on to its end (the streams drain what the
			// archive no longer takes): the container is frozen, as
			// it was, and its undo thaws it.
			_ = fsutil.RemoveAll(x.imgDir)
			return serr
		}
	}
	if x.th != nil {
		// It reads the rest while the archive is written.
		x.th.end()
	}
	if err != nil {
		// If runc failed oddly (killed, or no exit status), CRIU may still
		// run and re-freeze the container when it ends: the watchdog thaws
		// it after that. A runc that exited with a status waited for its
		// CRIU: then the watchdog must not take the container's lock again
		// (the next operation would find it busy).
		var xe *ExitError
		if !errors.As(err, &xe) || xe.Killed != "" || xe.Code < 0 {
			x.wd.dumpFailed()
		}
		return err
	}
	if !x.stop {
		imgDir := x.imgDir
		x.undo.push("remove the dump's images", func() error { return fsutil.RemoveAll(imgDir) })
		if !x.pauses {
			x.res.Frozen, x.res.freezeHook = x.df.frozen(x.work, x.res.CRIU)
			// CRIU wrote its statistics as it let the container go.
			x.ranAt = time.Now()
			if fi, err := os.Stat(filepath.Join(x.work, crit.StatsDump)); err == nil && fi.ModTime().Before(x.ranAt) {
				x.ranAt = fi.ModTime()
			}
		}
	}
	x.parent = x.step.archiveParent()
	if x.o.WithPrevious {
		x.parent = finalParent(x.c.PreCheckpoint)
	}
	x.rec = *x.c
	x.rec.PreCheckpoint = nil
	x.rec.CheckpointedAt = time.Now().UTC()
	x.rec.CheckpointTCP = x.o.TCPEstablished
	return nil
}

// release lets the container run again before the archive is written,
// or says it is stopped: a paused container's layer and volumes are
// copied as they are now, matching its memory, and it is thawed. Then
// the watchdog has nothing left to thaw.
func (x *exportJob) release() error {
	if x.streaming && !x.opts.LeaveRunning {
		// Frozen until the archive is complete (stopStreamed): the
		// layer's copy then matches it too.
		return nil
	}
	if x.pauses {
		x.j.phase("copy_layers")
		layers, err := x.e.layerMembers(x.ctx, x.c, &x.opts, x.layerDirs...)
		if err != nil {
			return fmt.Errorf("copy the container layer and volumes: %w (the container keeps running)", err)
		}
		x.layers = layers
		x.pt.done("copy_layers")
		x.ranAt = time.Now()
		if err := x.resume(); err != nil {
			return fmt.Errorf("thaw container: %w", err)
		}
		x.unpause.drop()
		x.res.Frozen = time.Since(x.frozenAt)
		x.pt.done("thaw")
	}
	x.wd.released()
	return nil
}

// recordStop records a container the dump stopped as checkpointed, with
// its images where they were dumped (restorable in place), once its old
// monitor has recorded the exit. Until the archive is renamed into
// place, a failure restores it from them (Export).
func (x *exportJob) recordStop() error {
	if !x.o.LeaveRunning {
		x.j.phase("stop")
		x.waitOldMonitor()
		c := x.c
		x.markCheckpointed(x.rec.CheckpointedAt)
		c.ImageDir = ""
		if x.imgDir != x.e.CheckpointDir(c.ID) {
			c.ImageDir = x.imgDir
		}
		if err := x.e.saveState(c); err != nil {
			return fmt.Errorf("record the checkpointed container: %w", err)
		}
		x.rb = &rollback{id: c.ID, name: c.Name, tcp: x.o.TCPEstablished, fileLocks: x.o.FileLocks}
		x.pt.done("stop")
	}
	if x.res.Frozen == 0 {
		x.res.Frozen = time.Since(x.frozenAt)
	}
	return nil
}

// fail is an export's error once the container is thawed or stopped.
func (x *exportJob) fail(what string, err error) error {
	if x.opts.Output != nil {
		return fmt.Errorf("%s: %w (the archive written to %s is incomplete)", what, err, x.abs)
	}
	return fmt.Errorf("%s: %w (nothing was written to %s)", what, err, x.abs)
}

// dedup deduplicates the dump (dump.go). It needs only the dump: it runs
// with the container thawed or stopped.
func (x *exportJob) dedup() error {
	if err := x.ctx.Err(); err != nil {
		return x.fail("export", err)
	}
	if err := x.dedupLevel(); err != nil {
		return err
	}
	if err := x.dedupFinal(); err != nil {
		return x.fail("deduplicate against the pre-checkpoint", err)
	}
	return nil
}

// gather copies the layer's changes and the volumes of a container the
// dump stopped: nothing changes them any more.
func (x *exportJob) gather() error {
	if x.o.LeaveRunning && !(x.streaming && !x.opts.LeaveRunning) || !x.wantLayers {
		return nil
	}
	x.j.phase("copy_layers")
	layers, err := x.e.layerMembers(x.ctx, x.c, &x.opts, x.layerDirs...)
	if err != nil {
		return x.fail("copy the container layer and volumes", err)
	}
	x.layers = layers
	x.pt.done("copy_layers")
	return nil
}

// write writes the archive to the temporary file (archive.go) and syncs
// it.
func (x *exportJob) write() error {
	x.j.phase("write")
	if x.streaming {
		return x.writeStreamedFile()
	}
	o := x.opts
	o.Progress = x.progress()
	a, err := x.e.writeArchive(x.ctx, &archiveJob{f: x.f, c: &x.rec, imgDir: x.imgDir, work: x.work, comp: x.comp,
		o: &o, parent: x.parent, layers: x.layers, th: x.th, hf: x.hf, logCut: x.logCut()})
	if err != nil {
		return x.fail("write archive", err)
	}
	x.archive = a
	x.pt.done("write_archive")
	if err := x.f.Sync(); err != nil {
		return x.fail("sync archive", err)
	}
	if err := x.f.Close(); err != nil {
		return x.fail("close archive", err)
	}
	if err := x.ctx.Err(); err != nil {
		return x.fail("export", err)
	}
	return nil
}

// progress is the Progress the archive is written with: the caller's,
// and under the fault tests' hook (testStopEnv) the stop point inside
// the write first.
func (x *exportJob) progress() func(int64) {
	progress := x.opts.Progress
	if os.Getenv(testStopEnv) == "" {
		return progress
	}
	once := false
	return func(n int64) {
		if !once {
			once = true
			x.j.running("writing")
		}
		if progress != nil {
			progress(n)
		}
	}
}

// commit renames the archive onto the target and syncs the directory.
// From then on the archive stays, and a container the dump stopped stays
// checkpointed, whatever fails.
func (x *exportJob) commit() error {
	if x.opts.Output != nil {
		return nil
	}
	x.j.phase("commit")
	if err := os.Rename(x.tmp, x.abs); err != nil {
		return x.fail("rename archive", err)
	}
	x.removeTmp.drop()
	x.rb = nil
	if err := fsutil.SyncDir(x.dir); err != nil {
		return fmt.Errorf("sync %s: %w (the archive %s is complete)", x.dir, err, x.abs)
	}
	x.pt.done("commit")
	return nil
}

// record records the export in the container's record (dump.go's save):
// when it was checkpointed, a pre-checkpoint's new level with its
// archive. The images of a container that runs on are in the archive:
// they are removed before the page cache writes them to disk.
func (x *exportJob) record() error {
	x.j.phase("record")
	if x.o.LeaveRunning {
		x.c.CheckpointedAt, x.c.CheckpointTCP = x.rec.CheckpointedAt, x.rec.CheckpointTCP
	}
	var level *PreCheckpointRecord
	if x.o.PreCheckpoint {
		level = &PreCheckpointRecord{
			Manifest: x.archive.digest, Images: format.ImagesDigest(x.archive.manifest.Members, format.PreCheckpointDir),
			At: x.rec.CheckpointedAt, Method: x.method,
		}
	}
	if x.o.LeaveRunning && !x.o.PreCheckpoint && !x.o.WithPrevious {
		_ = fsutil.RemoveAll(x.imgDir)
	}
	if err := x.save(level); err != nil {
		return fmt.Errorf("%w (the archive %s is complete)", err, x.abs)
	}
	x.pt.done("save_state")
	return nil
}
