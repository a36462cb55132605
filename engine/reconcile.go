package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/volumes"
)

// reconcile reconciles container id's operation record if it has one and
// its lock is free (journal.go); otherwise, or without root, it leaves it.
// An error leaves the record for the next command.
func (e *Engine) reconcile(id string) {
	dir := e.containerDir(id)
	if _, err := os.Lstat(filepath.Join(dir, opFile)); err != nil || os.Geteuid() != 0 {
		return
	}
	l, err := fsutil.TryLock(filepath.Join(dir, lockFile), "reconcile")
	if err != nil {
		return // running, or finishing in a child of the killed process
	}
	defer l.Unlock()
	_ = e.reconcileLocked(id)
}

// reconcileLocked finishes or undoes the operation recorded in container
// id's op.json, whose lock the caller holds (so its process is gone), and
// removes the record.
func (e *Engine) reconcileLocked(id string) error {
	dir := e.containerDir(id)
	path := filepath.Join(dir, opFile)
	j, err := readOpRecord(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		var c *Container
		if c, err = e.loadState(id); err == nil {
			switch j.Op {
			case opCheckpoint, opExport:
				err = e.reconcileDump(c, j)
			case opRestore, opRun:
				err = e.reconcileStart(c, j)
			}
			if err != nil {
				return fmt.Errorf("finish the killed %s: %w", j.owner(), err)
			}
		} else if !errors.Is(err, ErrUnknownContainer) {
			return err
		}
	}
	// A record that does not decode was not written by ckpt (records
	// are replaced atomically): nothing can be done with it.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	removeTemps(path)
	_ = fsutil.SyncDir(dir)
	return nil
}

// reconcileDump reconciles a checkpoint or export whose process was
// killed. Whatever the phase:
//
//   - the temporary archive, the layer copies, the CPU probe's directory
//     and the CRIU configuration are removed;
//   - a container recorded as checkpointed (an export killed after the
//     stop) stays so, with its images: `ckpt restore` restores it;
//   - a container whose init still runs was not stopped (the dump had not
//     begun, failed, or left it running): its cgroup is thawed, in case
//     ckpt froze or paused it, and the dump's images are removed unless
//     the operation recorded its result (-R, -P: then it is finished as
//     it would have been);
//   - a container CRIU stopped at the end of a complete dump (no -R) is
//     recorded checkpointed with the images of that dump;
//   - otherwise it exited by itself, and the dump's images are removed.
func (e *Engine) reconcileDump(c *Container, j *opRecord) error {
	dir := e.containerDir(c.ID)
	if j.Archive != "" {
		_ = os.Remove(j.Archive)
	}
	for _, d := range j.LayerDirs {
		_ = os.RemoveAll(d)
	}
	probes, _ := filepath.Glob(filepath.Join(dir, "cpuinfo-*"))
	for _, d := range probes {
		_ = os.RemoveAll(d)
	}
	_ = os.Remove(e.criuConfigPath(c.ID))
	committed := !c.CheckpointedAt.Equal(j.CheckpointedAt)
	switch {
	case c.Status == StatusCheckpointed:
		return nil
	case c.Status == StatusRunning && c.PID > 0 && alive(c.PID):
		if f, err := freezerOf(c.PID); err == nil {
			if err := f.thaw(); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("thaw container: %w", err)
			}
		}
		if committed {
			e.finishLiveDump(c, j)
		} else {
			e.discardDump(c, j)
		}
		return nil
	case j.Stop && dumpComplete(j.ImageDir, e.workDir(c.ID)):
		// As the export does: the old monitor drains the output first.
		for deadline := time.Now().Add(10 * time.Second); c.MonitorPID > 0 && alive(c.MonitorPID) && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		at := time.Now().UTC()
		if fi, err := os.Stat(filepath.Join(j.ImageDir, "inventory.img")); err == nil {
			at = fi.ModTime().UTC()
		}
		c.Status, c.PID, c.MonitorPID, c.FinishedAt, c.CheckpointedAt = StatusCheckpointed, 0, 0, at, at
		c.CheckpointTCP = j.TCP
		switch {
		case j.ImageDir != e.CheckpointDir(c.ID):
			c.ImageDir = j.ImageDir
		case c.ImageDir != "":
			// Images an earlier export left on a tmpfs are superseded.
			_ = e.removeTransient(c.ID)
			c.ImageDir = ""
		}
		return e.saveState(c)
	}
	e.discardDump(c, j)
	return e.saveState(c)
}

