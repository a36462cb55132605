package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ContainerInspect is a container described as `podman inspect` describes
// one: podman's JSON names for what ckpt has, a summary of the OCI spec
// the container runs with, and ckpt's checkpoint record.
type ContainerInspect struct {
	ID      string    `json:"Id"`
	Created time.Time `json:"Created"`
	// Path and Args are the process' argv[0] and the rest.
	Path string   `json:"Path"`
	Args []string `json:"Args"`
	// State is the life-cycle state.
	State InspectState `json:"State"`
	// Image is the image's ID, ImageName the name it was given by.
	Image     string `json:"Image"`
	ImageName string `json:"ImageName"`
	// Rootfs is the mounted container layer.
	Rootfs string `json:"Rootfs"`
	// OCIConfigPath is the bundle's config.json; OCIRuntime the runtime.
	OCIConfigPath string `json:"OCIConfigPath"`
	OCIRuntime    string `json:"OCIRuntime"`
	Name          string `json:"Name"`
	// LogPath is the container's output log.
	LogPath string         `json:"LogPath"`
	Mounts  []InspectMount `json:"Mounts"`
	// Config and HostConfig summarize the OCI spec ("" and nil where the
	// bundle could not be read).
	Config     InspectConfig     `json:"Config"`
	HostConfig InspectHostConfig `json:"HostConfig"`
	// Checkpoint is ckpt's record of the container's checkpoints.
	Checkpoint InspectCheckpoint `json:"Checkpoint"`
}

// InspectState is ContainerInspect's State.
type InspectState struct {
	Status  Status `json:"Status"`
	Running bool   `json:"Running"`
	Pid     int    `json:"Pid"`
	// MonitorPid is the pid of the container's monitor (podman's
	// ConmonPid).
	MonitorPid     int       `json:"MonitorPid"`
	ExitCode       int       `json:"ExitCode"`
	StartedAt      time.Time `json:"StartedAt"`
	FinishedAt     time.Time `json:"FinishedAt"`
	Checkpointed   bool      `json:"Checkpointed"`
	CheckpointedAt time.Time `json:"CheckpointedAt"`
	Restored       bool      `json:"Restored"`
	RestoredAt     time.Time `json:"RestoredAt"`
}

// InspectMount is a mount of ContainerInspect, in podman's names.
type InspectMount struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
}

// InspectConfig is the process part of the OCI spec.
type InspectConfig struct {
	Hostname string   `json:"Hostname"`
	User     string   `json:"User"`
	Env      []string `json:"Env"`
	Cmd      []string `json:"Cmd"`
	// Entrypoint is what --entrypoint put before Cmd (images record none).
	Entrypoint []string `json:"Entrypoint"`
	WorkingDir string   `json:"WorkingDir"`
	Tty        bool     `json:"Tty"`
}

// InspectHostConfig is the host part of the OCI spec.
type InspectHostConfig struct {
	// NetworkMode is "none" (a private namespace with loopback) or "host".
	NetworkMode string `json:"NetworkMode"`
	// NetNS is the pinned network namespace of NetworkMode "none".
	NetNS        string `json:"NetNS,omitempty"`
	CgroupsPath  string `json:"CgroupsPath"`
	ReadonlyRoot bool   `json:"ReadonlyRootfs"`
	// Memory is the memory limit in bytes, 0 for none.
	Memory int64 `json:"Memory"`
	// Namespaces are the namespaces the container gets of its own.
	Namespaces []string `json:"Namespaces"`
}

// InspectCheckpoint is the container's checkpoint record.
type InspectCheckpoint struct {
	// Path is where the CRIU images of its checkpoint are (its checkpoint
	// directory, or a tmpfs an export kept them on); Present says whether
	// images are there.
	Path    string `json:"Path"`
	Present bool   `json:"Present"`
	// TCPEstablished: the checkpoint holds established TCP connections.
	TCPEstablished bool `json:"TCPEstablished"`
	// PreCheckpoint is the last pre-checkpoint (checkpoint -P), nil if none.
	PreCheckpoint *PreCheckpointRecord `json:"PreCheckpoint,omitempty"`
}

