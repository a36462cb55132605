package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// RunOptions configures [Engine.Run]. The zero value runs the image's
// command with no extra environment in a private network namespace.
type RunOptions struct {
	// Name is the container's name; default "ckpt-" + the first 12 ID digits.
	Name string
	// Command is the process' argv; default the image's Cmd (unless
	// Entrypoint is set, as in podman). Required for images without a
	// config (ckpt image import's).
	Command []string
	// Env adds K=V variables to the process' environment, after the
	// image's (replacing those of the same name).
	Env []string
	// Volumes are podman-style -v specs: NAME:/path[:ro] for a named volume
	// (Root/volumes/NAME/_data, created if missing) or /host/path:/path[:ro]
	// for a bind mount of an existing host path.
	Volumes []string
	// Network is NetworkNone (default) or NetworkHost.
	Network string
	// Entrypoint comes before Command in the process' argv (podman's
	// --entrypoint); default the image's.
	Entrypoint []string
	// User is USER[:GROUP], names (resolved in the image's /etc/passwd and
	// /etc/group) or numbers; default the image's, else root.
	User string
	// WorkDir is the process' working directory (absolute); default the
	// image's, else /.
	WorkDir string
	// Hostname is the container's host name; default the first 12 digits
	// of its ID.
	Hostname string
	// MemoryLimit is the container's memory limit in bytes (cgroup); 0
	// for none.
	MemoryLimit int64
	// ID is the container's ID (64 lowercase hex digits); default random.
	// An import that keeps the checkpointed container's ID sets it.
	ID string
	// OpenStdin keeps the container's stdin open (podman's -i); without it
	// the container reads EOF.
	OpenStdin bool
	// Stdin, if set (with OpenStdin), is the container's stdin: the read
	// end of a pipe that the caller writes and closes. A pipe, not a host
	// file or terminal, because CRIU can dump a pipe to the outside and
	// runc re-wires it on restore. Run passes it on; the caller closes
	// its copy. Nil with OpenStdin: a pipe nothing writes to.
	Stdin *os.File
	// Remove removes the container once it has exited (podman's --rm): its
	// monitor does, also when the container exits after the caller has
	// gone. Such a container is checkpointed only by an export.
	Remove bool
	// Hold, if set, is the read end of a pipe whose write end an attached
	// caller keeps until it has read the exit status: the monitor's
	// removal waits for it to be closed.
	Hold *os.File
	// Terminal gives the process a terminal (podman's -t), whose master
	// the container's monitor holds; its output goes to the log as stdout.
	Terminal bool
	// TerminalRows and TerminalCols are its first window size; 0: runc's.
	TerminalRows, TerminalCols uint16
	// TerminalOutput, if set, is the write end of a pipe the monitor also
	// copies the terminal's output to (an attached run -t reads it), and
	// TerminalResize the read end of one it reads "ROWS COLS" lines from
	// to resize the terminal. Run passes them on; the caller closes its
	// copies.
	TerminalOutput, TerminalResize *os.File

	// user is the identity an import recorded, taken instead of User.
	user *User
	// capAdd are the capabilities an import granted beyond defaultCaps.
	capAdd []string
	// masked are paths to mask beyond the default set (an import's).
	masked []string
	// recorded says the process comes from a checkpoint's record: the
	// image's config (entrypoint, command, environment ...) is not applied.
	recorded bool

	// reserved, if set, is called with the container's ID once it is
	// reserved (the name and ID are free, under the engine-wide lock) and
	// before its directory is made: an import records it there.
	reserved func(id string) error
}