// dumpComplete reports whether CRIU finished a dump into imgDir: it
// writes the inventory at the end of the dump and its statistics (into
// work, where runc has them go) only after a dump that succeeded.
func dumpComplete(imgDir, work string) bool {
	if imgDir == "" {
		return false
	}
	if _, err := os.Stat(filepath.Join(imgDir, "inventory.img")); err != nil {
		return false
	}
	for _, d := range []string{work, imgDir} {
		if _, err := os.Stat(filepath.Join(d, crit.StatsDump)); err == nil {
			return true
		}
	}
	return false
}

// discardDump removes the images of a dump that was not recorded, and
// puts a pre-checkpoint moved aside back.
func (e *Engine) discardDump(c *Container, j *opRecord) {
	if j.PreCheckpoint {
		e.rollbackPreCheckpoint(c)
		return
	}
	if j.ImageDir != "" {
		_ = os.RemoveAll(j.ImageDir)
		e.removeEmptyTransient(filepath.Dir(j.ImageDir))
	}
}

// finishLiveDump does what a dump that left the container running does
// after it recorded its result: an export removes the images its archive
// holds (the archive was complete before the record), a new
// pre-checkpoint chain drops the previous one; in place, -R keeps them.
func (e *Engine) finishLiveDump(c *Container, j *opRecord) {
	switch {
	case j.PreCheckpoint:
		if c.PreCheckpoint != nil && c.PreCheckpoint.Parent == nil {
			e.removePreLevels(c.ID)
		}
	case j.Op == opExport && j.ImageDir != "":
		_ = os.RemoveAll(j.ImageDir)
		e.removeEmptyTransient(filepath.Dir(j.ImageDir))
	}
}

// rollbackPreCheckpoint does what preStep.rollback does for a -P whose
// process was killed before it recorded the new level: the new images are
// removed and the previous latest level, if it was moved, is put back.
func (e *Engine) rollbackPreCheckpoint(c *Container) {
	preDir := e.PreCheckpointDir(c.ID)
	aside := e.preAsideDir(c.ID)
	if _, err := os.Lstat(aside); err != nil && c.PreCheckpoint != nil {
		aside = e.preLevelDir(c.ID, c.PreCheckpoint.depth()+1)
	}
	if _, err := os.Lstat(aside); err == nil {
		_ = os.RemoveAll(preDir)
		_ = os.Rename(aside, preDir)
		return
	}
	if c.PreCheckpoint == nil {
		_ = os.RemoveAll(preDir)
	}
	// Otherwise nothing was moved yet: preDir is the recorded level.
}

