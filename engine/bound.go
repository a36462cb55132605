package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ckpt/ckpt/format"
)

// Defaults of [CRIULimits].
const (
	// DefaultCRIUTimeout is the time every `runc checkpoint` and `runc
	// restore` gets, whatever its size.
	DefaultCRIUTimeout = 2 * time.Minute
	// DefaultCRIUTimeoutPerGiB is the time added per GiB of work: of CRIU
	// images a restore reads, of container memory a dump writes.
	DefaultCRIUTimeoutPerGiB = time.Minute
	// DefaultCRIUMaxLog is the size CRIU's dump.log or restore.log may
	// reach before runc and CRIU are killed. A normal log is a few MiB at
	// most; CRIU looping over a corrupt image logs without end.
	DefaultCRIUMaxLog = 256 << 20
)

// CRIULimits bound each run of `runc checkpoint` and `runc restore`, and
// the CRIU under it: past a limit the engine kills their process group
// (SIGKILL) and the operation fails with an [*ExitError] wrapping
// [ErrTimeout] or [ErrLogLimit]. The zero value means the defaults.
type CRIULimits struct {
	// Timeout is the time every run gets. Default DefaultCRIUTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// TimeoutPerGiB is added per GiB of work: the size of the CRIU images
	// a restore reads (with the pre-checkpoints they depend on), the
	// memory of the container a dump writes. Default
	// DefaultCRIUTimeoutPerGiB.
	TimeoutPerGiB time.Duration `json:"timeout_per_gib,omitempty"`
	// MaxLog is the size dump.log or restore.log may reach. CRIU cannot
	// be told to stop logging, and limiting its file size would also cut
	// the images it writes, so the log is watched instead. Default
	// DefaultCRIUMaxLog.
	MaxLog int64 `json:"max_log,omitempty"`
}

// timeout returns the time limit of a run doing work bytes.
func (l CRIULimits) timeout(work int64) time.Duration {
	base, per := l.Timeout, l.TimeoutPerGiB
	if base <= 0 {
		base = DefaultCRIUTimeout
	}
	if per <= 0 {
		per = DefaultCRIUTimeoutPerGiB
	}
	if work < 0 {
		work = 0
	}
	return base + time.Duration(float64(per)*float64(work)/(1<<30))
}

func (l CRIULimits) maxLog() int64 {
	if l.MaxLog <= 0 {
		return DefaultCRIUMaxLog
	}
	return l.MaxLog
}

// bounds is what runBounded enforces on one run.
type bounds struct {
	// timeout is the time limit (0: none).
	timeout time.Duration
	// work is the bytes the timeout was computed for (for the message).
	work int64
	// log is the file watched (""; none) and maxLog its limit.
	log    string
	maxLog int64
	// cancel, if set, kills the run when ctx is done; otherwise a
	// cancellation waits for the run to end.
	cancel bool
	// hint is what a log outgrowing its limit means (for the message).
	hint string
}

// criuBounds returns the bounds of a CRIU run of work bytes logging to log.
func (e *Engine) criuBounds(work int64, log string) bounds {
	return bounds{timeout: e.CRIULimits.timeout(work), work: work, log: log, maxLog: e.CRIULimits.maxLog()}
}

// boundPoll is how often runBounded looks at the clock and the log.
const boundPoll = 50 * time.Millisecond

// runBounded runs cmd in a process group of its own and kills the whole
// group (runc, CRIU and what CRIU forked so far) with SIGKILL when the
// timeout passes, the log outgrows maxLog, or, with b.cancel, ctx is
// done. started, if set, is called once cmd runs. It returns why it
// killed ("" if it did not), the message saying so, and cmd's error.
func runBounded(ctx context.Context, cmd *exec.Cmd, b bounds, started func()) (killed, detail string, err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	// CRIU holds runc's stdout and stderr too: Wait must not hang on them.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", "", err
	}
	if started != nil {
		started()
	}
	pgid := cmd.Process.Pid
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(boundPoll)
		defer tick.Stop()
		var ctxDone <-chan struct{}
		if b.cancel {
			ctxDone = ctx.Done()
		}
		for {
			select {
			case <-done:
				return
			case <-ctxDone:
				killed, detail = killedCancel, "interrupted ("+context.Cause(ctx).Error()+")"
			case <-tick.C:
				killed, detail = b.check(time.Since(start))
			}
			if killed != "" {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	// The watcher has set killed and detail, if it killed, once stopped.
	<-stopped
	if killed != "" {
		// Whatever of the group outlived its leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	return killed, detail, err
}

// check returns why a run that has taken elapsed must be killed, if it must.
func (b bounds) check(elapsed time.Duration) (why, msg string) {
	if b.timeout > 0 && elapsed > b.timeout {
		return killedTimeout, fmt.Sprintf("it ran past its time limit of %s for %s of work (if the host is only slow, raise --criu-timeout or --criu-timeout-per-gib)",
			b.timeout.Round(time.Second), formatBytes(b.work))
	}
	if b.log != "" && b.maxLog > 0 {
		if fi, err := os.Stat(b.log); err == nil && fi.Size() > b.maxLog {
			msg := fmt.Sprintf("CRIU's log grew past its limit of %s (--criu-max-log): CRIU was looping", formatBytes(b.maxLog))
			if b.hint != "" {
				msg += ", " + b.hint
			}
			return killedLog, msg
		}
	}
	return "", ""
}

// formatBytes writes n in the largest binary unit that keeps it >= 1.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// imagesSize returns the bytes of the CRIU images in dir and in the
// parent directories its `parent` links lead to (pre-checkpoints), at most
// format.MaxParentDepth of them: what a restore reads.
func imagesSize(dir string) int64 {
	var total int64
	for depth := 0; depth <= format.MaxParentDepth && dir != ""; depth++ {
		ents, err := os.ReadDir(dir)
		if err != nil {
			break
		}
		next := ""
		for _, d := range ents {
			if d.Name() == "parent" && d.Type()&os.ModeSymlink != 0 {
				if t, err := os.Readlink(filepath.Join(dir, "parent")); err == nil && !filepath.IsAbs(t) {
					next = filepath.Join(dir, t)
				}
				continue
			}
			if !d.Type().IsRegular() {
				continue
			}
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		dir = next
	}
	return total
}

// killedError returns the *ExitError of a run killed for why.
func killedError(tool string, code int, logPath, why, detail string) *ExitError {
	x := &ExitError{Tool: tool, Code: code, LogPath: existing(logPath), Killed: why, Detail: detail}
	if x.LogPath != "" {
		x.LogTail = logTail(x.LogPath, 3)
	}
	return x
}

// existing returns path if there is a file there, else "": an error
// never names a log that is not there.
func existing(path string) string {
	if path == "" {
		return ""
	}
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// isExit reports whether err is a process' exit status (not a failure to
// start it).
func isExit(err error) (*exec.ExitError, bool) {
	var ee *exec.ExitError
	ok := errors.As(err, &ee)
	return ee, ok
}
