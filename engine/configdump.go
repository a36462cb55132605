package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ckpt/ckpt/format"
)

// configDumpLayout is config.dump's "version" in the podman-shaped layout.
// It is a string where ckpt's older layout (the record itself) has the
// integer 1, so that a ckpt that knows only the older layout refuses the
// file (a decoding error) instead of reading podman's fields as its own.
const configDumpLayout = "2"

// configDump is config.dump as ckpt writes it: the fields of libpod's
// ContainerConfig that podman 5's import reads (pkg/checkpoint's
// CRImportCheckpoint, libpod's RestoreContainer), and ckpt's own record
// under "ckpt", which ckpt's import reads and podman ignores. podman's
// other fields (the spec, the log path, cgroup and storage settings) are
// left out: podman takes the spec from spec.dump and its defaults for the
// rest.
type configDump struct {
	Layout          string     `json:"version"`
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	RawImageName    string     `json:"RawImageName,omitempty"`
	RootfsImageID   string     `json:"rootfsImageID"`
	RootfsImageName string     `json:"rootfsImageName"`
	Command         []string   `json:"command,omitempty"`
	Stdin           bool       `json:"stdin,omitempty"`
	NamedVolumes    []podVol   `json:"namedVolumes,omitempty"`
	CreateNetNS     bool       `json:"createNetNS"`
	NetworkMode     string     `json:"networkMode,omitempty"`
	StopSignal      uint       `json:"stopSignal"`
	StopTimeout     uint       `json:"stopTimeout"`
	LogDriver       string     `json:"logDriver"`
	CreatedTime     time.Time  `json:"createdTime"`
	Runtime         string     `json:"runtime,omitempty"`
	Ckpt            *Container `json:"ckpt"`
}

// podVol is libpod's ContainerNamedVolume.
type podVol struct {
	Name    string   `json:"volumeName"`
	Dest    string   `json:"dest"`
	Options []string `json:"options,omitempty"`
}

// marshalConfigDump returns config.dump for c, run by runtime.
func marshalConfigDump(c *Container, runtime string) ([]byte, error) {
	d := configDump{
		Layout: configDumpLayout, ID: c.ID, Name: c.Name,
		RawImageName: c.Image, RootfsImageID: c.ImageID, RootfsImageName: c.Image,
		Command: c.Command, Stdin: c.OpenStdin,
		// podman makes the network namespace and names its path in the
		// restore's spec, which runc hands CRIU as the external one the
		// images expect (ckpt pins the namespace of a "none" container).
		CreateNetNS: c.Network != "host",
		StopSignal:  15, StopTimeout: 10, LogDriver: "k8s-file",
		CreatedTime: c.CreatedAt, Runtime: filepath.Base(runtime), Ckpt: c,
	}
	if c.Network == "host" {
		d.NetworkMode = "host"
	}
	for _, m := range c.Mounts {
		if m.Type != "volume" {
			continue
		}
		v := podVol{Name: m.Name, Dest: m.Destination}
		if m.ReadOnly {
			v.Options = []string{"ro"}
		}
		d.NamedVolumes = append(d.NamedVolumes, v)
	}
	return json.MarshalIndent(&d, "", "  ")
}

// decodeConfigDump returns ckpt's record from a ckpt archive's
// config.dump: the "ckpt" member of the podman-shaped layout, or the
// whole file in the older layout (version 1).
func decodeConfigDump(cfg []byte) (*Container, error) {
	var d struct {
		Layout json.RawMessage `json:"version"`
		Ckpt   json.RawMessage `json:"ckpt"`
	}
	if err := json.Unmarshal(cfg, &d); err != nil {
		return nil, fmt.Errorf("%w: decode config.dump: %w", format.ErrFormat, err)
	}
	var c Container
	switch {
	case bytes.HasPrefix(d.Layout, []byte(`"`)):
		var layout string
		if err := json.Unmarshal(d.Layout, &layout); err != nil || layout != configDumpLayout {
			return nil, fmt.Errorf("%w: config.dump has layout %s, this ckpt reads %q: restore with the ckpt that wrote it", format.ErrFormat, d.Layout, configDumpLayout)
		}
		if len(d.Ckpt) == 0 || bytes.Equal(d.Ckpt, []byte("null")) {
			return nil, fmt.Errorf("%w: config.dump holds no ckpt record (\"ckpt\")", format.ErrFormat)
		}
		if err := json.Unmarshal(d.Ckpt, &c); err != nil {
			return nil, fmt.Errorf("%w: decode config.dump's ckpt record: %w", format.ErrFormat, err)
		}
	default:
		if err := json.Unmarshal(cfg, &c); err != nil {
			return nil, fmt.Errorf("%w: decode config.dump: %w", format.ErrFormat, err)
		}
	}
	return &c, nil
}