// reconcileStart reconciles a restore or run whose process was killed,
// from what the monitor recorded in start.json before it let go of the
// lock. A container the monitor started is recorded running under that
// monitor (a restore is then finished as Restore finishes it: images
// removed unless --keep); otherwise it stays as it was, created or
// checkpointed, and whatever runc may have left of it is deleted.
func (e *Engine) reconcileStart(c *Container, j *opRecord) error {
	dir := e.containerDir(c.ID)
	_ = os.Remove(e.criuConfigPath(c.ID))
	s, ok := readStartRecord(dir)
	// (The operation removed any earlier record before it began.)
	if !ok || s.PID <= 0 || s.Error != "" {
		if !ok {
			// The monitor never recorded an outcome: it did not start, or
			// died with runc; no container of this ID may run unrecorded.
			_, _ = runcTool(context.Background(), e.runc("").deleteArgs(c.ID, true), "")
		}
		return nil
	}
	if c.MonitorPID != s.MonitorPID {
		c.Status, c.PID, c.MonitorPID = StatusRunning, s.PID, s.MonitorPID
		c.StartedAt, c.FinishedAt, c.ExitCode = s.At, time.Time{}, 0
		if j.Op == opRestore {
			c.RestoredAt = s.At
			if j.Transient && !j.Keep {
				c.ImageDir = ""
			}
		}
		if err := e.saveState(c); err != nil {
			return err
		}
	}
	if j.Op == opRestore && !j.Keep {
		switch {
		case j.Transient:
			_ = e.removeTransient(c.ID)
		case j.ImageDir == e.CheckpointDir(c.ID):
			_ = os.RemoveAll(j.ImageDir)
		}
		_ = os.Remove(filepath.Join(e.workDir(c.ID), "restore.log"))
		_ = os.Remove(filepath.Join(e.workDir(c.ID), crit.StatsRestore))
	}
	return nil
}

// importRecordPath is where an import staged in staging keeps its
// record: under Root/import even when it stages on a tmpfs, so that the
// record outlives a reboot that clears the tmpfs.
func (e *Engine) importRecordPath(staging string) string {
	return filepath.Join(e.root(), "import", filepath.Base(staging)+".json")
}

// reconcileImports reconciles the records of imports whose process was
// killed (their staging lock is free); without root it does nothing.
func (e *Engine) reconcileImports() {
	if os.Geteuid() != 0 {
		return
	}
	paths, _ := filepath.Glob(filepath.Join(e.root(), "import", "staging-*.json"))
	for _, p := range paths {
		_ = e.reconcileImport(p)
	}
}

// reconcileImport undoes an import whose process was killed, as a failed
// import undoes itself: unless its container was restored (its restore
// is reconciled first: a container the monitor restored runs, and the
// import counts as done), the container (record, storage layer, netns,
// bundle) and the volumes the import created are removed. The staging
// directory and the record go in any case. A container or staging lock
// still held (a monitor still restoring from the staging directory)
// leaves everything to a later command ([errReconcileBusy]).
func (e *Engine) reconcileImport(path string) error {
	j, err := readOpRecord(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || j.Op != opImport || e.importRecordPath(j.Staging) != path {
		return os.Remove(path) // not ckpt's: staging directories are swept by newStaging
	}
	sl, err := fsutil.TryLock(j.Staging+".lock", "reconcile import")
	switch {
	case errors.Is(err, fsutil.ErrLocked):
		return errReconcileBusy
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	}
	defer sl.Unlock()
	kept := false
	if j.Container != "" {
		if kept, err = e.reconcileImported(j.Container); err != nil {
			return err
		}
	}
	if !kept {
		st := e.volumeStore()
		for _, v := range j.Volumes {
			// A volume some container uses now is kept.
			if err := st.Remove(context.Background(), v, false); err != nil && !errors.Is(err, volumes.ErrNotFound) && !errors.Is(err, volumes.ErrInUse) {
				return err
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	removeTemps(path)
	_ = os.RemoveAll(j.Staging)
	_ = os.Remove(j.Staging + ".lock")
	e.removeEmptyTransient(filepath.Dir(j.Staging))
	return nil
}

// reconcileImported reconciles the container a killed import created and
// removes it unless it was restored; kept reports that it stays.
func (e *Engine) reconcileImported(id string) (kept bool, err error) {
	dir := e.containerDir(id)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	l, err := fsutil.TryLock(filepath.Join(dir, lockFile), "reconcile import")
	if err != nil {
		if errors.Is(err, fsutil.ErrLocked) {
			return false, errReconcileBusy
		}
		return false, err
	}
	defer l.Unlock()
	if err := e.reconcileLocked(id); err != nil {
		return false, err
	}
	if c, err := e.loadState(id); err == nil && c.Status != StatusCreated {
		return true, nil
	}
	return false, e.removeArtifacts(id)
}