// ExecOptions configures [Engine.Exec].
type ExecOptions struct {
	// Env adds K=V variables to the exec'd process' environment.
	Env []string
	// Cwd is its working directory; default the container's.
	Cwd string
	// User is USER[:GROUP] as in [RunOptions.User], resolved in the
	// container's /etc/passwd and /etc/group; default the container's.
	User string
	// Stdin, Stdout and Stderr are its stdio; nil means /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals, if set, are forwarded to the process (runc exec passes on
	// what it gets), and a done ctx no longer kills runc (which would
	// leave the process running): the caller forwards its SIGINT instead.
	Signals <-chan os.Signal
	// Terminal runs it with a terminal (exec -t): runc, in the foreground,
	// makes one and copies between it and Stdin/Stdout, in raw mode and
	// following the window size if Stdin is a terminal.
	Terminal bool
}

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	idRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// parseVolume turns a -v spec into a Mount, creating a named volume's
// directory if it does not exist yet (as podman does).
func (e *Engine) parseVolume(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Mount{}, fmt.Errorf("invalid volume %q (want NAME:/path[:ro] or /host/path:/path[:ro])", spec)
	}
	m := Mount{Destination: parts[1]}
	if !filepath.IsAbs(m.Destination) {
		return Mount{}, fmt.Errorf("invalid volume %q: destination must be absolute", spec)
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, fmt.Errorf("invalid volume %q: unknown option %q", spec, parts[2])
		}
	}
	if strings.HasPrefix(parts[0], "/") {
		m.Type, m.Source = "bind", filepath.Clean(parts[0])
		if _, err := os.Stat(m.Source); err != nil {
			return Mount{}, fmt.Errorf("bind mount source: %w", err)
		}
		return m, nil
	}
	if !nameRE.MatchString(parts[0]) {
		return Mount{}, fmt.Errorf("invalid volume name %q", parts[0])
	}
	m.Type, m.Name = "volume", parts[0]
	m.Source = filepath.Join(e.volumesDir(), m.Name, "_data")
	if err := os.MkdirAll(m.Source, 0o755); err != nil {
		return Mount{}, fmt.Errorf("create volume %s: %w", m.Name, err)
	}
	return m, nil
}

// hostnameRE is a host name the kernel and resolvers take: labels of
// letters, digits and '-', separated by dots.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// checkProcessOptions checks the options that shape the container's
// process before anything is made.
func checkProcessOptions(o *RunOptions) error {
	if len(o.Entrypoint)+len(o.Command) == 0 {
		return fmt.Errorf("%w: no command: the image records none (ckpt image import's do not); give CMD or Entrypoint", ErrOptions)
	}
	if o.WorkDir != "" && (!filepath.IsAbs(o.WorkDir) || strings.ContainsRune(o.WorkDir, 0)) {
		return fmt.Errorf("invalid working directory %q: it must be an absolute path", o.WorkDir)
	}
	if o.Hostname != "" && (len(o.Hostname) > 64 || !hostnameRE.MatchString(o.Hostname)) {
		return fmt.Errorf("invalid hostname %q (letters, digits, '-' and '.', at most 64)", o.Hostname)
	}
	if o.MemoryLimit < 0 {
		return fmt.Errorf("invalid memory limit %d: it must not be negative", o.MemoryLimit)
	}
	return nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run creates a container from image and starts it under a monitor, then
// returns its state (status running). If creating fails nothing is left
// behind; if only starting fails the container stays, created, with its
// logs (the error says so).
func (e *Engine) Run(ctx context.Context, image string, o *RunOptions) (_ *Container, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "run %s", image)
		}
	}()
	return e.create(ctx, image, o, true)
}

// Create creates a container from image without starting it (status
// created): storage container, network namespace and OCI bundle. It is the
// first step of importing a checkpoint: fill the container layer (Rootfs),
// then call [Engine.Restore] with [RestoreOptions.ImageDir]. Remove it with
// [Engine.Remove] if the import fails.
func (e *Engine) Create(ctx context.Context, image string, o *RunOptions) (_ *Container, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "create %s", image)
		}
	}()
	return e.create(ctx, image, o, false)
}

