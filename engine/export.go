package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/rootfs"
	"github.com/ckpt/ckpt/volumes"
	"golang.org/x/sys/unix"
)

// Version is the engine version recorded in the manifests of exported
// archives.
const Version = "0.1.0"

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

// watchdog is a detached shell that waits for its stdin to close, then
// thaws the container and removes the temporary archive, if still there.
type watchdog struct {
	cmd *exec.Cmd
	w   *os.File
}

func (e *Engine) startWatchdog(id, tmp string) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	defer r.Close()
	resume := append(e.runc("").base("resume"), id)
	if fl, err := exec.LookPath("flock"); err == nil {
		// With the container's lock: runc holds it while a dump this
		// process started goes on (journal.go), so the thaw comes after
		// the dump (at most ten minutes later), and a later operation's
		// freeze is not the watchdog's to undo.
		resume = append([]string{fl, "-w", "600", filepath.Join(e.containerDir(id), lockFile)}, resume...)
	}
	// If this process dies, it thaws once (after the dump, which CRIU
	// ends by putting the freezer back as it found it). If runc failed
	// oddly ("unfinished"), CRIU may still run and re-freeze the container
	// when it ends: then it thaws again until no CRIU runs (at most ten
	// minutes).
	// Once told "released" (the container was thawed or stopped) it only
	// removes the temporary file: a later thaw could only collide with
	// the next operation on the container.
	script := `x=; while read -r l; do x=$l; [ "$l" = done ] && break; done; rm -f -- "$0"
case $x in done|released) exit 0;; esac; "$@" >/dev/null 2>&1
[ "$x" = unfinished ] || exit 0; i=0
while [ $i -lt 600 ] && pgrep -x criu >/dev/null 2>&1; do sleep 1; "$@" >/dev/null 2>&1; i=$((i+1)); done`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, tmp}, resume...)...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	return &watchdog{cmd: cmd, w: w}, nil
}

// released tells the watchdog that the container was thawed or stopped:
// it has nothing to thaw any more.
func (wd *watchdog) released() {
	_, _ = wd.w.WriteString("released\n")
}

// stop tells the watchdog that this process finished, and reaps it in the
// background. With clean the watchdog exits at once (this process thawed
// the container); otherwise it thaws it again until no CRIU runs.
func (wd *watchdog) stop(clean bool) {
	if clean {
		_, _ = wd.w.WriteString("done\n")
	} else {
		_, _ = wd.w.WriteString("unfinished\n")
	}
	_ = wd.w.Close()
	go func() { _ = wd.cmd.Wait() }()
}

// countingWriter counts bytes and reports them. With f set (the
// archive's file, written from its start) it has the kernel start writing
// each window of writebackWindow bytes to disk as soon as it is written
// (sync_file_range), so the disk works while the rest is compressed and
// the final fsync finds little left to write.
type countingWriter struct {
	w        io.Writer
	f        *os.File
	n        int64
	started  int64 // bytes whose write-back was started
	progress func(int64)
	ctx      context.Context
}

const writebackWindow = 8 << 20

// WriteAt writes to the file (the manifest over its reservation).
func (c *countingWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.WriteAt(p, off)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.f != nil && c.n-c.started >= writebackWindow {
		// Only a hint: an error here shows at the fsync.
		_ = unix.SyncFileRange(int(c.f.Fd()), c.started, c.n-c.started, unix.SYNC_FILE_RANGE_WRITE)
		c.started = c.n
	}
	if c.progress != nil {
		c.progress(c.n)
	}
	return n, err
}

