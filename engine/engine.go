package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/volumes"
	"go.podman.io/storage"
	"go.podman.io/storage/types"
)

// Defaults used when the corresponding Engine field is empty.
const (
	// DefaultRoot is the engine's state directory.
	DefaultRoot = "/var/lib/ckpt"
	// DefaultRuntime is the OCI runtime, looked up in PATH.
	DefaultRuntime = "runc"
	// DefaultCRIU is the CRIU binary, looked up in PATH.
	DefaultCRIU = "criu"
	// MonitorCommand is the hidden subcommand the engine re-executes its
	// own binary with to start a container monitor (see [RunMonitor]).
	MonitorCommand = "__monitor"
)

// Version is the engine version recorded in the manifests of exported
// archives.
const Version = "0.1.0"

// Engine runs containers from a containers/storage image store under an
// OCI runtime (runc) and checkpoints and restores them with CRIU.
//
// Every field is optional: the zero value means the documented default.
// An Engine is safe for concurrent use; call [Engine.Close] when done.
type Engine struct {
	// Root holds the engine state: containers/<id>/ (state.json, the
	// bundle's config.json, ctr.log, checkpoint/) and volumes/<name>/_data.
	// Default DefaultRoot.
	Root string
	// StorageRoot is the containers/storage graph root. Default Root/storage.
	// Pointing it at podman's store (/var/lib/containers/storage) shares images.
	StorageRoot string
	// RunRoot holds runtime state that does not survive a reboot: the
	// storage run root and runc's state. Default /run/ckpt-<hash of Root>,
	// so engines with different roots never share state.
	RunRoot string
	// RuntimePath is the OCI runtime binary. Default DefaultRuntime.
	RuntimePath string
	// CRIUPath is the CRIU binary the engine checks (version, features).
	// Default DefaultCRIU. runc 1.1 ignores its --criu flag and runs the
	// "criu" found in PATH, so that must be the same binary.
	CRIUPath string
	// StorageDriver is the containers/storage graph driver. Default
	// "overlay", falling back to "vfs" where overlay does not work.
	StorageDriver string
	// TmpDir is a directory on a tmpfs for transient CRIU images: those an
	// export dumps and an import unpacks. They go there only when it and
	// the host's available memory have room for them. Empty (or not a
	// tmpfs): the container directory and Root/import, i.e. the page cache,
	// which on the machines measured took CRIU's writes faster than a
	// tmpfs (bench/RESULTS.md).
	TmpDir string
	// MonitorPath is the executable started as a container monitor with
	// the arguments [MonitorCommand] and a JSON configuration; it must call
	// [RunMonitor]. Default: the running executable (os.Executable).
	MonitorPath string
	// CRIULimits bound every `runc checkpoint` and `runc restore` (and the
	// CRIU under them) in time and log size; the zero value means the
	// defaults (DefaultCRIUTimeout plus DefaultCRIUTimeoutPerGiB per GiB
	// of work, DefaultCRIUMaxLog).
	CRIULimits CRIULimits

	mu    sync.Mutex
	store storage.Store // opened lazily by storeOpen
	// runLock is a shared lock on Root/runroot.lock, held while the store
	// is open: Close removes an idle default run root only when no other
	// engine process holds it.
	runLock *fsutil.Lock
	// memoryTrackingCheck, if set (tests only), replaces the memory
	// tracking feature check (`criu check --feature mem_dirty_track`).
	memoryTrackingCheck func(context.Context) bool
}

func (e *Engine) root() string {
	if e.Root == "" {
		return DefaultRoot
	}
	return e.Root
}

func (e *Engine) storageRoot() string {
	if e.StorageRoot == "" {
		return filepath.Join(e.root(), "storage")
	}
	return e.StorageRoot
}

// DefaultRunRoot returns the run root used for an engine whose Root is
// root: /run/ckpt-<first 12 hex digits of sha256(absolute root)>.
func DefaultRunRoot(root string) string { return "/run/ckpt-" + rootHash(root) }

// rootHash returns the first 12 hex digits of the sha256 of the absolute
// root: what tells engines with different roots apart on the host.
func rootHash(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return hex.EncodeToString(sum[:6])
}

// cgroupParent is the cgroup (in every hierarchy) below which this
// engine's containers get theirs: /ckpt-<hash of Root>, so that two
// engines restoring one archive (one container ID) never share a cgroup.
func (e *Engine) cgroupParent() string { return "/ckpt-" + rootHash(e.root()) }

func (e *Engine) runRoot() string {
	if e.RunRoot == "" {
		return DefaultRunRoot(e.root())
	}
	return e.RunRoot
}

func (e *Engine) runtimePath() string {
	if e.RuntimePath == "" {
		return DefaultRuntime
	}
	return e.RuntimePath
}

func (e *Engine) criuPath() string {
	if e.CRIUPath == "" {
		return DefaultCRIU
	}
	return e.CRIUPath
}