func (e *Engine) create(ctx context.Context, image string, o *RunOptions, start bool) (_ *Container, err error) {
	if o == nil {
		o = &RunOptions{}
	}
	if err := requireRoot(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(e.runtimePath()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuntimeMissing, err)
	}
	network := o.Network
	if network == "" {
		network = NetworkNone
	}
	if network != NetworkNone && network != NetworkHost {
		return nil, fmt.Errorf("unknown network mode %q (want none or host)", network)
	}
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	img, err := e.resolveImage(s, image)
	if errors.Is(err, ErrUnknownImage) {
		return nil, remedy(err, RemedyImagePull, image)
	}
	if err != nil {
		return nil, err
	}
	if !o.recorded {
		p, err := imageProcessOf(ctx, s, img)
		if err != nil {
			return nil, err
		}
		o = withImageProcess(o, p)
	}
	if err := checkProcessOptions(o); err != nil {
		return nil, err
	}
	c, err := e.newRecord(o, image, img.ID, network)
	if err != nil {
		return nil, err
	}
	l, err := e.reserve(ctx, c, o.reserved)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	ok := false
	defer func() {
		if !ok {
			_ = e.removeArtifacts(c)
		}
	}()
	if _, err := s.CreateContainer(c.ID, nil, img.ID, "", "", nil); err != nil {
		return nil, fmt.Errorf("create storage container: %w", err)
	}
	if c.Rootfs, err = s.Mount(c.ID, ""); err != nil {
		return nil, fmt.Errorf("mount container layer: %w", err)
	}
	if o.User != "" && c.User == nil {
		if c.User, err = resolveUser(c.Rootfs, o.User); err != nil {
			return nil, err
		}
	}
	if c.Network == NetworkNone {
		c.NetNS = e.netnsPath(c.ID)
		if err := createNetns(c.NetNS); err != nil {
			return nil, err
		}
	}
	if err := e.writeBundle(c); err != nil {
		return nil, err
	}
	if err := e.saveState(c); err != nil {
		return nil, err
	}
	// From here on the container exists (created); a start failure leaves
	// it, with its logs, for the user to inspect and remove, as podman does.
	ok = true
	if !start {
		return c, nil
	}
	return e.startCreated(ctx, c, l, o)
}

// newRecord returns the record of a container o describes, from image
// (whose ID is imageID) in network mode network: its volumes parsed (named
// ones created), its ID and name checked or made.
func (e *Engine) newRecord(o *RunOptions, image, imageID, network string) (*Container, error) {
	var mounts []Mount
	for _, v := range o.Volumes {
		m, err := e.parseVolume(v)
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, m)
	}
	id := o.ID
	if id == "" {
		id = newID()
	} else if !idRE.MatchString(id) {
		return nil, fmt.Errorf("invalid container ID %q (want 64 lowercase hex digits)", id)
	}
	c := &Container{
		ID: id, Name: o.Name, Image: image, ImageID: imageID,
		Command: append(append([]string{}, o.Entrypoint...), o.Command...), Env: o.Env, Network: network, Mounts: mounts,
		Entrypoint: o.Entrypoint, User: o.user, WorkDir: o.WorkDir, Hostname: o.Hostname, MemoryLimit: o.MemoryLimit, CapAdd: o.capAdd, MaskedPaths: o.masked,
		AutoRemove: o.Remove, OpenStdin: o.OpenStdin || o.Stdin != nil, Terminal: o.Terminal,
		consoleSize: consoleBox(o.TerminalRows, o.TerminalCols),
		CgroupsPath: e.cgroupParent() + "/" + id,
		Status:      StatusCreated, CreatedAt: time.Now().UTC(),
	}
	if c.Name == "" {
		c.Name = "ckpt-" + c.ID[:12]
	}
	if !nameRE.MatchString(c.Name) {
		return nil, fmt.Errorf("invalid container name %q", c.Name)
	}
	return c, nil
}

// startCreated starts created container c, whose lock l the caller
// holds, under a new monitor and records it running.
func (e *Engine) startCreated(ctx context.Context, c *Container, l *fsutil.Lock, o *RunOptions) (*Container, error) {
	j, err := e.beginContainerOp(c, opRecord{Op: opRun, Phase: "start"})
	if err != nil {
		return nil, fmt.Errorf("%w\n(container %s is left created; remove it with `ckpt rm %s`)", err, c.Name, c.Name)
	}
	defer j.end()
	mc := e.runMonitorConfig(c, l, func() { j.running("starting") })
	mc.stdin, mc.hold, mc.out, mc.resize = o.Stdin, o.Hold, o.TerminalOutput, o.TerminalResize
	res, err := e.startMonitor(ctx, mc)
	if err != nil && c.AutoRemove {
		// A --rm container that did not start is gone, as under podman.
		if rerr := e.removeArtifacts(c); rerr != nil {
			return nil, fmt.Errorf("%w (and removing it: %w)", err, rerr)
		}
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w\n(container %s is left created; remove it with `ckpt rm %s`)", err, c.Name, c.Name)
	}
	c.Status, c.PID, c.MonitorPID, c.StartedAt = StatusRunning, res.PID, res.MonitorPID, time.Now().UTC()
	j.phase("record")
	if err := e.saveState(c); err != nil {
		return nil, err
	}
	return c, nil
}