// writeArchive writes the v1 archive of container c to f, with the images
// of imgDir under pre-checkpoint/ (o.PreCheckpoint) or checkpoint/, and
// returns its size, manifest and manifest digest. The container layer's
// changes and the volumes are layers, copied earlier; th, if not nil, is
// summing the pages images since the dump began (prehashed counts those
// whose sums it gives); hf is the host's description.
func (e *Engine) writeArchive(ctx context.Context, f *os.File, c *Container, imgDir, work string, comp format.Compression, o *ExportOptions, parent *format.Parent, pt *phaseTimer, layers []layerMember, th *tailHasher, prehashed *int, hf *hostFacts) (int64, *format.Manifest, format.Digest, error) {
	host, cpuinfo, err := hf.wait()
	if err != nil {
		return 0, nil, "", err
	}
	header := format.Manifest{
		Created:   c.CheckpointedAt.Truncate(time.Second),
		Engine:    format.Engine{Name: "ckpt", Version: Version},
		Container: format.Container{Name: c.Name, ID: c.ID, Image: c.Image, ImageID: c.ImageID, Runtime: filepath.Base(e.runtimePath())},
		Host:      host,
		Options: format.Options{
			LeaveRunning: o.LeaveRunning, TCPEstablished: o.TCPEstablished, FileLocks: o.FileLocks,
			IgnoreRootfs: o.IgnoreRootfs, IgnoreVolumes: o.IgnoreVolumes, Compression: string(comp),
			PreCheckpoint: o.PreCheckpoint, WithPrevious: o.WithPrevious,
		},
		Parent: parent,
	}
	dirName := format.CheckpointDir
	if o.PreCheckpoint {
		dirName = format.PreCheckpointDir
	}
	// NewFileWriter writes the manifest over its reservation at the end,
	// reading each member once. O_DIRECT where the file system has it;
	// otherwise unbuffered (the writer writes whole frames) through the
	// page cache.
	var file format.File
	var written func() (int64, error)
	if dw, err := fileio.NewDirectWriter(ctx, f, o.Progress); err == nil {
		defer dw.Release()
		file, written = dw, func() (int64, error) { return dw.Written(), dw.Finish() }
	} else {
		cw := &countingWriter{w: f, f: f, progress: o.Progress, ctx: ctx}
		file, written = cw, func() (int64, error) { return cw.n, nil }
	}
	zw := format.NewFileWriter(file, header, &format.WriterOptions{Compression: comp})
	if err := zw.AddDir(dirName, imgDir); err != nil {
		return 0, nil, "", err
	}
	cfg, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return 0, nil, "", err
	}
	if err := zw.AddBytes(format.ConfigName, cfg); err != nil {
		return 0, nil, "", err
	}
	if err := zw.AddFile(format.SpecName, filepath.Join(e.containerDir(c.ID), "config.json")); err != nil {
		return 0, nil, "", err
	}
	if _, err := os.Stat(filepath.Join(work, crit.StatsDump)); err == nil {
		if err := zw.AddFile(format.StatsName, filepath.Join(work, crit.StatsDump)); err != nil {
			return 0, nil, "", err
		}
	}
	if err := zw.AddFile(format.CPUInfoName, cpuinfo); err != nil {
		return 0, nil, "", err
	}
	if log, err := readTail(filepath.Join(e.containerDir(c.ID), logFile), 16<<20); err == nil {
		if err := zw.AddBytes(format.ContainerLogName, log); err != nil {
			return 0, nil, "", err
		}
	}
	if th != nil {
		// The writer asks for each sum after it copied the image, by
		// when the hasher has caught up with the end of the dump.
		pages, _ := filepath.Glob(filepath.Join(imgDir, "pages-*.img"))
		for _, p := range pages {
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			n := filepath.Base(p)
			if err := zw.SetSumFunc(dirName+"/"+n, fi.Size(), func() (format.Sum, error) { return th.sum(n) }); err != nil {
				return 0, nil, "", err
			}
			*prehashed++
		}
	}
	for _, l := range layers {
		if err := zw.Add(l.name, l.src); err != nil {
			return 0, nil, "", err
		}
		if l.sum != nil {
			if err := zw.SetSum(l.name, *l.sum); err != nil {
				return 0, nil, "", err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return 0, nil, "", err
	}
	n, err := written()
	if err != nil {
		return 0, nil, "", err
	}
	pt.done("write_archive")
	m, md := zw.Manifest()
	return n, m, md, nil
}

// volumeStore is the engine's named volume store.
func (e *Engine) volumeStore() *volumes.Store {
	return &volumes.Store{Root: e.volumesDir(), InUse: func(name string) bool {
		// Not reconciled: a volume's user is whatever the records say
		// (and reconciling imports removes volumes through this store).
		list, _ := e.list(context.Background(), false)
		for _, c := range list {
			for _, m := range c.Mounts {
				if m.Type == "volume" && m.Name == name {
					return true
				}
			}
		}
		return false
	}}
}

// layerMember is an archive member made from the container's layer or
// volumes.
type layerMember struct {
	name string
	src  format.Source
	sum  *format.Sum // of src's content, if known
}

// layerMembers returns the members for c's container layer changes
// (rootfs-diff.tar, deleted.files; not with o.IgnoreRootfs) and named
// volumes (volumes/<name>.tar; not with o.IgnoreVolumes), each made once
// now into a file in the first of dirs that has room for it (a tmpfs
// that fills up gives way to the next), summed on the way so the archive
// writer reads it once.
func (e *Engine) layerMembers(ctx context.Context, c *Container, o *ExportOptions, dirs ...string) (ms []layerMember, err error) {
	if !o.IgnoreRootfs {
		s, err := e.storeOpen()
		if err != nil {
			return nil, err
		}
		lower, err := s.MountImage(c.ImageID, nil, "")
		if err != nil {
			return nil, fmt.Errorf("mount image %s: %w", c.Image, err)
		}
		defer func() { _, _ = s.UnmountImage(c.ImageID, false) }()
		opts := &rootfs.ChangesOptions{Skip: []string{"/proc", "/sys", "/dev"}}
		for _, m := range c.Mounts {
			opts.Skip = append(opts.Skip, m.Destination)
		}
		if s.GraphDriverName() == "overlay" {
			if sc, err := s.Container(c.ID); err == nil {
				upper := filepath.Join(e.storageRoot(), "overlay", sc.LayerID, "diff")
				if fi, err := os.Stat(upper); err == nil && fi.IsDir() {
					opts.Upper = upper
				}
			}
		}
		changes, err := rootfs.Changes(ctx, lower, c.Rootfs, opts)
		if err != nil {
			return nil, fmt.Errorf("list container layer changes: %w", err)
		}
		wo := &rootfs.WriteOptions{FIFOs: true}
		root := c.Rootfs
		ms = append(ms, layerMember{name: format.RootfsDiffName, src: format.StreamSource(func(w io.Writer) error {
			return rootfs.WriteDiff(ctx, w, root, changes, wo)
		})})
		if del := rootfs.DeletedFiles(changes); len(del) > 0 {
			var b strings.Builder
			if err := rootfs.WriteDeleted(&b, changes); err != nil {
				return nil, err
			}
			ms = append(ms, layerMember{name: format.DeletedFilesName, src: format.BytesSource([]byte(b.String()))})
		}
	}
	if !o.IgnoreVolumes {
		st := e.volumeStore()
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				ms = append(ms, layerMember{name: volumes.MemberName(m.Name), src: st.Source(ctx, m.Name)})
			}
		}
	}
	for i, m := range ms {
		var err error
		for _, dir := range dirs {
			if err = os.MkdirAll(dir, 0o700); err != nil {
				break
			}
			file := filepath.Join(dir, strconv.Itoa(i))
			var sum format.Sum
			if sum, err = copySource(file, m.src); err == nil {
				ms[i].src, ms[i].sum = format.FileSource(file), &sum
				break
			}
			_ = os.Remove(file)
			if !errors.Is(err, syscall.ENOSPC) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", m.name, err)
		}
	}
	return ms, nil
}

