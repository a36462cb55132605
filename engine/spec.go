package engine

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Network modes of [RunOptions.Network].
const (
	// NetworkNone gives the container a private network namespace with
	// only the loopback interface, brought up by the monitor.
	NetworkNone = "none"
	// NetworkHost shares the host's network namespace.
	NetworkHost = "host"
)

// defaultPath is the PATH of a container process unless Env sets one.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultMasked are the paths masked in every container (podman's set).
var defaultMasked = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
}

// defaultCaps is the capability set of container processes (podman's
// default set).
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_CHROOT",
}

// caps is the capability set of c's processes: defaultCaps and those an
// import granted.
func caps(c *Container) []string {
	out := slices.Clone(defaultCaps)
	for _, cp := range c.CapAdd {
		if !slices.Contains(out, cp) {
			out = append(out, cp)
		}
	}
	return out
}

// specFor generates the OCI runtime spec of a container: its own PID,
// mount, UTS (with its hostname) and IPC namespaces, a private network
// namespace unless the network is "host", the container's volumes and
// bind mounts, its user, working directory and memory limit.
func specFor(c *Container) (*specs.Spec, error) {
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("container %s has no command", c.Name)
	}
	env := []string{defaultPath, "TERM=xterm", "HOSTNAME=" + hostname(c)}
	for _, kv := range c.Env {
		if strings.HasPrefix(kv, "PATH=") {
			env[0] = kv
			continue
		}
		env = append(env, kv)
	}
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.IPCNamespace},
	}
	switch c.Network {
	case NetworkNone, "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: c.NetNS})
	case NetworkHost:
	default:
		return nil, fmt.Errorf("unknown network mode %q (want none or host)", c.Network)
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: c.Command,
			Env:  env,
			Cwd:  workDir(c),
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(c),
				Effective: caps(c),
				Permitted: caps(c),
			},
		},
		Root:     &specs.Root{Path: c.Rootfs},
		Hostname: hostname(c),
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces:  ns,
			CgroupsPath: cgroupsPath(c),
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths: slices.Clone(defaultMasked),
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	s.Process.Terminal, s.Process.ConsoleSize = c.Terminal, c.consoleSize
	s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, extraMasked(c.MaskedPaths)...)
	if c.User != nil {
		s.Process.User = specs.User{UID: c.User.UID, GID: c.User.GID, AdditionalGids: c.User.AdditionalGids}
	}
	if c.MemoryLimit > 0 {
		limit := c.MemoryLimit
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	for _, m := range c.Mounts {
		if m.Type == "cgroup" {
			// Imported podman checkpoints have /sys/fs/cgroup mounted;
			// runc maps its controllers as CRIU external mounts.
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
				Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
			continue
		}
		if m.Type == "tmpfs" {
			// containerd's default spec has a tmpfs at /run, whose
			// contents CRIU restores from its images.
			s.Mounts = append(s.Mounts, specs.Mount{Destination: runTmpfs, Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}})
			continue
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: filepath.Clean(m.Destination), Type: "bind", Source: m.Source, Options: opts,
		})
	}
	return s, nil
}

// extraMasked returns the paths of masked that the engine's default set
// does not mask already and that it may mask: clean absolute paths under
// /proc or /sys. Masking only hides more from the container, but an
// archive's list is still not taken as it is.
func extraMasked(masked []string) []string {
	var out []string
	for _, p := range masked {
		ok := path.IsAbs(p) && path.Clean(p) == p && (strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/"))
		if ok && !slices.Contains(defaultMasked, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// consoleBox is a terminal size for the spec, nil if either is unknown.
func consoleBox(rows, cols uint16) *specs.Box {
	if rows == 0 || cols == 0 {
		return nil
	}
	return &specs.Box{Height: uint(rows), Width: uint(cols)}
}

func hostname(c *Container) string {
	if c.Hostname != "" {
		return c.Hostname
	}
	return c.ID[:12]
}

func workDir(c *Container) string {
	if c.WorkDir != "" {
		return c.WorkDir
	}
	return "/"
}

// cgroupsPath returns c's cgroup path: the one recorded, or /ckpt/<id>,
// which an older ckpt gave every container.
func cgroupsPath(c *Container) string {
	if c.CgroupsPath != "" {
		return c.CgroupsPath
	}
	return "/ckpt/" + c.ID
}
