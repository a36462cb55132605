package engine

import (
	"context"
	"strconv"
)

// runc builds runc command lines. Each *Args method returns the complete
// argv (binary first) so that unit tests can check it without running runc.
type runc struct {
	path string // runc binary
	root string // runc --root: per-engine state directory
	log  string // runc --log file ("" for none)
}

func (e *Engine) runc(logPath string) runc {
	return runc{path: e.runtimePath(), root: e.runcRoot(), log: logPath}
}

func (r runc) base(sub string) []string {
	a := []string{r.path, "--root", r.root}
	if r.log != "" {
		a = append(a, "--log", r.log, "--log-format", "json")
	}
	return append(a, sub)
}

func (r runc) createArgs(id, bundle, pidFile string) []string {
	return append(r.base("create"), "--bundle", bundle, "--pid-file", pidFile, id)
}

func (r runc) startArgs(id string) []string { return append(r.base("start"), id) }

func (r runc) killArgs(id string, sig int, all bool) []string {
	a := r.base("kill")
	if all {
		a = append(a, "--all")
	}
	return append(a, id, strconv.Itoa(sig))
}

func (r runc) deleteArgs(id string, force bool) []string {
	a := r.base("delete")
	if force {
		a = append(a, "--force")
	}
	return append(a, id)
}

func (r runc) execArgs(id string, o *ExecOptions, cmd []string) []string {
	a := r.base("exec")
	if o != nil {
		for _, kv := range o.Env {
			a = append(a, "--env", kv)
		}
		if o.Cwd != "" {
			a = append(a, "--cwd", o.Cwd)
		}
		if o.Terminal {
			a = append(a, "--tty")
		}
	}
	a = append(a, id)
	return append(a, cmd...)
}

// execProcessArgs builds `runc exec --process FILE`: the process is the
// file's, whole.
func (r runc) execProcessArgs(id, process string) []string {
	return append(r.base("exec"), "--process", process, id)
}

// checkpointArgs builds `runc checkpoint`: CRIU images go to imageDir and
// CRIU's dump.log to workDir.
func (r runc) checkpointArgs(id, imageDir, workDir string, o *CheckpointOptions) []string {
	a := append(r.base("checkpoint"), "--image-path", imageDir, "--work-path", workDir)
	if o != nil {
		// runc leaves the container running after a pre-dump by itself.
		if o.LeaveRunning && !o.preDump {
			a = append(a, "--leave-running")
		}
		if o.TCPEstablished {
			a = append(a, "--tcp-established")
		}
		if o.FileLocks {
			a = append(a, "--file-locks")
		}
		if o.preDump {
			a = append(a, "--pre-dump")
		}
		if o.parentPath != "" {
			a = append(a, "--parent-path", o.parentPath)
		}
	}
	return append(a, id)
}

// restoreArgs builds `runc restore -d`: runc re-wires the container's
// stdio pipes (recorded in descriptors.json at dump time) to its own stdio,
// which the monitor sets to fresh pipes. CRIU is told to ignore the
// images' cgroups (here for runc that passes it on, and in CRIU's
// configuration file for runc 1.1, which does not): runc puts CRIU, and so
// every task it restores, in the cgroup of the spec, and an image's cgroup
// paths and properties (which could name host cgroups or release agents)
// never reach the host.
func (r runc) restoreArgs(id, bundle, pidFile, imageDir, workDir string, o *RestoreOptions) []string {
	a := append(r.base("restore"), "--detach", "--image-path", imageDir, "--work-path", workDir,
		"--bundle", bundle, "--pid-file", pidFile, "--manage-cgroups-mode", "ignore")
	if o != nil {
		if o.TCPEstablished {
			a = append(a, "--tcp-established")
		}
		if o.FileLocks {
			a = append(a, "--file-locks")
		}
	}
	return append(a, id)
}

// runcTool runs one runc command line and returns its stdout.
func runcTool(ctx context.Context, argv []string, logPath string) ([]byte, error) {
	return runTool(ctx, "runc "+argv[indexOfSub(argv)], argv, logPath, ErrRuntimeMissing)
}

// runcToolWith runs one runc command line with the files, the hook and
// the bounds of o.
func runcToolWith(ctx context.Context, argv []string, logPath string, o *toolOptions) ([]byte, error) {
	return runToolWith(ctx, "runc "+argv[indexOfSub(argv)], argv, logPath, ErrRuntimeMissing, o)
}

// indexOfSub finds the runc subcommand in argv built by runc.base.
func indexOfSub(argv []string) int {
	i := 1
	for i < len(argv) {
		switch argv[i] {
		case "--root", "--log", "--log-format":
			i += 2
		default:
			return i
		}
	}
	return len(argv) - 1
}
