package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Monitor modes.
const (
	monitorRun     = "run"
	monitorRestore = "restore"
)

// monitorConfig is the JSON argument of the monitor subcommand.
type monitorConfig struct {
	Mode     string          `json:"mode"`
	ID       string          `json:"id"`
	Dir      string          `json:"dir"` // container directory = OCI bundle
	RuncPath string          `json:"runc_path"`
	RuncRoot string          `json:"runc_root"`
	ImageDir string          `json:"image_dir,omitempty"`
	WorkDir  string          `json:"work_dir,omitempty"`
	Restore  *RestoreOptions `json:"restore,omitempty"`
	// LockFD is the descriptor of the container's lock the monitor
	// inherits and holds until it has recorded the start (start.json),
	// so a start whose ckpt process was killed is not reconciled before
	// its outcome is known; 0 if none.
	LockFD int `json:"lock_fd,omitempty"`
	// Rootfs is the container's root file system, below which a failed
	// start or restore unmounts what runc left ("" to leave it alone).
	Rootfs string `json:"rootfs,omitempty"`
	// Timeout, Work and MaxLog bound the restore (see CRIULimits).
	Timeout time.Duration `json:"timeout,omitempty"`
	Work    int64         `json:"work,omitempty"`
	MaxLog  int64         `json:"max_log,omitempty"`
	// StdinFD is the inherited read end of the pipe that becomes the
	// container's stdin (an attached run -i, whose client writes it); 0:
	// the monitor makes the pipe, and closes its write end at once unless
	// OpenStdin, so the container reads EOF as under podman without -i.
	StdinFD   int  `json:"stdin_fd,omitempty"`
	OpenStdin bool `json:"open_stdin,omitempty"`
	// HoldFD is the inherited read end of a pipe an attached client holds
	// until it has read the exit status: an auto-removal waits for its EOF.
	HoldFD int `json:"hold_fd,omitempty"`
	// AutoRemove is the engine the monitor removes the container with once
	// it has exited (run --rm); nil to keep it.
	AutoRemove *engineConfig `json:"auto_remove,omitempty"`
	// Terminal gives the container a terminal (its spec says so) whose
	// master the monitor holds; OutFD, if set, is the write end of a pipe
	// an attached client reads the terminal's output from, ResizeFD the
	// read end of one it writes "ROWS COLS" lines to (see tty.go).
	Terminal bool `json:"terminal,omitempty"`
	OutFD    int  `json:"out_fd,omitempty"`
	ResizeFD int  `json:"resize_fd,omitempty"`

	// lock is the container's lock file passed as LockFD, stdin, hold, out
	// and resize the files passed as StdinFD, HoldFD, OutFD and ResizeFD;
	// started is called once the monitor runs.
	lock, stdin, hold, out, resize *os.File
	started                        func()
}

// monitorResult is what the monitor reports on its sync pipe once the
// container runs (or failed to start).
type monitorResult struct {
	PID       int        `json:"pid,omitempty"`
	Error     string     `json:"error,omitempty"`
	Exit      *ExitError `json:"exit_error,omitempty"`
	RuntimeUS int64      `json:"runtime_us,omitempty"`

	// MonitorPID is filled in by startMonitor, not sent.
	MonitorPID int `json:"-"`
}

// monitorStopGrace is how long a monitor asked to stop (SIGTERM) may take
// to kill runc and CRIU and report, before its whole session is killed.
const monitorStopGrace = 10 * time.Second

