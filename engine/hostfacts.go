package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// hostFacts is the host's description for a manifest (hostInfo) and its
// CPU (`criu cpuinfo dump`), found in the background while the container
// is dumped (three programs, none of which needs the container), or taken
// from the run root's cache (probeHost).
type hostFacts struct {
	done    chan struct{}
	dir     string
	host    format.Host
	cpuinfo string
	err     error
}

// probeHost starts finding the host's facts; the CPU image goes to a new
// directory in parent. They come from the run root's cache when it was
// made by the same boot with the same CRIU and runtime (hostFactsKey),
// because three programs spawned while runc and CRIU start can delay the
// dump (docs/MIGRATION.md, Measured).
func (e *Engine) probeHost(ctx context.Context, parent string) *hostFacts {
	hf := &hostFacts{done: make(chan struct{})}
	go func() {
		defer close(hf.done)
		if err := os.MkdirAll(parent, 0o700); err != nil {
			hf.err = err
			return
		}
		if hf.dir, hf.err = os.MkdirTemp(parent, "cpuinfo-"); hf.err != nil {
			return
		}
		hf.cpuinfo = filepath.Join(hf.dir, "cpuinfo.img")
		key := e.hostFactsKey()
		cache := filepath.Join(e.runRoot(), "host-facts.json")
		if host, img, ok := readHostFacts(cache, key); ok {
			if hf.err = os.WriteFile(hf.cpuinfo, img, 0o600); hf.err == nil {
				hf.host = host
				return
			}
		}
		cpu := make(chan error, 1)
		go func() {
			_, err := runTool(ctx, "criu cpuinfo dump", []string{e.criuPath(), "cpuinfo", "dump", "-D", hf.dir}, "", ErrCRIUMissing)
			cpu <- err
		}()
		hf.host, hf.err = e.hostInfo(ctx)
		if err := <-cpu; err != nil && hf.err == nil {
			hf.err = fmt.Errorf("record CPU: %w", err)
		}
		if hf.err == nil && key != "" {
			if img, err := os.ReadFile(hf.cpuinfo); err == nil {
				writeHostFacts(cache, key, hf.host, img)
			}
		}
	}()
	return hf
}

// hostFactsKey identifies what the host's facts depend on: the boot, the
// kernel, and the CRIU and runtime binaries (path, size, mtime); "" if
// any of them cannot be told.
func (e *Engine) hostFactsKey() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	key := strings.TrimSpace(string(boot)) + " " + kernelRelease()
	for _, p := range []string{e.criuPath(), e.runtimePath()} {
		path, err := exec.LookPath(p)
		if err != nil {
			return ""
		}
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		key += fmt.Sprintf(" %s:%d:%d", path, fi.Size(), fi.ModTime().UnixNano())
	}
	return key
}

// hostFactsCache is the run root's record of the host's facts.
type hostFactsCache struct {
	Key     string      `json:"key"`
	Host    format.Host `json:"host"`
	CPUInfo []byte      `json:"cpuinfo"`
}

// readHostFacts returns the facts cached in path under key.
func readHostFacts(path, key string) (format.Host, []byte, bool) {
	if key == "" {
		return format.Host{}, nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return format.Host{}, nil, false
	}
	var c hostFactsCache
	if json.Unmarshal(data, &c) != nil || c.Key != key || len(c.CPUInfo) == 0 {
		return format.Host{}, nil, false
	}
	return c.Host, c.CPUInfo, true
}

// writeHostFacts caches the facts in path under key; a failure only
// costs the next export the probes.
func writeHostFacts(path, key string, host format.Host, cpuinfo []byte) {
	data, err := json.Marshal(hostFactsCache{Key: key, Host: host, CPUInfo: cpuinfo})
	if err == nil && os.MkdirAll(filepath.Dir(path), 0o700) == nil {
		_ = fsutil.WriteFileAtomic(path, data, 0o600)
	}
}

// wait returns the host's description and the path of its CPU image.
func (hf *hostFacts) wait() (format.Host, string, error) {
	<-hf.done
	return hf.host, hf.cpuinfo, hf.err
}

// close waits for the probes and removes the CPU image.
func (hf *hostFacts) close() {
	<-hf.done
	if hf.dir != "" {
		_ = fsutil.RemoveAll(hf.dir)
	}
}

// hostInfo describes this host for a manifest.
func (e *Engine) hostInfo(ctx context.Context) (format.Host, error) {
	h := format.Host{Kernel: kernelRelease(), Arch: runtime.GOARCH}
	v, _, err := e.criuVersion(ctx)
	if err != nil {
		return h, err
	}
	h.CRIUVersion = v
	if out, err := exec.CommandContext(ctx, e.runtimePath(), "--version").Output(); err == nil {
		if first, _, _ := strings.Cut(string(out), "\n"); first != "" {
			h.RuntimeVersion = strings.TrimPrefix(strings.TrimSpace(first), "runc version ")
		}
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		h.CPU = parseCPUInfo(string(data))
	}
	return h, nil
}

// parseCPUInfo reads the first processor's vendor, model name and flags
// from /proc/cpuinfo text.
func parseCPUInfo(s string) format.CPU {
	var cpu format.CPU
	for _, line := range strings.Split(s, "\n") {
		if line == "" && cpu.Vendor != "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "vendor_id", "CPU implementer":
			if cpu.Vendor == "" {
				cpu.Vendor = v
			}
		case "model name", "CPU part":
			if cpu.Model == "" {
				cpu.Model = v
			}
		case "flags", "Features":
			if cpu.Flags == nil {
				cpu.Flags = strings.Fields(v)
				sort.Strings(cpu.Flags)
			}
		}
	}
	return cpu
}
