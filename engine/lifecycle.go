package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
)

// Start starts a created or exited container: a new monitor runs its init
// process afresh from its bundle (the same spec) in its container layer,
// as it was left; podman's `start` of a stopped container. A running
// container is left alone. A checkpointed one is refused: starting it
// afresh would discard its checkpoint, which [Engine.Restore] resumes. If
// starting fails the container stays as it was.
func (e *Engine) Start(ctx context.Context, ref string) (_ *Container, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "start %s", ref)
		}
	}()
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(e.runtimePath()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntimeMissing, err)
	}
	c, l, err := e.lock(ctx, ref, "start")
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	return e.startLocked(ctx, c, l)
}

// Restart stops a running container (as [Engine.Stop] does, with
// timeout) and starts it again ([Engine.Start]); a created or exited
// container is only started.
func (e *Engine) Restart(ctx context.Context, ref string, timeout time.Duration) (_ *Container, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "restart %s", ref)
		}
	}()
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(e.runtimePath()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntimeMissing, err)
	}
	c, l, err := e.lock(ctx, ref, "restart")
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if c.Status == StatusCheckpointed {
		return nil, checkpointedError(c)
	}
	if c, err = e.stopLocked(ctx, c, timeout); err != nil {
		return nil, err
	}
	return e.startLocked(ctx, c, l)
}

func checkpointedError(c *Container) error {
	return fmt.Errorf("%w: container %s is checkpointed: restore it with `ckpt restore %s` (starting it afresh would discard the checkpoint), or remove it", ErrState, c.Name, c.Name)
}

// startLocked starts c, whose lock l the caller holds, under a new
// monitor, journalled as a run (reconcileStart).
func (e *Engine) startLocked(ctx context.Context, c *Container, l *fsutil.Lock) (*Container, error) {
	switch c.Status {
	case StatusRunning:
		return c, nil
	case StatusCheckpointed:
		return nil, checkpointedError(c)
	}
	// The exit merged from the last monitor's record goes into the state
	// before that record is removed: a failed start keeps it.
	if err := e.saveState(c); err != nil {
		return nil, err
	}
	if err := e.prepareStart(c); err != nil {
		return nil, err
	}
	j, err := e.beginContainerOp(c, opRecord{Op: opRun, Phase: "start"})
	if err != nil {
		return nil, err
	}
	defer j.end()
	mc := e.runMonitorConfig(c, l, func() { j.running("starting") })
	mc.Rootfs = e.layerRoot(c)
	res, err := e.startMonitor(ctx, mc)
	if err != nil {
		return nil, fmt.Errorf("%w\n(container %s stays %s)", err, c.Name, c.Status)
	}
	endChain := c.PreCheckpoint != nil
	c.Status, c.PID, c.MonitorPID = StatusRunning, res.PID, res.MonitorPID
	c.StartedAt, c.FinishedAt, c.ExitCode = time.Now().UTC(), time.Time{}, 0
	// A fresh init's memory is not the pre-checkpoints' any more.
	c.PreCheckpoint = nil
	j.phase("record")
	if err := e.saveState(c); err != nil {
		return nil, err
	}
	if endChain {
		e.removePreChain(c.ID)
	}
	return c, nil
}

// prepareStart clears what the last run left (its exit and start records,
// runc's state of the stopped container: the ID must be free for `runc
// create`) and gives the bundle its layer mounted and its network
// namespace (both gone after a reboot), rewriting it if either changed.
func (e *Engine) prepareStart(c *Container) error {
	dir := e.containerDir(c.ID)
	for _, f := range []string{exitFile, startFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if _, err := os.Stat(runcStateDir(e.runcRoot(), c.ID)); err == nil {
		if err := e.deleteRuntime(c); err != nil {
			return fmt.Errorf("remove the last run's runtime state: %w", err)
		}
	}
	rewrite := false
	if !isMounted(c.Rootfs) {
		s, err := e.storeOpen()
		if err != nil {
			return err
		}
		rootfs, err := s.Mount(c.ID, "")
		if err != nil {
			return fmt.Errorf("mount container layer: %w", err)
		}
		rewrite = rewrite || rootfs != c.Rootfs
		c.Rootfs = rootfs
	}
	if c.NetNS != "" && !isNetns(c.NetNS) {
		_ = removeNetns(c.NetNS)
		c.NetNS = e.netnsPath(c.ID)
		if err := createNetns(c.NetNS); err != nil {
			return err
		}
		rewrite = true
	}
	if rewrite || !e.namesCRIUConfig(c) {
		return e.writeBundle(c)
	}
	return nil
}

// DefaultWaitInterval is how often [Engine.Wait] looks at the container
// when its interval is zero (podman wait's default).
const DefaultWaitInterval = 250 * time.Millisecond

// Wait blocks until the container is neither running nor created (it
// exited, was stopped, or was checkpointed) and returns its exit code
// (128+signal if killed, -1 if unknown), as `podman wait` does. It looks
// every interval (DefaultWaitInterval if zero). A container that is
// removed meanwhile is an [ErrUnknownContainer] error.
func (e *Engine) Wait(ctx context.Context, ref string, interval time.Duration) (int, error) {
	return e.WaitFor(ctx, ref, nil, interval)
}

// WaitFor waits until container ref is in one of the statuses (podman's
// wait --condition); none means Wait's: neither created nor running. It
// returns the container's exit code then (-1 if it has not exited).
func (e *Engine) WaitFor(ctx context.Context, ref string, statuses []Status, interval time.Duration) (int, error) {
	if interval <= 0 {
		interval = DefaultWaitInterval
	}
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return -1, fmt.Errorf("wait for %s: %w", ref, err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if reached(c.Status, statuses) {
			if c.Status != StatusExited && c.Status != StatusCheckpointed {
				return -1, nil
			}
			return c.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("wait for %s: %w", ref, ctx.Err())
		case <-t.C:
		}
		if c, err = e.loadState(c.ID); err != nil {
			return -1, fmt.Errorf("wait for %s: %w", ref, err)
		}
	}
}

func reached(s Status, statuses []Status) bool {
	if len(statuses) == 0 {
		return s != StatusRunning && s != StatusCreated
	}
	return slices.Contains(statuses, s)
}