// startMonitor starts a detached monitor (own session, not tied to ctx: it
// must outlive this call) and waits for its report. The monitor's own
// diagnostics go to <dir>/monitor.log. If ctx is done before the monitor
// reports, it is told to stop (SIGTERM: it kills runc and CRIU and reports
// the failure), and if it does not in time, its session is killed.
func (e *Engine) startMonitor(ctx context.Context, cfg *monitorConfig) (*monitorResult, error) {
	exe, err := e.monitorPath()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create sync pipe: %w", err)
	}
	defer r.Close()
	// The sync pipe is descriptor 3; the files passed after it follow.
	extra := []*os.File{w}
	pass := func(f *os.File, fd *int) {
		if f != nil {
			extra = append(extra, f)
			*fd = 2 + len(extra)
		}
	}
	pass(cfg.lock, &cfg.LockFD)
	pass(cfg.stdin, &cfg.StdinFD)
	pass(cfg.hold, &cfg.HoldFD)
	pass(cfg.out, &cfg.OutFD)
	pass(cfg.resize, &cfg.ResizeFD)
	arg, err := json.Marshal(cfg)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("encode monitor config: %w", err)
	}
	mlog, err := os.OpenFile(filepath.Join(cfg.Dir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open monitor log: %w", err)
	}
	defer mlog.Close()
	// Not exec.CommandContext: the monitor must survive this call and ctx.
	cmd := exec.Command(exe, MonitorCommand, string(arg))
	cmd.Stdout, cmd.Stderr = mlog, mlog
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	w.Close()
	// Reap the monitor if this process lives longer than it (tests, API users).
	go func() { _ = cmd.Wait() }()
	if cfg.started != nil {
		cfg.started()
	}
	data, err := waitReport(ctx, r, cmd.Process.Pid, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	var res monitorResult
	if len(bytes.TrimSpace(data)) == 0 {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: the monitor was stopped before it reported", context.Cause(ctx))
		}
		tail := logTail(filepath.Join(cfg.Dir, "monitor.log"), 5)
		return nil, fmt.Errorf("monitor exited without a report (see %s): %s",
			filepath.Join(cfg.Dir, "monitor.log"), strings.Join(tail, "; "))
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("decode monitor report: %w", err)
	}
	res.MonitorPID = cmd.Process.Pid
	if res.Exit != nil {
		return &res, res.Exit
	}
	if res.Error != "" {
		return &res, errors.New(res.Error)
	}
	return &res, nil
}

// waitReport reads the monitor's report from r. When ctx is done first,
// or the monitor takes monitorStopGrace longer than the timeout it was
// given, it sends the monitor SIGTERM, and after monitorStopGrace kills
// its session.
func waitReport(ctx context.Context, r *os.File, pid int, timeout time.Duration) ([]byte, error) {
	type report struct {
		data []byte
		err  error
	}
	ch := make(chan report, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(r, 1<<20))
		ch <- report{data, err}
	}()
	var overdue <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout + monitorStopGrace)
		defer t.Stop()
		overdue = t.C
	}
	var rep report
	select {
	case rep = <-ch:
	case <-ctx.Done():
	case <-overdue:
	}
	if rep.data == nil && rep.err == nil {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case rep = <-ch:
		case <-time.After(monitorStopGrace):
			killSession(pid)
			select {
			case rep = <-ch:
			case <-time.After(monitorStopGrace):
				return nil, fmt.Errorf("the monitor (pid %d) did not stop", pid)
			}
		}
	}
	if rep.err != nil {
		return nil, fmt.Errorf("read monitor report: %w", rep.err)
	}
	return rep.data, nil
}

// killSession sends SIGKILL to every process of session sid (a monitor,
// the runc it runs and CRIU), until none is left.
func killSession(sid int) {
	for try := 0; try < 50; try++ {
		ents, _ := os.ReadDir("/proc")
		found := false
		for _, d := range ents {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			if s, err := procSession(pid); err == nil && s == sid {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procSession returns the session ID of process pid (field 6 of
// /proc/<pid>/stat).
func procSession(pid int) (int, error) {
	f, err := procStat(pid, 6)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f)
}

// RunMonitor is the body of the hidden monitor subcommand: args are the
// arguments after [MonitorCommand]. It starts (or restores) the container
// with pipes as its stdio, reports the container's PID on file descriptor
// 3, copies the container's output to ctr.log, reaps its init process as a
// child subreaper, records the exit status in exit.json and exits. It
// returns the monitor's exit code.
func RunMonitor(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "ckpt monitor: want one JSON argument")
		return 2
	}
	var cfg monitorConfig
	if err := json.Unmarshal([]byte(args[0]), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "ckpt monitor: decode config: %v\n", err)
		return 2
	}
	// Held, not handed on: runc and the container never see them (stdin
	// reaches the container as runc's descriptor 0).
	lock := inherited(cfg.LockFD, "lock")
	cfg.stdin = inherited(cfg.StdinFD, "stdin")
	cfg.hold = inherited(cfg.HoldFD, "hold")
	cfg.out = inherited(cfg.OutFD, "out")
	cfg.resize = inherited(cfg.ResizeFD, "resize")
	syncPipe := os.NewFile(3, "sync")
	report := func(res monitorResult) {
		if syncPipe == nil {
			return
		}
		_ = json.NewEncoder(syncPipe).Encode(res)
		_ = syncPipe.Close()
		syncPipe = nil
	}
	m := &monitor{cfg: cfg, r: runc{path: cfg.RuncPath, root: cfg.RuncRoot, log: filepath.Join(cfg.Dir, "runc.log")}}
	// SIGTERM or SIGINT while runc starts or restores the container
	// (startMonitor's caller was interrupted) kills runc and CRIU; once
	// the container runs, they are ignored: the monitor lives as long as
	// the container (SIGKILL still ends it).
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for s := range sigs {
			cancel(fmt.Errorf("monitor got %v", s))
		}
	}()
	pid, runtimeDur, err := m.start(ctx)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			report(monitorResult{Exit: ee, Error: err.Error()})
		} else {
			report(monitorResult{Error: err.Error()})
		}
		recordStart(cfg.Dir, startRecord{Error: err.Error()}, lock)
		fmt.Fprintf(os.Stderr, "%s ckpt monitor %s: %v\n", time.Now().UTC().Format(time.RFC3339), cfg.ID, err)
		return 1
	}
	report(monitorResult{PID: pid, RuntimeUS: runtimeDur.Microseconds()})
	recordStart(cfg.Dir, startRecord{PID: pid}, lock)
	code := m.wait(pid)
	m.finish(code)
	if cfg.AutoRemove != nil {
		autoRemove(&cfg)
	}
	return 0
}

