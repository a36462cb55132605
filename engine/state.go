package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is a container's life-cycle state.
type Status string

// Container states.
const (
	// StatusCreated: the storage container and bundle exist, not yet started.
	StatusCreated Status = "created"
	// StatusRunning: the container's init process runs under a monitor.
	StatusRunning Status = "running"
	// StatusExited: the container's init process has exited.
	StatusExited Status = "exited"
	// StatusCheckpointed: the container was checkpointed and stopped; its
	// CRIU images are in CheckpointDir and it can be restored.
	StatusCheckpointed Status = "checkpointed"
)

// stateVersion is the version of state.json written by this engine.
const stateVersion = 1

// Container is a container's persistent state, stored as
// Root/containers/<id>/state.json and replaced atomically on every change.
type Container struct {
	// Version of this record's layout.
	Version int `json:"version"`
	// ID is the container's unique 64-hex-digit ID (also the runc and
	// storage container ID).
	ID string `json:"id"`
	// Name is the container's unique name.
	Name string `json:"name"`
	// Image is the image name given to Run; ImageID its resolved ID.
	Image   string `json:"image"`
	ImageID string `json:"image_id"`
	// Command is the process' argv.
	Command []string `json:"command"`
	// Env holds the process' environment (K=V).
	Env []string `json:"env,omitempty"`
	// Entrypoint is the leading part of Command that run --entrypoint
	// gave (recorded for inspect; Command holds the whole argv).
	Entrypoint []string `json:"entrypoint,omitempty"`
	// User is the process' user (run --user), nil for root.
	User *User `json:"user,omitempty"`
	// WorkDir is the process' working directory, "" for /.
	WorkDir string `json:"workdir,omitempty"`
	// Hostname is the container's host name, "" for the first 12 digits
	// of its ID.
	Hostname string `json:"hostname,omitempty"`
	// MemoryLimit is the cgroup memory limit in bytes (the OCI
	// linux.resources.memory.limit), 0 for none.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// CapAdd are the capabilities the container holds beyond the
	// engine's default set, granted by restore --cap-add of an archive
	// whose processes held them.
	CapAdd []string `json:"cap_add,omitempty"`
	// MaskedPaths are paths masked beyond the engine's default set, from
	// an imported archive (only under /proc and /sys: see extraMasked).
	MaskedPaths []string `json:"masked_paths,omitempty"`
	// Network is "none" (private netns with loopback) or "host".
	Network string `json:"network"`
	// NetNS is the pinned network namespace the container joins (network
	// "none"), under RunRoot/netns.
	NetNS string `json:"netns,omitempty"`
	// CgroupsPath is the container's cgroup path (the OCI
	// linux.cgroupsPath), /ckpt-<hash of Root>/<id>; empty in the records
	// of an older ckpt, whose containers keep /ckpt/<id>. An import never
	// takes it from the archive.
	CgroupsPath string `json:"cgroups_path,omitempty"`
	// Mounts are the volumes and bind mounts given to Run.
	Mounts []Mount `json:"mounts,omitempty"`
	// AutoRemove removes the container once it has exited (run --rm).
	AutoRemove bool `json:"auto_remove,omitempty"`
	// OpenStdin keeps the container's stdin open (run -i); without it the
	// container reads EOF, also after a restore.
	OpenStdin bool `json:"open_stdin,omitempty"`
	// Terminal: the process has a terminal (run -t), held by the monitor.
	Terminal bool `json:"terminal,omitempty"`
	// consoleSize is the terminal's first window size, for the spec.
	consoleSize *specs.Box
	// Rootfs is the mounted container layer (the OCI root.path).
	Rootfs string `json:"rootfs"`
	// Status is the life-cycle state (see [Status]).
	Status Status `json:"status"`
	// PID is the init process' host PID while running.
	PID int `json:"pid,omitempty"`
	// MonitorPID is the pid of the monitor process of the current run.
	MonitorPID int `json:"monitor_pid,omitempty"`
	// ExitCode is the init process' exit status once exited (128+signal
	// if killed; -1 if unknown because its monitor vanished).
	ExitCode int `json:"exit_code"`
	// CreatedAt, StartedAt and FinishedAt are life-cycle times.
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// CheckpointedAt is the time of the last successful checkpoint and
	// RestoredAt of the last successful restore.
	CheckpointedAt time.Time `json:"checkpointed_at,omitzero"`
	RestoredAt     time.Time `json:"restored_at,omitzero"`
	// CheckpointTCP records that the last checkpoint included established
	// TCP connections (restore then needs --tcp-established or --tcp-close).
	CheckpointTCP bool `json:"checkpoint_tcp,omitempty"`
	// ImageDir is where the CRIU images of a checkpointed container are
	// when they are not in its checkpoint directory: an export keeps them
	// on a tmpfs (see [Engine.TmpDir]) until the container is restored or
	// removed, or the host reboots.
	ImageDir string `json:"image_dir,omitempty"`
	// PreCheckpoint records the last pre-checkpoint (checkpoint -P),
	// whose images stay in the container's pre-checkpoint directory as
	// the parent of the next --with-previous checkpoint (or of the next
	// -P, which adds a level to the chain); nil if none. Its Parent
	// records the levels below it, kept in pre-checkpoint.<level>.
	PreCheckpoint *PreCheckpointRecord `json:"pre_checkpoint,omitempty"`
}

