package engine

import (
	"context"
	"os/exec"
	"regexp"
	"runtime"
)

// Tool is an external program the engine runs, as found on this host.
type Tool struct {
	// Path is where it was found (the configured name looked up in
	// PATH), or the configured name if it was not found.
	Path string `json:"path"`
	// Version is its version ("1.1.5", "4.2.1"), or "" if it is missing
	// or its version could not be read.
	Version string `json:"version"`
}

// Tools are the runtime and CRIU an engine runs.
type Tools struct {
	Runtime Tool `json:"runtime"`
	CRIU    Tool `json:"criu"`
}

var runtimeVersionRE = regexp.MustCompile(`(?m)^\S+ version (\S+)`)

// Tools finds the runtime and CRIU and reads their versions; a missing
// one has an empty Version, not an error. It needs no root.
func (e *Engine) Tools(ctx context.Context) *Tools {
	t := &Tools{Runtime: Tool{Path: e.runtimePath()}, CRIU: Tool{Path: e.criuPath()}}
	if p, err := exec.LookPath(t.Runtime.Path); err == nil {
		t.Runtime.Path = p
		if out, err := runTool(ctx, "runc --version", []string{p, "--version"}, "", ErrRuntimeMissing); err == nil {
			if m := runtimeVersionRE.FindSubmatch(out); m != nil {
				t.Runtime.Version = string(m[1])
			}
		}
	}
	if p, err := exec.LookPath(t.CRIU.Path); err == nil {
		t.CRIU.Path = p
		t.CRIU.Version, _, _ = e.criuVersion(ctx)
	}
	return t
}

// ContainerCounts counts containers by status.
type ContainerCounts struct {
	Total        int `json:"total"`
	Created      int `json:"created"`
	Running      int `json:"running"`
	Exited       int `json:"exited"`
	Checkpointed int `json:"checkpointed"`
}

// Info is the result of [Engine.Info]: `podman info`'s facts for this
// engine.
type Info struct {
	// Version is the engine's Version; GoVersion the Go it was built with.
	Version   string `json:"ckpt_version"`
	GoVersion string `json:"go_version"`
	// OS and Arch are GOOS and GOARCH; Kernel the kernel release.
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Kernel string `json:"kernel"`
	// CgroupVersion is "v2", "v1 (hybrid)" or "v1".
	CgroupVersion string `json:"cgroup_version"`
	Tools
	// Root, StorageRoot, RunRoot and TmpDir are the engine's directories
	// as it uses them (defaults filled in; TmpDir "" if none).
	Root        string `json:"root"`
	StorageRoot string `json:"storage_root"`
	RunRoot     string `json:"run_root"`
	TmpDir      string `json:"tmp_dir"`
	// VolumesRoot is where named volumes live.
	VolumesRoot string `json:"volumes_root"`
	// StorageDriver is the image store's graph driver.
	StorageDriver string `json:"storage_driver"`
	// Containers, Images and Volumes count what the engine holds.
	Containers ContainerCounts `json:"containers"`
	Images     int             `json:"images"`
	Volumes    int             `json:"volumes"`
}

// Info reports the host's facts (kernel, cgroup version, runtime and
// CRIU), the engine's directories and storage driver, and how many
// containers, images and volumes it holds. It opens the image store, so
// it needs root ([ErrNotRoot]).
func (e *Engine) Info(ctx context.Context) (*Info, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	in := &Info{
		Version: Version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Kernel: kernelRelease(), CgroupVersion: cgroupVersion(), Tools: *e.Tools(ctx),
		Root: e.root(), StorageRoot: e.storageRoot(), RunRoot: e.runRoot(), TmpDir: e.TmpDir,
		VolumesRoot: e.volumesDir(),
	}
	var err error
	if in.StorageDriver, err = e.StorageDriverName(ctx); err != nil {
		return nil, err
	}
	list, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		in.Containers.Total++
		switch c.Status {
		case StatusCreated:
			in.Containers.Created++
		case StatusRunning:
			in.Containers.Running++
		case StatusExited:
			in.Containers.Exited++
		case StatusCheckpointed:
			in.Containers.Checkpointed++
		}
	}
	imgs, err := e.Images(ctx)
	if err != nil {
		return nil, err
	}
	in.Images = len(imgs)
	vols, err := e.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	in.Volumes = len(vols)
	return in, nil
}