// inherited returns the file of descriptor fd, marked close-on-exec, or
// nil if fd is 0.
func inherited(fd int, name string) *os.File {
	if fd <= 0 {
		return nil
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name)
}

type monitor struct {
	cfg monitorConfig
	r   runc

	log     *os.File
	stdinW  *os.File // the write end of the container's stdin while OpenStdin keeps it open
	console *consoleSocket
	copiers sync.WaitGroup
}

// start creates the pipes (and with a terminal, the console socket), runs
// runc (create+start or restore) with them as stdio and returns the
// container's init PID.
func (m *monitor) start(ctx context.Context) (pid int, runtimeDur time.Duration, err error) {
	if err := setSubreaper(); err != nil {
		return 0, 0, fmt.Errorf("become subreaper: %w", err)
	}
	m.log, err = os.OpenFile(filepath.Join(m.cfg.Dir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("open container log: %w", err)
	}
	stdio, closeChildEnds, err := m.pipes()
	if err != nil {
		return 0, 0, err
	}
	var console []string
	if m.cfg.Terminal {
		cs, err := listenConsole()
		if err != nil {
			closeChildEnds()
			return 0, 0, err
		}
		defer cs.close()
		m.console, console = cs, []string{"--console-socket", cs.path}
	}
	pidFile := filepath.Join(m.cfg.Dir, "init.pid")
	_ = os.Remove(pidFile)
	t0 := time.Now()
	switch m.cfg.Mode {
	case monitorRun:
		argv := m.r.createArgs(m.cfg.ID, m.cfg.Dir, pidFile)
		argv = append(argv[:len(argv)-1], append(console, argv[len(argv)-1])...)
		err = m.run(ctx, stdio, argv, "", bounds{cancel: true})
		closeChildEnds()
		if err == nil {
			err = m.takeTerminal()
		}
		if err == nil {
			pid, err = readPID(pidFile)
		}
		if err == nil {
			err = m.run(ctx, nil, m.r.startArgs(m.cfg.ID), "", bounds{cancel: true})
		}
	case monitorRestore:
		logPath := filepath.Join(m.cfg.WorkDir, "restore.log")
		b := bounds{timeout: m.cfg.Timeout, work: m.cfg.Work, log: logPath, maxLog: m.cfg.MaxLog, cancel: true,
			hint: "the checkpoint's images are probably corrupt"}
		argv := m.r.restoreArgs(m.cfg.ID, m.cfg.Dir, pidFile, m.cfg.ImageDir, m.cfg.WorkDir, m.cfg.Restore)
		argv = append(argv[:len(argv)-1], append(console, argv[len(argv)-1])...)
		err = m.run(ctx, stdio, argv, logPath, b)
		closeChildEnds()
		if err == nil {
			err = m.takeTerminal()
		}
		if err == nil {
			pid, err = readPID(pidFile)
		}
	default:
		closeChildEnds()
		return 0, 0, fmt.Errorf("unknown monitor mode %q", m.cfg.Mode)
	}
	if err != nil {
		m.cleanupFailed()
		return 0, 0, err
	}
	return pid, time.Since(t0), nil
}

// pipes creates the container's stdio pipes, starts copying its output
// to the log, and returns the function that gives runc the child ends and
// the one that closes them once runc has them.
func (m *monitor) pipes() (stdio func(*exec.Cmd), closeChildEnds func(), err error) {
	stdinR, err := m.stdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create stdout pipe: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create stderr pipe: %w", err)
	}
	lw := &logWriter{w: m.log, now: time.Now}
	for i, p := range []*os.File{stdoutR, stderrR} {
		stream := [...]string{"stdout", "stderr"}[i]
		m.copiers.Add(1)
		go func() {
			defer m.copiers.Done()
			defer p.Close()
			buf := make([]byte, 32*1024)
			for {
				n, err := p.Read(buf)
				if n > 0 {
					_ = lw.write(stream, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	stdio = func(cmd *exec.Cmd) {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	}
	closeChildEnds = func() {
		if !m.cfg.OpenStdin && m.stdinW != nil {
			// What the container has not read by now it reads as EOF.
			m.stdinW.Close()
			m.stdinW = nil
		}
		stdinR.Close()
		stdoutW.Close()
		stderrW.Close()
	}
	return stdio, closeChildEnds, nil
}

// takeTerminal takes the terminal's master runc sent, if the container
// has one, and starts holding it.
func (m *monitor) takeTerminal() error {
	if m.console == nil {
		return nil
	}
	master, err := m.console.master()
	if err != nil {
		return err
	}
	m.holdTerminal(master, m.cfg.stdin)
	return nil
}

// stdinPipe returns the read end of the container's stdin: the attached
// client's pipe, or a new one whose write end the monitor holds. With a
// terminal the client's pipe is copied to the terminal instead.
func (m *monitor) stdinPipe() (*os.File, error) {
	if m.cfg.stdin != nil && !m.cfg.Terminal {
		return m.cfg.stdin, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create stdin pipe: %w", err)
	}
	m.stdinW = w
	return r, nil
}

// run runs one runc command synchronously (before the reap loop starts, so
// exec's Wait and the subreaper's wait4 never compete), within b.
func (m *monitor) run(ctx context.Context, stdio func(*exec.Cmd), argv []string, logPath string, b bounds) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	if stdio != nil {
		stdio(cmd)
	} else {
		cmd.Stderr = &stderr
	}
	killed, detail, err := runBounded(ctx, cmd, b, nil)
	if err == nil {
		return nil
	}
	tool := "runc " + argv[indexOfSub(argv)]
	ee, ok := isExit(err)
	if !ok {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s: %w", ErrRuntimeMissing, argv[0], err)
		}
		return fmt.Errorf("run %s: %w", tool, err)
	}
	if logPath == "" {
		// runc's own JSON log holds its error message.
		logPath = m.r.log
	}
	if killed != "" {
		x := killedError(tool, ee.ExitCode(), logPath, killed, detail)
		x.Stderr = stderr.Bytes()
		return x
	}
	x := &ExitError{Tool: tool, Code: ee.ExitCode(), LogPath: existing(logPath), Stderr: stderr.Bytes()}
	x.LogTail = logTail(x.LogPath, 5)
	return x
}

// cleanupFailed removes whatever runc left of a container that failed to
// start or restore, so the container stays restorable: what runc left
// mounted first, then its state.
func (m *monitor) cleanupFailed() {
	if err := teardownRuntime(m.r, m.cfg.ID, m.cfg.Rootfs); err != nil {
		fmt.Fprintf(os.Stderr, "%s ckpt monitor %s: %v\n", time.Now().UTC().Format(time.RFC3339), m.cfg.ID, err)
	}
}

// wait reaps children until the container's init exits and returns its
// exit code (128+signal if killed, -1 if unknown).
func (m *monitor) wait(pid int) int {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// init is not our child (it was not reparented to us): poll.
			for alive(pid) {
				time.Sleep(100 * time.Millisecond)
			}
			return -1
		}
		if got != pid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
		return -1
	}
}

// finish drains the output and then records the exit, so whoever sees the
// exit (an attached run) finds all of the output in the log. It leaves
// runc's state of a stopped container for the next restore or rm to
// delete (after a checkpoint runc has already removed it).
func (m *monitor) finish(code int) {
	finished := time.Now().UTC()
	if m.stdinW != nil {
		m.stdinW.Close()
	}
	done := make(chan struct{})
	go func() { m.copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	_ = m.log.Sync()
	_ = m.log.Close()
	x := exitRecord{MonitorPID: os.Getpid(), ExitCode: code, FinishedAt: finished}
	if data, err := json.Marshal(x); err == nil {
		if err := fsutil.WriteFileAtomic(filepath.Join(m.cfg.Dir, exitFile), data, 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "ckpt monitor %s: record exit: %v\n", m.cfg.ID, err)
		}
	}
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("parse pid file %s: %q", path, data)
	}
	return pid, nil
}