// PreCheckpointRecord describes a container's last pre-checkpoint, what a
// final checkpoint's format.Parent refers to.
type PreCheckpointRecord struct {
	// Manifest is the digest of the pre-checkpoint archive's manifest, or
	// empty for a pre-checkpoint taken in place (without an archive).
	Manifest format.Digest `json:"manifest,omitempty"`
	// Images is the image-set digest of the pre-checkpoint's images
	// (format.ImagesDigest).
	Images format.Digest `json:"images"`
	// At is when it was taken.
	At time.Time `json:"at"`
	// Method is how it was taken: PreCopyPreDump (CRIU pre-dump with
	// memory tracking) or PreCopyDedup (a full dump; empty in records
	// written before the method was recorded). The final checkpoint
	// follows the same method.
	Method PreCopyMethod `json:"method,omitempty"`
	// Parent is the pre-checkpoint this one was deduplicated against (the
	// level below it in the chain, kept in pre-checkpoint.<level>), nil
	// for the first level, a full dump. Only PreCopyDedup levels chain.
	Parent *PreCheckpointRecord `json:"parent,omitempty"`
}

// Mount is a volume or bind mount of a container.
type Mount struct {
	// Type is "volume" (named volume under Root/volumes) or "bind"; an
	// imported container may also have "cgroup" (/sys/fs/cgroup) and
	// "tmpfs" (only at /run, containerd's).
	Type string `json:"type"`
	// Name is the volume's name (Type "volume").
	Name string `json:"name,omitempty"`
	// Source is the host directory mounted.
	Source string `json:"source"`
	// Destination is the path inside the container.
	Destination string `json:"destination"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// exitRecord is written by the monitor when the container's init exits. It
// is separate from state.json so the monitor never needs the container
// lock; Load merges it when its MonitorPID matches the state's.
type exitRecord struct {
	MonitorPID int       `json:"monitor_pid"`
	ExitCode   int       `json:"exit_code"`
	FinishedAt time.Time `json:"finished_at"`
}

const (
	stateFile = "state.json"
	exitFile  = "exit.json"
	lockFile  = "lock"
	logFile   = "ctr.log"
)

func (e *Engine) saveState(c *Container) error {
	c.Version = stateVersion
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(e.containerDir(c.ID), stateFile), data, 0o600); err != nil {
		return fmt.Errorf("save state of %s: %w", c.Name, err)
	}
	return nil
}

// loadState reads a container's state by full ID and merges the monitor's
// exit record and liveness into it.
func (e *Engine) loadState(id string) (*Container, error) {
	dir := e.containerDir(id)
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrUnknownContainer, id)
		}
		return nil, fmt.Errorf("read state: %w", err)
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode state of %s: %w", id, err)
	}
	if c.Status == StatusRunning {
		if x, ok := readExit(dir); ok && x.MonitorPID == c.MonitorPID {
			c.Status, c.ExitCode, c.FinishedAt, c.PID = StatusExited, x.ExitCode, x.FinishedAt, 0
		} else if c.MonitorPID > 0 && !alive(c.MonitorPID) {
			// The monitor vanished without recording an exit (killed, or
			// the host rebooted): the container cannot be running.
			if c.PID <= 0 || !alive(c.PID) {
				c.Status, c.ExitCode, c.PID = StatusExited, -1, 0
			}
		}
	}
	return &c, nil
}

func readExit(dir string) (exitRecord, bool) {
	var x exitRecord
	data, err := os.ReadFile(filepath.Join(dir, exitFile))
	if err != nil || json.Unmarshal(data, &x) != nil {
		return x, false
	}
	return x, true
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, err := procStat(pid, 3)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	return state != "Z" && state != "X"
}

// List returns every container, oldest first. It first reconciles what
// ckpt processes that were killed left (journal.go): imports, and
// operations on containers whose lock is free.
func (e *Engine) List(ctx context.Context) ([]*Container, error) {
	e.reconcileImports()
	return e.list(ctx, true)
}

// list returns every container, oldest first, each reconciled first if
// reconcile is set.
func (e *Engine) list(ctx context.Context, reconcile bool) ([]*Container, error) {
	ents, err := os.ReadDir(e.containersDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for _, d := range ents {
		if !d.IsDir() {
			continue
		}
		if reconcile {
			e.reconcile(d.Name())
		}
		c, err := e.loadState(d.Name())
		if err != nil {
			if errors.Is(err, ErrUnknownContainer) {
				continue // being created or removed
			}
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Inspect returns the container named by ref: a name, a full ID or a
// unique ID prefix.
func (e *Engine) Inspect(ctx context.Context, ref string) (*Container, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty name", ErrUnknownContainer)
	}
	all, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	var prefix []*Container
	for _, c := range all {
		if c.ID == ref || c.Name == ref {
			return c, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			prefix = append(prefix, c)
		}
	}
	switch len(prefix) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrUnknownContainer, ref)
	case 1:
		return prefix[0], nil
	}
	return nil, fmt.Errorf("%w: %s matches %d containers", ErrAmbiguous, ref, len(prefix))
}

// Latest returns the most recently created container.
func (e *Engine) Latest(ctx context.Context) (*Container, error) {
	all, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: there are no containers", ErrUnknownContainer)
	}
	return all[len(all)-1], nil
}

// lockRunning checks the host (root, CRIU, runc), locks the container for
// purpose and requires it to be running. The caller unlocks.
func (e *Engine) lockRunning(ctx context.Context, ref, purpose string) (*Container, *fsutil.Lock, error) {
	if err := e.preflight(ctx); err != nil {
		return nil, nil, err
	}
	c, l, err := e.lock(ctx, ref, purpose)
	if err != nil {
		return nil, nil, err
	}
	if c.Status != StatusRunning {
		l.Unlock()
		return nil, nil, fmt.Errorf("%w: container %s is %s, not running", ErrState, c.Name, c.Status)
	}
	return c, l, nil
}

// lock takes the container's exclusive operation lock without waiting and
// reloads its state under the lock. The caller must Unlock.
func (e *Engine) lock(ctx context.Context, ref, purpose string) (*Container, *fsutil.Lock, error) {
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	l, err := fsutil.TryLock(filepath.Join(e.containerDir(c.ID), lockFile), purpose)
	if err != nil {
		if errors.Is(err, fsutil.ErrLocked) {
			if j, jerr := readOpRecord(filepath.Join(e.containerDir(c.ID), opFile)); jerr == nil && !j.ownerAlive() {
				return nil, nil, fmt.Errorf("%w: %s: the %s was killed, and its runc or monitor is still finishing what it began: retry in a moment", ErrBusy, c.Name, j.owner())
			}
			return nil, nil, fmt.Errorf("%w: %s: another ckpt operation is in progress (%v)", ErrBusy, c.Name, err)
		}
		return nil, nil, err
	}
	// What a killed operation left is reconciled before anything else.
	if err := e.reconcileLocked(c.ID); err != nil {
		l.Unlock()
		return nil, nil, err
	}
	c, err = e.loadState(c.ID)
	if err != nil {
		l.Unlock()
		return nil, nil, err
	}
	e.sweepContainer(c.ID)
	return c, l, nil
}
