package engine

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/volumes"
)

// podmanConfig holds the few fields of libpod's ContainerConfig an import
// reads.
type podmanConfig struct {
	Name            string `json:"name"`
	ID              string `json:"id"`
	RootfsImageID   string `json:"rootfsImageID"`
	RootfsImageName string `json:"rootfsImageName"`
	NamedVolumes    []struct {
		Name    string   `json:"volumeName"`
		Dest    string   `json:"dest"`
		Options []string `json:"options"`
	} `json:"namedVolumes"`
	CreateNetNS bool `json:"createNetNS"`
	Stdin       bool `json:"stdin"`
}

// podmanSpec holds the parts of spec.dump an import reads: the process'
// command and environment, and the mount list, to learn which
// destinations were bind mounts the engine provides and which were the
// user's (their sources are only named in errors, never mounted).
type podmanSpec struct {
	Process *struct {
		Capabilities *struct {
			Bounding []string `json:"bounding"`
		} `json:"capabilities"`
		Args     []string `json:"args"`
		Env      []string `json:"env"`
		Cwd      string   `json:"cwd"`
		Terminal bool     `json:"terminal"`
		User     struct {
			UID            uint32   `json:"uid"`
			GID            uint32   `json:"gid"`
			AdditionalGids []uint32 `json:"additionalGids"`
		} `json:"user"`
	} `json:"process"`
	Hostname string `json:"hostname"`
	Linux    *struct {
		MaskedPaths []string `json:"maskedPaths"`
		Resources   *struct {
			Memory *struct {
				Limit *int64 `json:"limit"`
			} `json:"memory"`
		} `json:"resources"`
		Namespaces []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"namespaces"`
	} `json:"linux"`
	Mounts []struct {
		Destination string   `json:"destination"`
		Type        string   `json:"type"`
		Source      string   `json:"source"`
		Options     []string `json:"options"`
	} `json:"mounts"`
}

// hasNamespace reports whether the spec gives the container a namespace
// of type typ of its own.
func (ps *podmanSpec) hasNamespace(typ string) bool {
	for _, ns := range ps.Linux.Namespaces {
		if ns.Type == typ {
			return true
		}
	}
	return false
}

// runTmpfs is the one tmpfs mount an imported container may have beyond
// the engine's own: containerd's default spec mounts one at /run.
const runTmpfs = "/run"

// podmanProvided are the bind mounts podman provides itself; an import
// provides them from the new container's directory.
var podmanProvided = map[string]bool{
	"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true,
	"/dev/shm": true, "/run/.containerenv": true,
}

// readPodmanRecord reads a podman archive's record from its config.dump
// (cfg, libpod's ContainerConfig) and the staged spec.dump.
func readPodmanRecord(staging string, cfg []byte) (*importRecord, error) {
	var pc podmanConfig
	if err := json.Unmarshal(cfg, &pc); err != nil {
		return nil, fmt.Errorf("%w: decode config.dump: %w", format.ErrFormat, err)
	}
	ps, err := readSpecDump(staging)
	if err != nil {
		return nil, err
	}
	rec := specRecord(ps)
	rec.Name, rec.ID, rec.Image, rec.ImageID = pc.Name, pc.ID, pc.RootfsImageName, pc.RootfsImageID
	rec.OpenStdin = pc.Stdin
	dests := map[string]bool{}
	for _, v := range pc.NamedVolumes {
		if !format.ValidVolumeName(v.Name) {
			return nil, fmt.Errorf("%w: config.dump: invalid volume name %q", format.ErrFormat, v.Name)
		}
		if err := (volumes.BindMount{Source: "/", Destination: v.Dest}).Validate(); err != nil {
			return nil, fmt.Errorf("%w: config.dump: volume %s: %w", format.ErrFormat, v.Name, err)
		}
		ro := false
		for _, o := range v.Options {
			ro = ro || o == "ro"
		}
		rec.Volumes = append(rec.Volumes, Mount{Type: "volume", Name: v.Name, Destination: v.Dest, ReadOnly: ro})
		dests[v.Dest] = true
	}
	for _, m := range ps.Mounts {
		switch {
		case (m.Type == "bind" && podmanProvided[m.Destination] && !dests[m.Destination]) ||
			(m.Type == "cgroup" && m.Destination == "/sys/fs/cgroup") ||
			(m.Type == "tmpfs" && filepath.Clean(m.Destination) == runTmpfs):
			rec.Extra = append(rec.Extra, m.Destination)
		case m.Type == "bind" && !dests[m.Destination]:
			b := volumes.BindMount{Source: m.Source, Destination: m.Destination}
			if slices.Contains(m.Options, "ro") {
				b.Options = []string{"ro"}
			}
			if err := b.Validate(); err != nil {
				return nil, fmt.Errorf("%w: spec.dump: %w", format.ErrFormat, err)
			}
			rec.Binds = append(rec.Binds, b)
		}
	}
	if err := rec.check(); err != nil {
		return nil, err
	}
	return rec, nil
}

// readSpecDump reads the staged spec.dump of a legacy archive.
func readSpecDump(staging string) (*podmanSpec, error) {
	specData, err := readSmall(filepath.Join(staging, format.SpecName))
	if err != nil {
		return nil, fmt.Errorf("read spec.dump: %w", err)
	}
	var ps podmanSpec
	if err := json.Unmarshal(specData, &ps); err != nil {
		return nil, fmt.Errorf("%w: decode spec.dump: %w", format.ErrFormat, err)
	}
	if ps.Process == nil {
		return nil, fmt.Errorf("%w: spec.dump has no process", format.ErrFormat)
	}
	return &ps, nil
}

// specRecord is the record of what spec.dump's process section and
// memory limit say (the engine's own records hold the same fields).
func specRecord(ps *podmanSpec) *importRecord {
	rec := &importRecord{Command: ps.Process.Args, Network: NetworkNone, Hostname: ps.Hostname, Terminal: ps.Process.Terminal}
	if ps.Linux != nil && !ps.hasNamespace("network") {
		// No network namespace of its own: the container ran in its
		// host's (podman --network host), and so do its sockets.
		rec.Network = NetworkHost
	}
	if c := ps.Process.Capabilities; c != nil {
		rec.Caps = c.Bounding
	}
	if ps.Linux != nil {
		rec.Masked = extraMasked(ps.Linux.MaskedPaths)
	}
	if cwd := ps.Process.Cwd; cwd != "/" {
		rec.WorkDir = cwd
	}
	if u := ps.Process.User; u.UID != 0 || u.GID != 0 || len(u.AdditionalGids) > 0 {
		rec.User = &User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	if l := ps.Linux; l != nil && l.Resources != nil && l.Resources.Memory != nil && l.Resources.Memory.Limit != nil {
		rec.MemoryLimit = max(*l.Resources.Memory.Limit, 0)
	}
	for _, kv := range ps.Process.Env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOSTNAME" || k == "TERM" {
			continue // the engine sets them
		}
		rec.Env = append(rec.Env, kv)
	}
	return rec
}

// stripDotSlash rewrites a tar stream whose names start with "./" (podman's
// volume tars) into the form rootfs.Apply takes: "./x" becomes "x" and
// "./" becomes ".". Everything else is copied as it is; Apply checks it.
func stripDotSlash(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(r), tar.NewWriter(pw)
		err := func() error {
			for {
				h, err := tr.Next()
				if err == io.EOF {
					return tw.Close()
				}
				if err != nil {
					return err
				}
				h.Name = undot(h.Name)
				if h.Typeflag == tar.TypeLink {
					h.Linkname = undot(h.Linkname)
				}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		}()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func undot(name string) string {
	if name == "./" || name == "." {
		return "."
	}
	return strings.TrimPrefix(name, "./")
}
