package engine

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/volumes"
)

// maxRecordSize bounds config.dump and spec.dump as the import reads them.
const maxRecordSize = 16 << 20

// importRecord is what an import takes from an archive: never spec.dump's
// hooks, namespaces, devices or capabilities.
type importRecord struct {
	Name, ID, Image, ImageID string
	Command, Env             []string
	Network                  string
	Volumes                  []Mount // named volumes
	Binds                    []volumes.BindMount
	Extra                    []string // destinations of engine-made mounts (podman: /etc/hosts..., containerd: a /run tmpfs)
	TCP                      bool
	// The process' identity, directory and limits (run's flags); the
	// record's Entrypoint is a prefix of Command (check).
	Entrypoint  []string
	User        *User
	WorkDir     string
	Hostname    string
	MemoryLimit int64
	// Terminal: the process has a terminal, which the restore must hand
	// over (runc restore --console-socket); OpenStdin: its stdin is open.
	Terminal, OpenStdin bool
	// Kube is the pod a kubelet checkpoint archive (CRI-O, containerd)
	// came from; Lost what of it a standalone restore leaves behind, and
	// Dropped the destinations restored as empty stand-ins without being
	// asked (the service account token).
	Kube    *format.Kube
	Lost    []string
	Dropped []string
	// OCILayer says rootfs-diff.tar is an OCI layer whose whiteouts are
	// deletions (containerd's archives).
	OCILayer bool
	// Caps are the capabilities the container's processes held, as far
	// as the record says (spec.dump's bounding set; the engine's own
	// records list only those beyond the default set).
	Caps []string
	// Masked are paths the container had masked beyond the engine's
	// default set (podman 4 masks /sys/dev/block): the restored spec masks
	// them too, as CRIU's images hold those mounts.
	Masked []string
}

// readRecord reads what the import needs from config.dump (and, for
// podman archives, spec.dump's process section).
func readRecord(staging string, legacy bool) (*importRecord, error) {
	cfg, err := readSmall(filepath.Join(staging, format.ConfigName))
	if err != nil {
		return nil, fmt.Errorf("read config.dump: %w", err)
	}
	if !legacy {
		c, err := decodeConfigDump(cfg)
		if err != nil {
			return nil, err
		}
		rec := &importRecord{
			Name: c.Name, ID: c.ID, Image: c.Image, ImageID: c.ImageID,
			Command: c.Command, Env: c.Env, Network: c.Network, TCP: c.CheckpointTCP,
			Entrypoint: c.Entrypoint, User: c.User, WorkDir: c.WorkDir, Hostname: c.Hostname, MemoryLimit: c.MemoryLimit,
			Terminal: c.Terminal, OpenStdin: c.OpenStdin, Caps: c.CapAdd, Masked: c.MaskedPaths,
		}
		for _, m := range c.Mounts {
			switch m.Type {
			case "volume":
				if !format.ValidVolumeName(m.Name) {
					return nil, fmt.Errorf("%w: config.dump: invalid volume name %q", format.ErrFormat, m.Name)
				}
				if err := (volumes.BindMount{Source: "/", Destination: m.Destination}).Validate(); err != nil {
					return nil, fmt.Errorf("%w: config.dump: volume %s: %w", format.ErrFormat, m.Name, err)
				}
				rec.Volumes = append(rec.Volumes, Mount{Type: "volume", Name: m.Name, Destination: m.Destination, ReadOnly: m.ReadOnly})
			case "cgroup":
				rec.Extra = append(rec.Extra, "/sys/fs/cgroup")
			case "tmpfs":
				if filepath.Clean(m.Destination) != runTmpfs {
					return nil, fmt.Errorf("%w: config.dump: a tmpfs mount at %q (only %s can be one)", format.ErrFormat, m.Destination, runTmpfs)
				}
				rec.Extra = append(rec.Extra, runTmpfs)
			case "bind":
				if podmanProvided[m.Destination] && filepath.Base(filepath.Dir(m.Source)) == "userdata" {
					// Provided by the engine for a container imported
					// from podman: provided again here.
					rec.Extra = append(rec.Extra, m.Destination)
					continue
				}
				b := volumes.BindMount{Source: m.Source, Destination: m.Destination}
				if m.ReadOnly {
					b.Options = []string{"ro"}
				}
				rec.Binds = append(rec.Binds, b)
			default:
				return nil, fmt.Errorf("%w: config.dump: unknown mount type %q", format.ErrFormat, m.Type)
			}
		}
		if err := rec.check(); err != nil {
			return nil, err
		}
		return rec, nil
	}
	spec, err := readSmall(filepath.Join(staging, format.SpecName))
	if err != nil {
		return nil, fmt.Errorf("read spec.dump: %w", err)
	}
	var rec *importRecord
	if k, ok := format.ReadKube(spec); ok {
		rec, err = readKubeletRecord(staging, cfg, k)
	} else {
		rec, err = readPodmanRecord(staging, cfg)
	}
	if err != nil {
		return nil, err
	}
	// containerd's rootfs diff is an OCI layer, pod or not.
	rec.OCILayer = format.LegacyEngine(spec) == format.EngineContainerd
	return rec, nil
}

// check validates a record's fields before they reach the engine.
func (r *importRecord) check() error {
	if len(r.Command) == 0 {
		return fmt.Errorf("%w: the archive records no command", format.ErrFormat)
	}
	if r.Name != "" && !nameRE.MatchString(r.Name) {
		return fmt.Errorf("%w: invalid container name %q", format.ErrFormat, r.Name)
	}
	if r.ID != "" && !idRE.MatchString(r.ID) {
		return fmt.Errorf("%w: invalid container ID %q", format.ErrFormat, r.ID)
	}
	switch r.Network {
	case "", NetworkNone, NetworkHost:
	default:
		return fmt.Errorf("%w: unknown network mode %q", format.ErrFormat, r.Network)
	}
	if len(r.Entrypoint) > len(r.Command) || !slices.Equal(r.Entrypoint, r.Command[:len(r.Entrypoint)]) {
		return fmt.Errorf("%w: the recorded entrypoint %q does not begin the command %q", format.ErrFormat, r.Entrypoint, r.Command)
	}
	if err := checkProcessOptions(&RunOptions{Command: r.Command, WorkDir: r.WorkDir, Hostname: r.Hostname, MemoryLimit: r.MemoryLimit}); err != nil {
		return fmt.Errorf("%w: %w", format.ErrFormat, err)
	}
	if r.User != nil && len(r.User.AdditionalGids) > 64 {
		return fmt.Errorf("%w: the recorded user has %d additional groups (at most 64)", format.ErrFormat, len(r.User.AdditionalGids))
	}
	for _, kv := range r.Env {
		if !strings.Contains(kv, "=") || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("%w: invalid environment entry %q", format.ErrFormat, kv)
		}
	}
	return nil
}

// readSmall reads a file of at most maxRecordSize bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", format.ErrTooLarge, filepath.Base(path), maxRecordSize)
	}
	return b, nil
}
