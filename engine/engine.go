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

	mu    sync.Mutex
	store storage.Store // opened lazily by storeOpen
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
func DefaultRunRoot(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return "/run/ckpt-" + hex.EncodeToString(sum[:6])
}

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
// the store is reopened on demand.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.store == nil {
		return nil
	}
	_, err := e.store.Shutdown(false)
	e.store = nil
	if err != nil {
		return fmt.Errorf("shut down storage: %w", err)
	}
	return nil
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
			e.store = s
			return s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", d, err))
	}
	return nil, fmt.Errorf("open storage %s: %w", e.storageRoot(), errors.Join(errs...))
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
}

// runToolWith is runTool with the files and the hook of o (nil: none).
func runToolWith(ctx context.Context, tool string, argv []string, logPath string, notFound error, o *toolOptions) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if o != nil {
		cmd.ExtraFiles = o.inherit
	}
	err := cmd.Start()
	if err == nil {
		if o != nil && o.started != nil {
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
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		x := &ExitError{Tool: tool, Code: ee.ExitCode(), LogPath: logPath, Stderr: stderr.Bytes()}
		if logPath != "" {
			x.LogTail = logTail(logPath, 5)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %w", ctx.Err(), x)
		}
		return nil, x
	}
	return nil, fmt.Errorf("run %s: %w", tool, err)
}
