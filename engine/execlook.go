package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var (
	// ErrCommandNotFound reports that the command given to exec is not a
	// file in the container (podman's exit status 127).
	ErrCommandNotFound = errors.New("executable file not found")
	// ErrCommandNotExecutable reports that the command given to exec is a
	// file the container cannot execute (podman's exit status 126).
	ErrCommandNotExecutable = errors.New("permission denied (not an executable file)")
)

// lookExec finds name in the running container c as runc's exec will
// (through PATH unless name holds a slash), so that a missing or
// non-executable command is reported in one line before runc runs: it
// resolves the path inside the container's root as its init sees it
// (/proc/PID/root, its volumes included).
func (e *Engine) lookExec(c *Container, name string, o *ExecOptions) error {
	root := "/proc/" + strconv.Itoa(c.PID) + "/root"
	env, cwd := e.processEnv(c)
	env = append(env, o.Env...)
	if o.Cwd != "" {
		cwd = o.Cwd
	}
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		return checkExecutable(root, p, name)
	}
	pathVar := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	var denied error
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		err := checkExecutable(root, path.Join(dir, name), name)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrCommandNotExecutable) && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return denied
	}
	return fmt.Errorf("%q: %w in $PATH", name, ErrCommandNotFound)
}

// checkExecutable checks that p, resolved inside root by the kernel
// (openat2 RESOLVE_IN_ROOT: symbolic links stay inside), is a file with an
// execute bit; name is what the user typed.
func checkExecutable(root, p, name string) error {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // the container went away, ...: runc says
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%q: %w", name, ErrCommandNotFound)
	}
	if err != nil {
		return nil // a symbolic link loop, ...: runc says
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return fmt.Errorf("%q: %w", name, ErrCommandNotExecutable)
	}
	return nil
}

// processEnv returns the environment and working directory of c's
// process, read from its bundle (what runc exec starts from).
func (e *Engine) processEnv(c *Container) (env []string, cwd string) {
	data, err := os.ReadFile(filepath.Join(e.containerDir(c.ID), "config.json"))
	if err != nil {
		return []string{defaultPath}, "/"
	}
	var spec specs.Spec
	if json.Unmarshal(data, &spec) != nil || spec.Process == nil {
		return []string{defaultPath}, "/"
	}
	cwd = spec.Process.Cwd
	if cwd == "" {
		cwd = "/"
	}
	return spec.Process.Env, cwd
}