// InspectContainer describes the container named by ref (a name, a full ID
// or a unique ID prefix) as `podman inspect` does.
func (e *Engine) InspectContainer(ctx context.Context, ref string) (*ContainerInspect, error) {
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.describe(c), nil
}

// describe builds c's ContainerInspect.
func (e *Engine) describe(c *Container) *ContainerInspect {
	dir := e.containerDir(c.ID)
	x := &ContainerInspect{
		ID: c.ID, Created: c.CreatedAt, Name: c.Name,
		Image: c.ImageID, ImageName: c.Image, Rootfs: c.Rootfs,
		OCIConfigPath: filepath.Join(dir, "config.json"), OCIRuntime: e.runtimePath(),
		LogPath: filepath.Join(dir, logFile), Mounts: []InspectMount{},
		State: InspectState{
			Status: c.Status, Running: c.Status == StatusRunning, Pid: c.PID, MonitorPid: c.MonitorPID,
			ExitCode: c.ExitCode, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt,
			Checkpointed: c.Status == StatusCheckpointed, CheckpointedAt: c.CheckpointedAt,
			Restored: !c.RestoredAt.IsZero(), RestoredAt: c.RestoredAt,
		},
		Checkpoint: InspectCheckpoint{
			Path: e.CheckpointDir(c.ID), TCPEstablished: c.CheckpointTCP, PreCheckpoint: c.PreCheckpoint,
		},
	}
	if len(c.Command) > 0 {
		x.Path, x.Args = c.Command[0], c.Command[1:]
	}
	if c.ImageDir != "" {
		x.Checkpoint.Path = c.ImageDir
	}
	_, err := os.Stat(filepath.Join(x.Checkpoint.Path, "inventory.img"))
	x.Checkpoint.Present = err == nil
	for _, m := range c.Mounts {
		x.Mounts = append(x.Mounts, InspectMount{Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination, RW: !m.ReadOnly})
	}
	x.HostConfig = InspectHostConfig{NetworkMode: c.Network, NetNS: c.NetNS, CgroupsPath: c.CgroupsPath}
	if spec, err := readSpec(x.OCIConfigPath); err == nil {
		summarizeSpec(spec, x)
	} else {
		x.Config = InspectConfig{Env: c.Env, Cmd: c.Command}
	}
	// Podman's Cmd is what follows the entrypoint, and User as given.
	x.Config.Entrypoint = c.Entrypoint
	if n := len(c.Entrypoint); n > 0 && n <= len(x.Config.Cmd) {
		x.Config.Cmd = x.Config.Cmd[n:]
	}
	if c.User != nil && c.User.Spec != "" {
		x.Config.User = c.User.Spec
	}
	return x
}

func readSpec(path string) (*specs.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &s, nil
}

// summarizeSpec fills x's Config and HostConfig from the OCI spec.
func summarizeSpec(s *specs.Spec, x *ContainerInspect) {
	x.Config.Hostname = s.Hostname
	if p := s.Process; p != nil {
		x.Config.User = fmt.Sprintf("%d:%d", p.User.UID, p.User.GID)
		x.Config.Env, x.Config.Cmd, x.Config.WorkingDir, x.Config.Tty = p.Env, p.Args, p.Cwd, p.Terminal
	}
	if s.Root != nil {
		x.HostConfig.ReadonlyRoot = s.Root.Readonly
	}
	x.HostConfig.Namespaces = []string{}
	if l := s.Linux; l != nil {
		if l.Resources != nil && l.Resources.Memory != nil && l.Resources.Memory.Limit != nil {
			x.HostConfig.Memory = *l.Resources.Memory.Limit
		}
		for _, ns := range l.Namespaces {
			x.HostConfig.Namespaces = append(x.HostConfig.Namespaces, string(ns.Type))
		}
	}
}
