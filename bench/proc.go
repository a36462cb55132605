package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// usage is what one measured command cost, its own process apart from
// its children: wait4's rusage of a process includes those of the
// children it reaped (CRIU under runc under ckpt), so the process's own
// figures are read from /proc while it lives (its VmHWM) and once it is a
// zombie, before it is reaped (its CPU times).
type usage struct {
	Wall time.Duration
	// User and Sys are the process's own CPU times, CUser and CSys those
	// of the children it reaped (clock ticks: 10 ms resolution).
	User, Sys, CUser, CSys time.Duration
	// HWM is the process's own peak RSS (KiB): the last VmHWM read,
	// polled every few milliseconds (VmHWM only grows).
	HWM int64
	// MaxRSS is wait4's ru_maxrss (KiB): the largest peak of the process
	// and of each child it reaped. Children is MaxRSS where it exceeds
	// HWM (a child's, CRIU's), else 0: no child was larger.
	MaxRSS, Children int64
}

// cmdIO is a measured command's standard streams (nil: /dev/null, except
// Stderr: kept in the error).
type cmdIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// measured starts argv and returns, once it ended, what it cost.
type measured struct {
	c     *exec.Cmd
	t0    time.Time
	hwm   atomic.Int64
	done  chan struct{}
	polls chan struct{}
	errb  bytes.Buffer
}

// startMeasured starts argv with stdio as given.
func startMeasured(ctx context.Context, argv []string, stdio cmdIO) (*measured, error) {
	m := &measured{c: exec.CommandContext(ctx, argv[0], argv[1:]...), done: make(chan struct{}), polls: make(chan struct{})}
	m.c.Stdin, m.c.Stdout = stdio.Stdin, stdio.Stdout
	m.c.Stderr = &m.errb
	if stdio.Stderr != nil {
		m.c.Stderr = io.MultiWriter(&m.errb, stdio.Stderr)
	}
	m.t0 = time.Now()
	if err := m.c.Start(); err != nil {
		return nil, err
	}
	go m.poll()
	return m, nil
}

// poll reads the process's VmHWM until it ends.
func (m *measured) poll() {
	defer close(m.polls)
	path := fmt.Sprintf("/proc/%d/status", m.c.Process.Pid)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if kb := vmHWM(path); kb > m.hwm.Load() {
			m.hwm.Store(kb)
		}
		select {
		case <-m.done:
			return
		case <-t.C:
		}
	}
}

// wait waits for the process and returns its usage; err names the
// command and the tail of its stderr when it failed.
func (m *measured) wait() (usage, error) {
	pid := m.c.Process.Pid
	var info unix.Siginfo
	// WNOWAIT: the zombie's /proc/PID/stat still has its CPU times.
	werr := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	u := usage{Wall: time.Since(m.t0)}
	if werr == nil {
		u.User, u.Sys, u.CUser, u.CSys = statTimes(pid)
	}
	close(m.done)
	<-m.polls
	err := m.c.Wait()
	u.HWM = m.hwm.Load()
	if ru, ok := m.c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSS = ru.Maxrss
		if u.MaxRSS > u.HWM {
			u.Children = u.MaxRSS
		}
	}
	if err != nil {
		return u, fmt.Errorf("%s: %w: %s", strings.Join(m.c.Args, " "), err, tail(m.errb.String(), 400))
	}
	return u, nil
}

// stderr is what the command wrote to its stderr.
func (m *measured) stderr() []byte { return m.errb.Bytes() }

// runMeasured runs argv to its end.
func runMeasured(ctx context.Context, argv []string, stdio cmdIO) (usage, []byte, error) {
	m, err := startMeasured(ctx, argv, stdio)
	if err != nil {
		return usage{}, nil, err
	}
	u, err := m.wait()
	return u, m.stderr(), err
}

// vmHWM returns the VmHWM (KiB) of a /proc/PID/status, 0 if gone.
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte("VmHWM:"))
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+len("VmHWM:"):]))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times (100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// statTimes returns utime, stime, cutime and cstime of /proc/PID/stat.
func statTimes(pid int) (user, sys, cuser, csys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return
	}
	// The command name may hold spaces: fields count from after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 {
		return
	}
	get := func(k int) time.Duration {
		n, _ := strconv.ParseInt(f[k-3], 10, 64)
		return time.Duration(n) * clockTick
	}
	return get(14), get(15), get(16), get(17)
}
