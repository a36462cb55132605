package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// watchdog is a detached shell that waits for its stdin to close, then
// thaws the container and removes the temporary archive, if still there.
type watchdog struct {
	cmd *exec.Cmd
	w   *os.File
	// unfinished: runc failed, and CRIU may still run.
	unfinished bool
}

func (e *Engine) startWatchdog(id string, pid int, tmp string) (*watchdog, error) {
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
	// when it ends: then it thaws again while a CRIU still holds the
	// container's init process under ptrace (at most ten minutes): that
	// CRIU is this dump's, not another container's.
	// Once told "released" (the container was thawed or stopped) it only
	// removes the temporary file: a later thaw could only collide with
	// the next operation on the container.
	script := `x=; while read -r l; do x=$l; [ "$l" = done ] && break; done; rm -f -- "$0"
case $x in done|released) exit 0;; esac; "$@" >/dev/null 2>&1
[ "$x" = unfinished ] || exit 0; i=0
traced() { t=$(sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$CKPT_WD_PID/status" 2>/dev/null)
  [ -n "$t" ] && [ "$t" != 0 ] && [ "$(cat "/proc/$t/comm" 2>/dev/null)" = criu ]; }
while [ $i -lt 600 ] && traced; do sleep 1; "$@" >/dev/null 2>&1; i=$((i+1)); done`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, tmp}, resume...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("CKPT_WD_PID=%d", pid))
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

// dumpFailed tells the watchdog, once stopped, that runc failed: CRIU
// may still run and re-freeze the container when it ends.
func (wd *watchdog) dumpFailed() { wd.unfinished = true }

// stop tells the watchdog that this process finished, and reaps it in the
// background. It exits at once (this process thawed the container),
// unless the dump failed: then it thaws it again while CRIU holds it.
func (wd *watchdog) stop() {
	if wd.unfinished {
		_, _ = wd.w.WriteString("unfinished\n")
	} else {
		_, _ = wd.w.WriteString("done\n")
	}
	_ = wd.w.Close()
	go func() { _ = wd.cmd.Wait() }()
}
