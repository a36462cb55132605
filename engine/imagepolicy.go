package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
func imageOptions(hostNet bool, mounts *criuimg.MountPolicy) *format.ImageOptions {
	ns := []string{criuimg.NsPID, criuimg.NsIPC, criuimg.NsUTS, criuimg.NsMnt}
	if !hostNet {
		ns = append(ns, criuimg.NsNet)
	}
	return &format.ImageOptions{Caps: grantedCaps, Namespaces: ns, Mounts: mounts}
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