// runMonitorConfig is the monitor configuration that starts c's command,
// first (startCreated) or again (Start): its stdin kept open if it was
// run with -i, its removal after the exit if with --rm.
func (e *Engine) runMonitorConfig(c *Container, l *fsutil.Lock, started func()) *monitorConfig {
	mc := &monitorConfig{
		Mode: monitorRun, ID: c.ID, Dir: e.containerDir(c.ID),
		RuncPath: e.runtimePath(), RuncRoot: e.runcRoot(), OpenStdin: c.OpenStdin, Terminal: c.Terminal,
		lock: l.File(), started: started,
	}
	if c.AutoRemove {
		mc.AutoRemove = e.config()
	}
	return mc
}

// reserve creates the container's directory under the engine-wide lock,
// refusing a name in use, and returns the new container's lock.
func (e *Engine) reserve(ctx context.Context, c *Container, reserved func(id string) error) (*fsutil.Lock, error) {
	if err := os.MkdirAll(e.containersDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	g, err := fsutil.WaitLock(filepath.Join(e.root(), "containers.lock"), "create "+c.Name)
	if err != nil {
		return nil, err
	}
	defer g.Unlock()
	all, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		if x.Name == c.Name {
			return nil, fmt.Errorf("%w: container %s exists (%s)", ErrNameInUse, c.Name, x.ID[:12])
		}
		if x.ID == c.ID {
			return nil, fmt.Errorf("%w: container ID %s exists (%s)", ErrNameInUse, c.ID[:12], x.Name)
		}
	}
	if reserved != nil {
		if err := reserved(c.ID); err != nil {
			return nil, err
		}
	}
	dir := e.containerDir(c.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create container directory: %w", err)
	}
	l, err := fsutil.TryLock(filepath.Join(dir, lockFile), "run")
	if err != nil {
		return nil, err
	}
	if err := e.saveState(c); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// writeBundle writes the OCI spec to the container directory, which is
// the runc bundle.
func (e *Engine) writeBundle(c *Container) error {
	spec, err := specFor(c)
	if err != nil {
		return err
	}
	// runc passes CRIU this configuration file, which ckpt writes for a
	// checkpoint or restore only (setCRIUConfig).
	spec.Annotations = map[string]string{"org.criu.config": e.criuConfigPath(c.ID)}
	return writeSpec(filepath.Join(e.containerDir(c.ID), "config.json"), spec)
}

// namesCRIUConfig reports whether c's bundle names its CRIU configuration
// file, as those of this ckpt do: runc took the bundle's annotations when
// it created or restored the container.
func (e *Engine) namesCRIUConfig(c *Container) bool {
	data, err := os.ReadFile(filepath.Join(e.containerDir(c.ID), "config.json"))
	if err != nil {
		return false
	}
	var spec specs.Spec
	return json.Unmarshal(data, &spec) == nil && spec.Annotations["org.criu.config"] == e.criuConfigPath(c.ID)
}

func writeSpec(path string, spec *specs.Spec) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode OCI spec: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("write OCI spec: %w", err)
	}
	return nil
}

// removeArtifacts deletes runc state (after unmounting what runc left),
// the container's cgroups, the storage container, the network namespace
// and the state directory of a container, ignoring what is already gone.
func (e *Engine) removeArtifacts(c *Container) error {
	var errs []error
	if err := e.deleteRuntime(c); err != nil {
		errs = append(errs, err)
	}
	if err := e.removeCgroups(c); err != nil {
		errs = append(errs, err)
	}
	id := c.ID
	if s, err := e.storeOpen(); err == nil {
		if _, err := s.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
			errs = append(errs, fmt.Errorf("unmount container layer: %w", err))
		}
		if err := s.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
			errs = append(errs, fmt.Errorf("delete storage container: %w", err))
		}
	} else {
		errs = append(errs, err)
	}
	if err := removeNetns(e.netnsPath(id)); err != nil {
		errs = append(errs, err)
	}
	if err := fsutil.RemoveAll(e.containerDir(id)); err != nil {
		errs = append(errs, fmt.Errorf("remove state directory: %w", err))
	}
	if err := e.removeTransient(id); err != nil {
		errs = append(errs, fmt.Errorf("remove transient images: %w", err))
	}
	e.pruneShared()
	return errors.Join(errs...)
}

