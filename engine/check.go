package engine

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MinCRIUVersion is the oldest CRIU the engine accepts, as CRIU's integer
// version (major*10000 + minor*100 + sublevel).
const MinCRIUVersion = 40000

// HostReport is the result of [Engine.Check].
type HostReport struct {
	// Root reports whether the process runs as root.
	Root bool `json:"root"`
	// CRIUVersion is CRIU's version ("4.1.1"), or "" if missing.
	CRIUVersion string `json:"criu_version"`
	// CRIUOK reports that CRIU is present and at least 4.0.
	CRIUOK bool `json:"criu_ok"`
	// RuntimeVersion is the first line of `runc --version`, or "".
	RuntimeVersion string `json:"runtime_version"`
	// MemoryTracking reports soft-dirty memory tracking (`criu check
	// --feature mem_dirty_track`), needed for pre-copy with pre-dumps.
	MemoryTracking bool `json:"memory_tracking"`
	// PreCopy is the pre-copy method that follows from MemoryTracking
	// (empty if CRIU does not work).
	PreCopy PreCopyMethod `json:"pre_copy,omitempty"`
	// CgroupVersion is "v2", "v1 (hybrid)" or "v1".
	CgroupVersion string `json:"cgroup_version"`
	// StorageDriver is the image store's graph driver, or "" on error.
	StorageDriver string `json:"storage_driver"`
	// Kernel is the running kernel's release.
	Kernel string `json:"kernel"`
	// Problems lists what prevents checkpoint/restore, one per line.
	Problems []string `json:"problems,omitempty"`
	// Warnings lists known limitations of this CRIU on this kernel.
	Warnings []string `json:"warnings,omitempty"`
}

// inetSocketWarning explains the known failure of CRIU before 4.2 to dump
// any inet socket on Linux 6.16 and newer.
const inetSocketWarning = "CRIU before 4.2 cannot dump TCP/UDP sockets on Linux 6.16 or newer " +
	"(\"Can't get 1:16 opt\": SO_PASSCRED is refused on inet sockets, criu#2705, criu#2718); " +
	"containers with sockets, and --tcp-established, need a newer CRIU"

// inetSocketBug reports whether CRIU version criu (integer form) has the
// inet socket option bug on kernel release rel.
func inetSocketBug(criu int, rel string) bool {
	if criu >= 40200 {
		return false
	}
	var maj, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &maj, &minor); err != nil {
		return false
	}
	return maj > 6 || (maj == 6 && minor >= 16)
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

var criuVersionRE = regexp.MustCompile(`(?m)^Version:\s*(\d+)\.(\d+)(?:\.(\d+))?`)

func (e *Engine) criuVersionArgs() []string { return []string{e.criuPath(), "--version"} }

func (e *Engine) criuFeatureArgs(feature string) []string {
	return []string{e.criuPath(), "check", "--feature", feature}
}

// criuVersion runs `criu --version` and returns the version string and
// CRIU's integer form of it.
func (e *Engine) criuVersion(ctx context.Context) (string, int, error) {
	out, err := runTool(ctx, "criu --version", e.criuVersionArgs(), "", ErrCRIUMissing)
	if err != nil {
		return "", 0, err
	}
	m := criuVersionRE.FindSubmatch(out)
	if m == nil {
		return "", 0, fmt.Errorf("%w: cannot parse `criu --version` output %q", ErrCRIUMissing, strings.TrimSpace(string(out)))
	}
	maj, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	sub := 0
	if len(m[3]) > 0 {
		sub, _ = strconv.Atoi(string(m[3]))
	}
	v := fmt.Sprintf("%d.%d", maj, minor)
	if len(m[3]) > 0 {
		v += "." + string(m[3])
	}
	return v, maj*10000 + minor*100 + sub, nil
}

// preflight checks what checkpoint and restore need: root, CRIU >= 4.0
// and the runtime.
func (e *Engine) preflight(ctx context.Context) error {
	if err := requireRoot(); err != nil {
		return err
	}
	v, n, err := e.criuVersion(ctx)
	if err != nil {
		return err
	}
	if n < MinCRIUVersion {
		return fmt.Errorf("%w: found CRIU %s at %s", ErrCRIUMissing, v, e.criuPath())
	}
	if _, err := exec.LookPath(e.runtimePath()); err != nil {
		return fmt.Errorf("%w: %w", ErrRuntimeMissing, err)
	}
	return nil
}