// copySource writes the content of src to a new file and returns its sum.
func copySource(file string, src format.Source) (_ format.Sum, err error) {
	rc, err := src.Open()
	if err != nil {
		return format.Sum{}, err
	}
	defer rc.Close()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return format.Sum{}, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	sm := format.NewSummer()
	_, err = io.CopyBuffer(io.MultiWriter(f, sm), struct{ io.Reader }{rc}, make([]byte, 1<<20))
	return sm.Sum(), err
}

// readTail returns at most the last max bytes of the file at path.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := fi.Size() - max
	if off < 0 {
		off = 0
	}
	return io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
}

// hostFacts is the host's description for a manifest (hostInfo) and its
// CPU (`criu cpuinfo dump`), found in the background while the container
// is dumped (three programs, none of which needs the container), or taken
// from the run root's cache (probeHost).
type hostFacts struct {
	done    chan struct{}
	dir     string
	host    format.Host
	cpuinfo string
	err     error
}

// probeHost starts finding the host's facts; the CPU image goes to a new
// directory in parent. They come from the run root's cache when it was
// made by the same boot with the same CRIU and runtime (hostFactsKey):
// three programs spawned while runc and CRIU start cost CRIU's dump its
// start, 0.15–0.2 s of it in 2 of 6 exports measured at 1 GiB.
func (e *Engine) probeHost(ctx context.Context, parent string) *hostFacts {
	hf := &hostFacts{done: make(chan struct{})}
	go func() {
		defer close(hf.done)
		if err := os.MkdirAll(parent, 0o700); err != nil {
			hf.err = err
			return
		}
		if hf.dir, hf.err = os.MkdirTemp(parent, "cpuinfo-"); hf.err != nil {
			return
		}
		hf.cpuinfo = filepath.Join(hf.dir, "cpuinfo.img")
		key := e.hostFactsKey()
		cache := filepath.Join(e.runRoot(), "host-facts.json")
		if host, img, ok := readHostFacts(cache, key); ok {
			if hf.err = os.WriteFile(hf.cpuinfo, img, 0o600); hf.err == nil {
				hf.host = host
				return
			}
		}
		cpu := make(chan error, 1)
		go func() {
			_, err := runTool(ctx, "criu cpuinfo dump", []string{e.criuPath(), "cpuinfo", "dump", "-D", hf.dir}, "", ErrCRIUMissing)
			cpu <- err
		}()
		hf.host, hf.err = e.hostInfo(ctx)
		if err := <-cpu; err != nil && hf.err == nil {
			hf.err = fmt.Errorf("record CPU: %w", err)
		}
		if hf.err == nil && key != "" {
			if img, err := os.ReadFile(hf.cpuinfo); err == nil {
				writeHostFacts(cache, key, hf.host, img)
			}
		}
	}()
	return hf
}