// waitExit polls until the container is no longer running or timeout
// passes, and returns its latest state.
func (e *Engine) waitExit(ctx context.Context, id string, timeout time.Duration) (*Container, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := e.loadState(id)
		if err != nil {
			return nil, err
		}
		if c.Status != StatusRunning || time.Now().After(deadline) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Settled returns the state of container ref once it no longer runs and
// no operation is under way on it, so that a container a dump stopped
// reads checkpointed, not exited: what an attached run reports at the end.
func (e *Engine) Settled(ctx context.Context, ref string) (*Container, error) {
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	for {
		if c.Status != StatusRunning {
			j, err := readOpRecord(filepath.Join(e.containerDir(c.ID), opFile))
			if err != nil || !j.ownerAlive() {
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if c, err = e.loadState(c.ID); err != nil {
			return nil, err
		}
	}
}

// Stop sends SIGTERM to the container's init, waits up to timeout (10s if
// zero) for it to exit, then sends SIGKILL. Stopping a container that is
// not running is not an error.
func (e *Engine) Stop(ctx context.Context, ref string, timeout time.Duration) (_ *Container, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("stop %s: %w", ref, err)
		}
	}()
	if err := requireRoot(); err != nil {
		return nil, err
	}
	c, l, err := e.lock(ctx, ref, "stop")
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	return e.stopLocked(ctx, c, timeout)
}

func (e *Engine) stopLocked(ctx context.Context, c *Container, timeout time.Duration) (*Container, error) {
	if c.Status != StatusRunning {
		return c, nil
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if _, err := runcTool(ctx, e.runc("").killArgs(c.ID, int(syscall.SIGTERM), false), ""); err != nil {
		if x, _ := e.loadState(c.ID); x == nil || x.Status == StatusRunning {
			return nil, err
		}
	}
	x, err := e.waitExit(ctx, c.ID, timeout)
	if err != nil {
		return nil, err
	}
	if x.Status == StatusRunning {
		_, _ = runcTool(ctx, e.runc("").killArgs(c.ID, int(syscall.SIGKILL), false), "")
		if x, err = e.waitExit(ctx, c.ID, 10*time.Second); err != nil {
			return nil, err
		}
		if x.Status == StatusRunning {
			return nil, fmt.Errorf("container %s did not exit after SIGKILL", c.Name)
		}
	}
	if err := e.saveState(x); err != nil {
		return nil, err
	}
	return x, nil
}

// Kill sends signal sig to the container's init process.
func (e *Engine) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	if err := requireRoot(); err != nil {
		return err
	}
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return err
	}
	if c.Status != StatusRunning {
		return fmt.Errorf("kill %s: %w: container is %s", ref, ErrState, c.Status)
	}
	if _, err := runcTool(ctx, e.runc("").killArgs(c.ID, int(sig), false), ""); err != nil {
		return fmt.Errorf("kill %s: %w", ref, err)
	}
	return nil
}

// Remove deletes a container: runc state, storage container, state
// directory, logs and checkpoint images. A running container is refused
// unless force, which kills it first.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("remove %s: %w", ref, err)
		}
	}()
	if err := requireRoot(); err != nil {
		return err
	}
	c, l, err := e.lock(ctx, ref, "rm")
	if err != nil {
		return err
	}
	defer l.Unlock()
	if c.Status == StatusRunning {
		if !force {
			return fmt.Errorf("%w: container %s is running (stop it first or use --force)", ErrState, c.Name)
		}
		if _, err := e.stopLocked(ctx, c, time.Millisecond); err != nil {
			return err
		}
	}
	return e.removeArtifacts(c)
}