// Check reports on the host: CRIU and runtime versions, soft-dirty memory
// tracking, cgroup version and storage driver. Missing pieces are listed
// in Problems, not returned as errors; the error is for the context only.
func (e *Engine) Check(ctx context.Context) (*HostReport, error) {
	r := &HostReport{Root: requireRoot() == nil}
	if !r.Root {
		r.Problems = append(r.Problems, ErrNotRoot.Error())
	}
	v, n, err := e.criuVersion(ctx)
	switch {
	case err != nil:
		r.Problems = append(r.Problems, err.Error())
	case n < MinCRIUVersion:
		r.CRIUVersion = v
		r.Problems = append(r.Problems, fmt.Sprintf("%v: found CRIU %s", ErrCRIUMissing, v))
	default:
		r.CRIUVersion, r.CRIUOK = v, true
	}
	r.Kernel = kernelRelease()
	if r.CRIUOK && inetSocketBug(n, r.Kernel) {
		r.Warnings = append(r.Warnings, inetSocketWarning)
	}
	if r.CRIUOK {
		// `criu check` fails where this CRIU cannot work on this kernel
		// (Debian 12's 3.17 on Linux 6.x: "Unexpected rt vDSO area bounds").
		if _, err := runTool(ctx, "criu check", []string{e.criuPath(), "check"}, "", ErrCRIUMissing); err != nil {
			r.CRIUOK = false
			r.Problems = append(r.Problems, fmt.Sprintf("CRIU %s does not work on this kernel: %v", v, err))
		}
		// A failing feature check means "not available", not an error.
		r.MemoryTracking = e.memoryTracking(ctx)
		r.PreCopy = preCopyMethodFor(r.MemoryTracking)
	}
	if out, err := runTool(ctx, "runc --version", []string{e.runtimePath(), "--version"}, "", ErrRuntimeMissing); err != nil {
		r.Problems = append(r.Problems, err.Error())
	} else {
		r.RuntimeVersion, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	r.CgroupVersion = cgroupVersion()
	if d, err := e.StorageDriverName(ctx); err != nil {
		r.Problems = append(r.Problems, err.Error())
	} else {
		r.StorageDriver = d
	}
	return r, ctx.Err()
}

// HasInetSocketBug reports whether this host's CRIU cannot dump inet
// sockets because of the kernel 6.16 socket-option change (see
// [HostReport.Warnings]).
func (e *Engine) HasInetSocketBug(ctx context.Context) (bool, error) {
	_, n, err := e.criuVersion(ctx)
	if err != nil {
		return false, err
	}
	return inetSocketBug(n, kernelRelease()), nil
}

// IsCRIUMissing reports whether err says CRIU is missing or too old.
func IsCRIUMissing(err error) bool { return errors.Is(err, ErrCRIUMissing) }

// PreCopyMethod is how a pre-copy (checkpoint -P, then --with-previous)
// is taken on a host.
type PreCopyMethod string

const (
	// PreCopyPreDump is used where CRIU has memory tracking (soft-dirty):
	// -P is `runc checkpoint --pre-dump` (CRIU pre-dump with --track-mem)
	// and --with-previous a dump with `--parent-path ../pre-checkpoint`,
	// which only writes the pages dirtied since and links the parent
	// itself, as podman does. The final freeze is short.
	PreCopyPreDump PreCopyMethod = "criu-pre-dump"
	// PreCopyDedup is used without memory tracking: -P is a full dump that
	// leaves the container running and --with-previous a full dump
	// deduplicated page by page against it (incremental.Dedup). The final
	// freeze is not shorter, the final images are as small.
	PreCopyDedup PreCopyMethod = "full-dump+dedup"
)

// preCopyMethodFor chooses the pre-copy method from the result of the
// memory tracking feature check.
func preCopyMethodFor(memoryTracking bool) PreCopyMethod {
	if memoryTracking {
		return PreCopyPreDump
	}
	return PreCopyDedup
}

// memoryTracking runs `criu check --feature mem_dirty_track`; a failing
// check means "not available".
func (e *Engine) memoryTracking(ctx context.Context) bool {
	if e.memoryTrackingCheck != nil {
		return e.memoryTrackingCheck(ctx)
	}
	_, err := runTool(ctx, "criu check", e.criuFeatureArgs("mem_dirty_track"), "", ErrCRIUMissing)
	return err == nil
}

// PreCopyMethod reports how this host takes pre-checkpoints: with CRIU
// pre-dumps if CRIU has memory tracking, else with full dumps and page
// deduplication. (runc 1.1 runs the "criu" in PATH: [Engine.CRIUPath]
// must be that binary.)
func (e *Engine) PreCopyMethod(ctx context.Context) PreCopyMethod {
	return preCopyMethodFor(e.memoryTracking(ctx))
}