// hostFactsKey identifies what the host's facts depend on: the boot, the
// kernel, and the CRIU and runtime binaries (path, size, mtime); "" if
// any of them cannot be told.
func (e *Engine) hostFactsKey() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	key := strings.TrimSpace(string(boot)) + " " + kernelRelease()
	for _, p := range []string{e.criuPath(), e.runtimePath()} {
		path, err := exec.LookPath(p)
		if err != nil {
			return ""
		}
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		key += fmt.Sprintf(" %s:%d:%d", path, fi.Size(), fi.ModTime().UnixNano())
	}
	return key
}

// hostFactsCache is the run root's record of the host's facts.
type hostFactsCache struct {
	Key     string      `json:"key"`
	Host    format.Host `json:"host"`
	CPUInfo []byte      `json:"cpuinfo"`
}

// readHostFacts returns the facts cached in path under key.
func readHostFacts(path, key string) (format.Host, []byte, bool) {
	if key == "" {
		return format.Host{}, nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return format.Host{}, nil, false
	}
	var c hostFactsCache
	if json.Unmarshal(data, &c) != nil || c.Key != key || len(c.CPUInfo) == 0 {
		return format.Host{}, nil, false
	}
	return c.Host, c.CPUInfo, true
}

// writeHostFacts caches the facts in path under key; a failure only
// costs the next export the probes.
func writeHostFacts(path, key string, host format.Host, cpuinfo []byte) {
	data, err := json.Marshal(hostFactsCache{Key: key, Host: host, CPUInfo: cpuinfo})
	if err == nil && os.MkdirAll(filepath.Dir(path), 0o700) == nil {
		_ = fsutil.WriteFileAtomic(path, data, 0o600)
	}
}

// wait returns the host's description and the path of its CPU image.
func (hf *hostFacts) wait() (format.Host, string, error) {
	<-hf.done
	return hf.host, hf.cpuinfo, hf.err
}

// close waits for the probes and removes the CPU image.
func (hf *hostFacts) close() {
	<-hf.done
	if hf.dir != "" {
		_ = fsutil.RemoveAll(hf.dir)
	}
}

// hostInfo describes this host for a manifest.
func (e *Engine) hostInfo(ctx context.Context) (format.Host, error) {
	h := format.Host{Kernel: kernelRelease(), Arch: runtime.GOARCH}
	v, _, err := e.criuVersion(ctx)
	if err != nil {
		return h, err
	}
	h.CRIUVersion = v
	if out, err := exec.CommandContext(ctx, e.runtimePath(), "--version").Output(); err == nil {
		if first, _, _ := strings.Cut(string(out), "\n"); first != "" {
			h.RuntimeVersion = strings.TrimPrefix(strings.TrimSpace(first), "runc version ")
		}
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		h.CPU = parseCPUInfo(string(data))
	}
	return h, nil
}

// parseCPUInfo reads the first processor's vendor, model name and flags
// from /proc/cpuinfo text.
func parseCPUInfo(s string) format.CPU {
	var cpu format.CPU
	for _, line := range strings.Split(s, "\n") {
		if line == "" && cpu.Vendor != "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "vendor_id", "CPU implementer":
			if cpu.Vendor == "" {
				cpu.Vendor = v
			}
		case "model name", "CPU part":
			if cpu.Model == "" {
				cpu.Model = v
			}
		case "flags", "Features":
			if cpu.Flags == nil {
				cpu.Flags = strings.Fields(v)
				sort.Strings(cpu.Flags)
			}
		}
	}
	return cpu
}