func (e *Engine) monitorPath() (string, error) {
	if e.MonitorPath != "" {
		return e.MonitorPath, nil
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	return p, nil
}

// runcRoot is runc's --root: per engine, so runc state is never shared.
func (e *Engine) runcRoot() string { return filepath.Join(e.runRoot(), "runc") }

// netnsPath is where a container's network namespace is pinned.
func (e *Engine) netnsPath(id string) string { return filepath.Join(e.runRoot(), "netns", id) }

func (e *Engine) containersDir() string { return filepath.Join(e.root(), "containers") }

func (e *Engine) containerDir(id string) string { return filepath.Join(e.containersDir(), id) }

func (e *Engine) volumesDir() string { return filepath.Join(e.root(), "volumes") }

// Close releases the image store. The Engine may be used again afterwards;
// the store is reopened on demand. When the engine has no container left
// and no other engine process has its store open, it removes the default
// run root (/run/ckpt-<hash>): runc's state, the storage run root and the
// network namespace pins are only ever there for containers.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store == nil {
		return nil
	}
	_, err := e.store.Shutdown(false)
	e.store = nil
	e.runLock.Unlock()
	e.runLock = nil
	e.removeIdleRunRoot()
	if err != nil {
		return fmt.Errorf("shut down storage: %w", err)
	}
	return nil
}

func (e *Engine) runRootLockPath() string { return filepath.Join(e.root(), "runroot.lock") }

// removeIdleRunRoot removes the default run root if this engine has no
// containers and no other process has the store open (runLock).
func (e *Engine) removeIdleRunRoot() {
	if e.RunRoot != "" {
		return // the caller's to keep
	}
	l, err := fsutil.TryLock(e.runRootLockPath(), "remove run root")
	if err != nil {
		return
	}
	defer l.Unlock()
	if ents, err := os.ReadDir(e.containersDir()); err == nil && len(ents) > 0 {
		return
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
	_ = fsutil.RemoveAll(e.runRoot())
}

// storeOpen opens the containers/storage store once per Engine.
func (e *Engine) storeOpen() (storage.Store, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store != nil {
		return e.store, nil
	}
	if err := os.MkdirAll(e.root(), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", e.root(), err)
	}
	rl, err := fsutil.SharedLock(e.runRootLockPath())
	if err != nil {
		return nil, err
	}
	drivers := []string{e.StorageDriver}
	if e.StorageDriver == "" {
		drivers = []string{"overlay", "vfs"}
	}
	var errs []error
	for _, d := range drivers {
		s, err := getStore(types.StoreOptions{
			GraphRoot:       e.storageRoot(),
			RunRoot:         filepath.Join(e.runRoot(), "storage"),
			GraphDriverName: d,
		})
		if err == nil {
			e.store, e.runLock = s, rl
			return s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", d, err))
	}
	rl.Unlock()
	return nil, fmt.Errorf("open storage %s: %w", e.storageRoot(), errors.Join(errs...))
}

// volumeStore is the engine's named volume store.
func (e *Engine) volumeStore() *volumes.Store {
	return &volumes.Store{Root: e.volumesDir(), InUse: func(name string) bool {
		// Not reconciled: a volume's user is whatever the records say
		// (and reconciling imports removes volumes through this store).
		list, _ := e.list(context.Background(), false)
		for _, c := range list {
			for _, m := range c.Mounts {
				if m.Type == "volume" && m.Name == name {
					return true
				}
			}
		}
		return false
	}}
}

// StorageDriverName returns the graph driver the store uses, opening the
// store if needed.
func (e *Engine) StorageDriverName(ctx context.Context) (string, error) {
	s, err := e.storeOpen()
	if err != nil {
		return "", err
	}
	return s.GraphDriverName(), nil
}

// requireRoot returns ErrNotRoot unless the process runs as root.
func requireRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// runTool runs argv with the context and returns its stdout. A non-zero
// exit becomes an *ExitError naming tool, with logPath's tail attached; a
// missing binary wraps notFound.
func runTool(ctx context.Context, tool string, argv []string, logPath string, notFound error) ([]byte, error) {
	return runToolWith(ctx, tool, argv, logPath, notFound, nil)
}

// toolOptions are what runToolWith adds to runTool.
type toolOptions struct {
	// inherit are files the tool inherits, from descriptor 3 on.
	inherit []*os.File
	// started, if set, is called once the tool runs.
	started func()
	// bounds, if set, bound a runc run that runs CRIU: it runs in its
	// own process group, which is killed past them (runBounded), and ctx
	// ends it only with bounds.cancel.
	bounds *bounds
}

// runToolWith is runTool with the files, the hook and the bounds of o
// (nil: none).
func runToolWith(ctx context.Context, tool string, argv []string, logPath string, notFound error, o *toolOptions) ([]byte, error) {
	if o == nil {
		o = &toolOptions{}
	}
	var cmd *exec.Cmd
	if o.bounds == nil {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.ExtraFiles = o.inherit
	var killed, detail string
	var err error
	if o.bounds != nil {
		killed, detail, err = runBounded(ctx, cmd, *o.bounds, o.started)
	} else if err = cmd.Start(); err == nil {
		if o.started != nil {
			o.started()
		}
		err = cmd.Wait()
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: %w", notFound, argv[0], err)
	}
	if ee, ok := isExit(err); ok {
		x := &ExitError{Tool: tool, Code: ee.ExitCode(), LogPath: existing(logPath), Stderr: stderr.Bytes()}
		if killed != "" {
			x = killedError(tool, ee.ExitCode(), logPath, killed, detail)
			x.Stderr = stderr.Bytes()
		} else if x.LogPath != "" {
			x.LogTail = logTail(x.LogPath, 5)
		}
		if ctx.Err() != nil && killed != killedCancel {
			return nil, fmt.Errorf("%w: %w", ctx.Err(), x)
		}
		return nil, x
	}
	return nil, fmt.Errorf("run %s: %w", tool, err)
}
