package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A process stopped by a signal (state T: SIGSTOP, SIGTSTP, job control)
// cannot be dumped in a frozen cgroup: CRIU's PTRACE_SEIZE of it waits
// for the task to leave its stop, which a frozen task never does, so the
// dump hangs (in the kernel, unkillable but by SIGKILL) until its time
// limit. runc always has CRIU freeze the container's cgroup, so the
// checkpoint refuses up front instead (criu#1905 tried the same check in
// CRIU itself).

// stoppedProc is a process of a container that a signal stopped.
type stoppedProc struct {
	pid  int // its PID in the container's PID namespace
	comm string
}

// findStopped returns a process of the cgroup of container c that is
// stopped by a signal, or nil. Only the container's own cgroup (its
// init's, ending in c.CgroupsPath) is read, never a parent's.
func findStopped(c *Container) (*stoppedProc, error) {
	cg, err := procCgroups(c.PID)
	if err != nil {
		return nil, err
	}
	dir := cg.v1("freezer")
	if dir == "" {
		dir = cg.v2
	}
	own := filepath.Clean(c.CgroupsPath)
	if c.CgroupsPath == "" || own == "/" || dir == "" || !strings.HasSuffix(dir, own) {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		state, err := procStat(pid, 3)
		if errors.Is(err, os.ErrNotExist) {
			continue // it exited meanwhile
		}
		if err != nil {
			return nil, err
		}
		if state == "T" {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			return &stoppedProc{pid: nsPID(pid), comm: strings.TrimSpace(string(comm))}, nil
		}
	}
	return nil, nil
}

// nsPID returns process pid's PID in its innermost PID namespace (the
// last NSpid of /proc/pid/status), or pid if that cannot be read.
func nsPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return pid
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
				return n
			}
		}
	}
	return pid
}

// checkNoStopped refuses a dump of container c while one of its
// processes is stopped by a signal, naming it and how to continue it.
func checkNoStopped(c *Container) error {
	p, err := findStopped(c)
	if err != nil || p == nil {
		// Not knowing is no reason to refuse: CRIU's time limit still
		// bounds a dump that hangs.
		return nil
	}
	return fmt.Errorf("%w: process %d (%s) of container %s is stopped by a signal, and CRIU hangs seizing a stopped process in a frozen container: continue it (ckpt exec %s kill -CONT %d) and checkpoint again",
		ErrUnsupported, p.pid, p.comm, c.Name, c.Name, p.pid)
}
