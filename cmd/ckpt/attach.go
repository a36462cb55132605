package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ckpt/ckpt/engine"
)

// proxiedSignals are the signals an attached run or exec forwards to the
// container (podman's --sig-proxy forwards all but SIGCHLD, SIGPIPE,
// SIGURG and SIGSTOP; ckpt leaves job control and SIGWINCH, which have
// no meaning without a terminal, to itself).
var proxiedSignals = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM,
}

// catchSignals starts catching proxiedSignals, buffered, until stop.
func catchSignals() (sigs chan os.Signal, stop func()) {
	sigs = make(chan os.Signal, 16)
	signal.Notify(sigs, proxiedSignals...)
	return sigs, func() { signal.Stop(sigs) }
}

// attachOptions are run's flags for an attached container.
type attachOptions struct {
	interactive, sigProxy, tty bool
}

// runAttached runs the container of o from image attached: its output
// copied here until it exits, this command's stdin piped to it with -i,
// signals forwarded to it unless --sig-proxy=false, removed at the end
// with --rm. It returns the container's exit status.
func runAttached(ctx context.Context, env *cmdEnv, image string, o *engine.RunOptions, ao attachOptions) int {
	var stdinW *os.File
	if ao.interactive {
		r, w, err := os.Pipe()
		if err != nil {
			return env.fail(fmt.Errorf("create stdin pipe: %w", err))
		}
		o.Stdin, stdinW = r, w
		defer r.Close()
	}
	if o.Remove {
		// The monitor removes the container once this command has read
		// its exit status and closed the pipe, or has gone.
		r, w, err := os.Pipe()
		if err != nil {
			return env.fail(fmt.Errorf("create pipe: %w", err))
		}
		o.Hold = r
		defer r.Close()
		defer w.Close()
	}
	var term *attachedTerminal
	if ao.tty {
		var err error
		if term, err = newAttachedTerminal(o); err != nil {
			return env.fail(err)
		}
		defer term.close()
	}
	var sigs chan os.Signal
	if ao.sigProxy {
		// Caught before the start, forwarded once the container runs (a
		// signal during the start cancels ctx, and with it the start).
		var stop func()
		sigs, stop = catchSignals()
		defer stop()
	}
	ctr, err := env.eng.Run(ctx, image, o)
	term.started()
	if err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return env.fail(err)
	}
	if ao.interactive {
		term.raw()
	}
	if stdinW != nil {
		go func() {
			_, _ = io.Copy(stdinW, os.Stdin)
			stdinW.Close()
		}()
	}
	actx := ctx
	if ao.sigProxy {
		// Signals go to the container now; this command ends when it does.
		actx = context.WithoutCancel(ctx)
		done := make(chan struct{})
		defer close(done)
		go forwardSignals(actx, env, ctr, sigs, done)
	}
	if term != nil {
		// The terminal's output comes straight from the monitor (a log
		// reader would wait for whole lines, and a prompt has none).
		term.copyOut(env.stdout)
	} else if err := env.eng.Logs(actx, ctr.ID, env.stdout, true); err != nil {
		return env.fail(err)
	}
	if actx.Err() != nil {
		if o.Remove {
			env.errorf("interrupted; container %s keeps running, and is removed when it exits", ctr.Name)
		} else {
			env.errorf("interrupted; container %s keeps running", ctr.Name)
		}
		return exitFailure
	}
	return attachedExit(actx, env, ctr, o.Remove)
}

// attachedExit returns the exit status of an attached container that no
// longer runs, removing it first with --rm.
func attachedExit(ctx context.Context, env *cmdEnv, ctr *engine.Container, remove bool) int {
	x, err := env.eng.Settled(ctx, ctr.ID)
	if err != nil {
		return env.fail(err)
	}
	switch x.Status {
	case engine.StatusExited:
	case engine.StatusCheckpointed:
		env.errorf("container %s was checkpointed; `ckpt restore %s` resumes it (not attached)", x.Name, x.Name)
		return exitOK
	default:
		return exitOK
	}
	if remove {
		if err := env.eng.Remove(ctx, x.ID, false); err != nil && !errors.Is(err, engine.ErrUnknownContainer) {
			env.fail(err)
		}
	}
	if x.ExitCode < 0 {
		return exitFailure
	}
	return x.ExitCode
}

// forwardSignals sends the signals caught in sigs to container ctr until
// done. If the container is still running after a second signal, it says
// why once: a PID 1 ignores the signals it has no handler for.
func forwardSignals(ctx context.Context, env *cmdEnv, ctr *engine.Container, sigs <-chan os.Signal, done <-chan struct{}) {
	n := 0
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			sig, _ := s.(syscall.Signal)
			if err := env.eng.Kill(ctx, ctr.ID, sig); err != nil {
				if errors.Is(err, engine.ErrState) || errors.Is(err, engine.ErrUnknownContainer) {
					continue // it has stopped: the attached command ends
				}
				env.errorf("forward %v to container %s: %v", sig, ctr.Name, err)
				continue
			}
			if n++; n == 2 && stillRunning(ctx, env, ctr) {
				env.errorf("forwarded %v to container %s; a container's first process ignores signals it has no handler for: `ckpt stop %s` stops it", sig, ctr.Name, ctr.Name)
			}
		}
	}
}

func stillRunning(ctx context.Context, env *cmdEnv, ctr *engine.Container) bool {
	x, err := env.eng.Inspect(ctx, ctr.ID)
	return err == nil && x.Status == engine.StatusRunning
}