// Exec runs cmd inside the running container (runc exec) and returns its
// exit code. A non-zero exit code is not an error; failing to start it is.
func (e *Engine) Exec(ctx context.Context, ref string, cmd []string, o *ExecOptions) (int, error) {
	if o == nil {
		o = &ExecOptions{}
	}
	if err := requireRoot(); err != nil {
		return -1, err
	}
	if len(cmd) == 0 {
		return -1, errors.New("exec: no command given")
	}
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", ref, err)
	}
	if c.Status != StatusRunning {
		return -1, fmt.Errorf("exec in %s: %w: container is %s", ref, ErrState, c.Status)
	}
	if err := e.lookExec(c, cmd[0], o); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", ref, err)
	}
	var u *User
	if o.User != "" {
		if u, err = resolveUser(c.Rootfs, o.User); err != nil {
			return -1, fmt.Errorf("exec in %s: %w", ref, err)
		}
	}
	argv := e.runc("").execArgs(c.ID, o, cmd)
	if u != nil {
		// runc exec --user keeps the container's additional groups; a
		// process file gives the user's own, as podman does.
		path, err := e.execProcessFile(c, o, u, cmd)
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", ref, err)
		}
		defer os.Remove(path)
		argv = e.runc("").execProcessArgs(c.ID, path)
	}
	err = runExec(ctx, argv, o)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", ref, err)
	}
	return 0, nil
}

// runExec runs `runc exec` with o's stdio; see [ExecOptions.Signals].
func runExec(ctx context.Context, argv []string, o *ExecOptions) error {
	if o.Signals == nil || o.Terminal {
		// With a terminal, runc stays in the terminal's foreground group:
		// it sets the raw mode and its pty's line discipline makes Ctrl-C
		// the process' SIGINT, so the caller's signals need no forwarding.
		x := exec.CommandContext(ctx, argv[0], argv[1:]...)
		if f, ok := o.Stdin.(*os.File); o.Terminal && (!ok || !isTerminal(f)) {
			return execOnPTY(x, o.Stdin, o.Stdout)
		}
		x.Stdin, x.Stdout, x.Stderr = o.Stdin, o.Stdout, o.Stderr
		return x.Run()
	}
	x := exec.Command(argv[0], argv[1:]...)
	x.Stdin, x.Stdout, x.Stderr = o.Stdin, o.Stdout, o.Stderr
	// In a process group of its own, runc gets a terminal's Ctrl-C once,
	// through the caller, not twice; unless it reads the terminal, which a
	// background group may not.
	if f, ok := o.Stdin.(*os.File); !ok || !isTerminal(f) {
		x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := x.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-o.Signals:
				_ = x.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := x.Wait()
	close(done)
	return err
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// execProcessFile writes the OCI process of an exec as user u: the
// container's process (capabilities, environment, directory) with cmd, u
// and o's environment and directory.
func (e *Engine) execProcessFile(c *Container, o *ExecOptions, u *User, cmd []string) (string, error) {
	spec, err := readSpec(filepath.Join(e.containerDir(c.ID), "config.json"))
	if err != nil {
		return "", err
	}
	if spec.Process == nil {
		return "", fmt.Errorf("the container's OCI spec has no process")
	}
	p := *spec.Process
	p.Args, p.Terminal, p.ConsoleSize = cmd, o.Terminal, nil
	p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	p.Env = mergeEnvList(p.Env, o.Env)
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	data, err := json.Marshal(&p)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(e.containerDir(c.ID), "exec-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// mergeEnvList returns base with each K=V of add replacing base's K or
// appended (runc exec --env does the same).
func mergeEnvList(base, add []string) []string {
	out := append([]string{}, base...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(x string) bool { return strings.HasPrefix(x, k+"=") })
		if i >= 0 {
			out[i] = kv
			continue
		}
		out = append(out, kv)
	}
	return out
}

// LogPath returns the path of the container's output log.
func (e *Engine) LogPath(ctx context.Context, ref string) (string, error) {
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return "", err
	}
	return filepath.Join(e.containerDir(c.ID), logFile), nil
}

// Logs copies the container's output (stdout and stderr, as written) to w.
// With follow it keeps copying until the container stops running or ctx
// is done. [Engine.ReadLogs] selects lines.
func (e *Engine) Logs(ctx context.Context, ref string, w io.Writer, follow bool) error {
	return e.ReadLogs(ctx, ref, w, &LogOptions{Follow: follow, Tail: -1})
}
