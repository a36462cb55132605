package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/ckpt/ckpt/engine"
)

// infoJSON is the --json schema of `info`.
type infoJSON struct {
	Version int `json:"version"`
	*engine.Info
	// Config is the configuration file read, "" if none.
	Config string `json:"config_file"`
}

func infoCmd() *command {
	c := &command{
		name:     "info",
		synopsis: "print the host's and the engine's facts",
		usage:    "ckpt info [--json]",
		desc: `Prints the kernel, cgroup version, the runtime and CRIU found (paths and
versions), the engine's directories (--root, --storage-root, --runroot,
--tmpdir), the storage driver, the configuration file read, and how many
containers (by status), images and volumes there are. ckpt check says
whether checkpoint/restore works here. The human format may change;
--json is stable.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		asJSON := fs.Bool("json", false, "print one JSON document")
		if _, code := parse(c, env, fs, args, 0, 0); code >= 0 {
			return code
		}
		in, err := env.eng.Info(ctx)
		if err != nil {
			return env.fail(err)
		}
		if *asJSON {
			if err := writeJSON(env.stdout, infoJSON{Version: jsonVersion, Info: in, Config: env.config}); err != nil {
				return env.fail(err)
			}
			return exitOK
		}
		w := env.stdout
		fmt.Fprintf(w, "ckpt:            %s (%s %s/%s)\n", in.Version, in.GoVersion, in.OS, in.Arch)
		fmt.Fprintf(w, "kernel:          %s\n", in.Kernel)
		fmt.Fprintf(w, "cgroup:          %s\n", in.CgroupVersion)
		fmt.Fprintf(w, "runtime:         %s\n", toolLine(in.Runtime))
		fmt.Fprintf(w, "criu:            %s\n", toolLine(in.CRIU))
		fmt.Fprintf(w, "root:            %s\n", in.Root)
		fmt.Fprintf(w, "storage root:    %s\n", in.StorageRoot)
		fmt.Fprintf(w, "run root:        %s\n", in.RunRoot)
		fmt.Fprintf(w, "tmpdir:          %s\n", orDash(in.TmpDir))
		fmt.Fprintf(w, "volumes:         %s\n", in.VolumesRoot)
		fmt.Fprintf(w, "storage driver:  %s\n", in.StorageDriver)
		fmt.Fprintf(w, "config file:     %s\n", orDash(env.config))
		n := in.Containers
		fmt.Fprintf(w, "containers:      %d (%d running, %d created, %d exited, %d checkpointed)\n",
			n.Total, n.Running, n.Created, n.Exited, n.Checkpointed)
		fmt.Fprintf(w, "images:          %d\n", in.Images)
		fmt.Fprintf(w, "volume count:    %d\n", in.Volumes)
		return exitOK
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// toolLine is "VERSION (PATH)", or "missing (NAME)".
func toolLine(t engine.Tool) string {
	if t.Version == "" {
		return "missing (" + t.Path + ")"
	}
	return t.Version + " (" + t.Path + ")"
}

// versionJSON is the --json schema of `version`.
type versionJSON struct {
	Version     int    `json:"version"`
	CkptVersion string `json:"ckpt_version"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	*engine.Tools
}

func versionCmd() *command {
	c := &command{
		name:     "version",
		noRoot:   true,
		synopsis: "print ckpt's version and the runtime's and CRIU's",
		usage:    "ckpt version [--json]",
		desc: `Prints ckpt's version, the Go it was built with, and the runtime and CRIU
found (versions and paths); ckpt --version prints the same. Needs no root.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		asJSON := fs.Bool("json", false, "print one JSON document")
		if _, code := parse(c, env, fs, args, 0, 0); code >= 0 {
			return code
		}
		if *asJSON {
			v := versionJSON{Version: jsonVersion, CkptVersion: engine.Version, GoVersion: runtime.Version(),
				OS: runtime.GOOS, Arch: runtime.GOARCH, Tools: env.eng.Tools(ctx)}
			if err := writeJSON(env.stdout, v); err != nil {
				return env.fail(err)
			}
			return exitOK
		}
		printVersion(ctx, env.stdout, env.eng)
		return exitOK
	}
	return c
}

// printVersion prints the short version block of --version and version.
func printVersion(ctx context.Context, w io.Writer, eng *engine.Engine) {
	t := eng.Tools(ctx)
	fmt.Fprintf(w, "ckpt version %s\n", engine.Version)
	fmt.Fprintf(w, "go:      %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "runtime: %s\n", toolLine(t.Runtime))
	fmt.Fprintf(w, "criu:    %s\n", toolLine(t.CRIU))
}
