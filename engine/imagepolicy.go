package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// grantedCaps is the capability mask of defaultCaps, the most any
// container process of this engine holds.
var grantedCaps = func() uint64 {
	m, err := criuimg.CapMask(defaultCaps)
	if err != nil {
		panic(err)
	}
	return m
}()

// imageOptions are the checks an import makes of the CRIU images before
// CRIU (a root process that does what they say) sees them, beyond the
// ones every reader makes: no thread with capabilities outside
// defaultCaps, no task in the dumping CRIU's PID, IPC, UTS, mount or
// (unless hostNet) network namespace, which CRIU would restore in the
// host's, and, once the spec exists, no mount the spec does not declare.
func imageOptions(hostNet bool, mounts *criuimg.MountPolicy, capAdd []string) *format.ImageOptions {
	ns := []string{criuimg.NsPID, criuimg.NsIPC, criuimg.NsUTS, criuimg.NsMnt}
	if !hostNet {
		ns = append(ns, criuimg.NsNet)
	}
	m := grantedCaps
	if add, err := criuimg.CapMask(capAdd); err == nil {
		m |= add // names were checked by checkCapAdd
	}
	return &format.ImageOptions{Caps: m, Namespaces: ns, Mounts: mounts}
}

// checkCapAdd checks the capabilities granted with ImportOptions.CapAdd
// against those the archive's container held (need, from its record):
// every one needed beyond defaultCaps must be granted, and only known
// names may be. It returns the granted names in CAP_X form ("net_raw"
// grants CAP_NET_RAW, as podman's --cap-add takes it).
func checkCapAdd(need, granted []string) ([]string, error) {
	var norm []string
	for _, c := range granted {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(norm, c) {
			norm = append(norm, c)
		}
	}
	if _, err := criuimg.CapMask(norm); err != nil {
		return nil, fmt.Errorf("%w: cap-add: %w", ErrOptions, err)
	}
	granted = norm
	var missing []string
	for _, c := range need {
		if !slices.Contains(defaultCaps, c) && !slices.Contains(granted, c) && !slices.Contains(missing, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return granted, nil
	}
	return nil, remedy(fmt.Errorf("%w: the checkpoint's processes held capabilities this engine's containers do not have by default: %s",
		ErrHostResource, strings.Join(missing, ", ")), RemedyCapAdd, strings.Join(missing, ","))
}

// bundleMountPolicy returns the mount policy of the spec in the bundle of
// container c, as runc hands its mounts to CRIU.
func (e *Engine) bundleMountPolicy(c *Container) (*criuimg.MountPolicy, error) {
	b, err := os.ReadFile(filepath.Join(e.containerDir(c.ID), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read OCI spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode OCI spec: %w", err)
	}
	rs := &criuimg.RuncSpec{Exists: func(p string) bool { _, err := os.Stat(p); return err == nil }}
	if s.Linux != nil {
		rs.MaskedPaths, rs.ReadonlyPaths = s.Linux.MaskedPaths, s.Linux.ReadonlyPaths
	}
	for _, m := range s.Mounts {
		rs.Mounts = append(rs.Mounts, criuimg.SpecMount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return criuimg.RuncMountPolicy(rs), nil
}
