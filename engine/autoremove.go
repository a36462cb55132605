package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// engineConfig is what a monitor needs of its [Engine] to remove its
// container (run --rm).
type engineConfig struct {
	Root          string `json:"root"`
	StorageRoot   string `json:"storage_root,omitempty"`
	RunRoot       string `json:"run_root,omitempty"`
	RuntimePath   string `json:"runtime_path,omitempty"`
	StorageDriver string `json:"storage_driver,omitempty"`
	TmpDir        string `json:"tmp_dir,omitempty"`
}

func (e *Engine) config() *engineConfig {
	return &engineConfig{
		Root: e.root(), StorageRoot: e.StorageRoot, RunRoot: e.RunRoot,
		RuntimePath: e.runtimePath(), StorageDriver: e.StorageDriver, TmpDir: e.TmpDir,
	}
}

// autoRemoveWait bounds how long a monitor waits for the operation holding
// its exited container's lock (an export that stopped it) before it gives
// up removing it.
const autoRemoveWait = time.Hour

// autoRemove removes the exited container of a run --rm, as its monitor's
// last act: once the attached client (if any) has let go of the hold pipe,
// under the container's lock, if the container exited under this monitor
// or an export stopped it (podman removes such a container after its
// export too). A container restored meanwhile has a new monitor that
// removes it in turn.
func autoRemove(cfg *monitorConfig) {
	if cfg.hold != nil {
		_, _ = io.Copy(io.Discard, cfg.hold)
		_ = cfg.hold.Close()
	}
	ac := cfg.AutoRemove
	e := &Engine{Root: ac.Root, StorageRoot: ac.StorageRoot, RunRoot: ac.RunRoot,
		RuntimePath: ac.RuntimePath, StorageDriver: ac.StorageDriver, TmpDir: ac.TmpDir}
	defer e.Close()
	err := removeExited(context.Background(), e, cfg.ID, os.Getpid())
	if err != nil && !errors.Is(err, ErrUnknownContainer) {
		fmt.Fprintf(os.Stderr, "%s ckpt monitor %s: remove (run --rm): %v\n", time.Now().UTC().Format(time.RFC3339), cfg.ID, err)
	}
}

// removeExited removes container id if it exited under monitor monitorPID
// or is checkpointed, waiting up to autoRemoveWait while another operation
// holds its lock.
func removeExited(ctx context.Context, e *Engine, id string, monitorPID int) error {
	deadline := time.Now().Add(autoRemoveWait)
	for {
		c, l, err := e.lock(ctx, id, "rm (run --rm)")
		if errors.Is(err, ErrBusy) && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		if err != nil {
			return err
		}
		defer l.Unlock()
		if (c.Status == StatusExited && c.MonitorPID == monitorPID) || c.Status == StatusCheckpointed {
			return e.removeArtifacts(c)
		}
		return nil
	}
}
