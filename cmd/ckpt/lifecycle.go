package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/cligen"
)

// createName is the name of the command that is run's flags without the
// start (runCmd checks it).
const createName = "create"

func createCmd() *command {
	c := runCmd()
	c.name = createName
	c.synopsis = "create a container without starting it"
	c.usage = "ckpt create [--name NAME] [-e K=V]... [-v VOLUME:/path]... [--network none|host] [flags] IMAGE [CMD [ARG...]]"
	c.desc = `Creates a container from IMAGE as run does (same flags) but does not start
it: its status is "created" until ckpt start starts it. Prints the
container ID. (--detach means nothing here.)`
	c.exits = ""
	return c
}

// createContainer is run's body for create: make the container, print
// its ID.
func createContainer(ctx context.Context, env *cmdEnv, image string, o *engine.RunOptions) int {
	ctr, err := env.eng.Create(ctx, image, o)
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintln(env.stdout, ctr.ID)
	return exitOK
}

func startCmd() *command {
	c := &command{
		name:     "start",
		synopsis: "start created or stopped containers",
		usage:    "ckpt start [-a] CONTAINER...",
		desc: `Starts each container that was created (ckpt create) or has exited or
been stopped: its command runs afresh with the same spec in the same
container layer (files it wrote are still there), as podman start does.
A running container is left alone. A checkpointed container is refused:
restore it with ckpt restore.

With --attach (one container), prints the container's output from the
start on until it exits, and exits with its status.`,
		exits: `Exit status:
  0    success, or (with -a) the container's exit status
  1    failure
  125  usage error`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		attach := fs.BoolP("attach", "a", false, "print the container's output until it exits, and exit with its status")
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		if *attach && len(rest) > 1 {
			return usageError(env, c, "--attach takes one container")
		}
		if *attach {
			return startAttached(ctx, env, rest[0])
		}
		return eachRef(env, rest, func(ref string) error {
			_, err := env.eng.Start(ctx, ref)
			return err
		})
	}
	return c
}

// startAttached starts ref and prints what it writes from then on until
// it exits; it returns the container's exit status.
func startAttached(ctx context.Context, env *cmdEnv, ref string) int {
	path, err := env.eng.LogPath(ctx, ref)
	if err != nil {
		return env.fail(err)
	}
	var from int64
	if fi, err := os.Stat(path); err == nil {
		from = fi.Size()
	}
	ctr, err := env.eng.Start(ctx, ref)
	if err != nil {
		return env.fail(err)
	}
	if err := followFrom(ctx, env, from, ctr.ID); err != nil {
		return env.fail(err)
	}
	if ctx.Err() != nil {
		env.errorf("interrupted; container %s keeps running", ctr.Name)
		return exitFailure
	}
	x, err := env.eng.Inspect(ctx, ctr.ID)
	if err != nil {
		return env.fail(err)
	}
	if x.Status != engine.StatusExited || x.ExitCode < 0 {
		return exitFailure
	}
	return x.ExitCode
}

// followFrom copies the container id's output from offset from of its log
// to stdout until it stops running or ctx is done.
func followFrom(ctx context.Context, env *cmdEnv, from int64, id string) error {
	return env.eng.ReadLogs(ctx, id, env.stdout, &engine.LogOptions{Follow: true, Tail: -1, Offset: from})
}

func restartCmd() *command {
	c := &command{
		name:     "restart",
		synopsis: "stop and start containers",
		usage:    "ckpt restart [-t SECONDS] CONTAINER...",
		desc: `Stops each running container as ckpt stop does (SIGTERM, then SIGKILL
after --time seconds) and starts it again as ckpt start does. A created
or exited container is only started; a checkpointed one is refused.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		secs := fs.UintP("time", "t", 10, "seconds to wait before killing the container")
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		return eachRef(env, rest, func(ref string) error {
			_, err := env.eng.Restart(ctx, ref, time.Duration(*secs)*time.Second+time.Millisecond)
			return err
		})
	}
	return c
}

func waitCmd() *command {
	c := &command{
		name:     "wait",
		synopsis: "wait for containers to exit and print their exit codes",
		usage:    "ckpt wait [-i INTERVAL] [--condition STATE]... CONTAINER...",
		desc: `Blocks until each container has exited (a created one is waited for
until it has run and exited; a checkpointed one has stopped) and prints
its exit code, one line per container in the order given, as podman wait
does. The exit code is 128+N for a container killed by signal N and -1
if it is unknown (its monitor was killed).

--condition waits instead until the container is in one of the given
states (repeatable, or comma-separated): created, running, exited (or
stopped, podman's name), checkpointed; a container that has not exited
then prints -1.`,
		exits: `Exit status:
  0  every container exited (whatever its own exit code)
  1  failure (a container is unknown or was removed)
  125  usage error`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		interval := fs.DurationP("interval", "i", engine.DefaultWaitInterval, "how often to look at the container")
		conds := fs.StringSlice("condition", nil, "wait until the container is in one of these states: "+strings.Join(waitConditionNames, ", "))
		_ = fs.SetAnnotation("condition", cligen.ValuesAnnotation, waitConditionNames)
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		if *interval <= 0 {
			return usageError(env, c, "--interval must be positive")
		}
		statuses, err := waitConditions(*conds)
		if err != nil {
			return usageError(env, c, "%v", err)
		}
		rc := exitOK
		for _, ref := range rest {
			n, err := env.eng.WaitFor(ctx, ref, statuses, *interval)
			if err != nil {
				rc = env.fail(err)
				continue
			}
			fmt.Fprintln(env.stdout, n)
		}
		return rc
	}
	return c
}

// waitConditionNames are the podman wait conditions ckpt's states have:
// stopped is exited, as in podman; checkpointed is ckpt's own (podman
// calls a checkpointed container exited).
var waitConditionNames = []string{"created", "running", "exited", "stopped", "checkpointed"}

// waitConditions turns --condition values into states.
func waitConditions(names []string) ([]engine.Status, error) {
	var out []engine.Status
	for _, n := range names {
		switch n {
		case "created", "running", "exited", "checkpointed":
			out = append(out, engine.Status(n))
		case "stopped":
			out = append(out, engine.StatusExited)
		default:
			return nil, fmt.Errorf("unknown --condition %q (ckpt has %s)", n, strings.Join(waitConditionNames, ", "))
		}
	}
	return out, nil
}

func inspectCmd() *command {
	c := &command{
		name:     "inspect",
		synopsis: "print containers' details as JSON",
		usage:    "ckpt inspect [-f FORMAT] (CONTAINER... | -l)",
		desc: `Prints a JSON array with one object per container, in podman inspect's
names: Id, Name, State (Status, Pid, ExitCode, StartedAt, Checkpointed,
CheckpointedAt, RestoredAt, ...), Image, ImageName, Mounts, Config and
HostConfig (a summary of the OCI spec: Cmd, Env, User, WorkingDir,
NetworkMode, Memory, Namespaces, ...) and Checkpoint (where the images are,
whether they are there, the pre-checkpoint). Containers that are not found
are reported on stderr after the others are printed.

--format takes a Go template applied to each container, one line each
(e.g. '{{.State.Status}}'; {{json .X}} prints X as JSON); --format json
is the default.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		format := fs.StringP("format", "f", "json", "json, or a Go template applied to each container")
		latest := fs.BoolP("latest", "l", false, "inspect the most recently created container")
		rest, code := parse(c, env, fs, args, 0, -1)
		if code >= 0 {
			return code
		}
		if *latest == (len(rest) > 0) {
			return usageError(env, c, "give container names or IDs, or --latest")
		}
		var tmpl *template.Template
		if *format != "json" {
			var err error
			if tmpl, err = template.New("format").Funcs(templateFuncs).Parse(*format); err != nil {
				return usageError(env, c, "--format: %v", err)
			}
		}
		if *latest {
			x, err := env.eng.Latest(ctx)
			if err != nil {
				return env.fail(err)
			}
			rest = []string{x.ID}
		}
		found := []*engine.ContainerInspect{}
		var errs []error
		for _, ref := range rest {
			x, err := env.eng.InspectContainer(ctx, ref)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			found = append(found, x)
		}
		if rc := printInspected(env, found, tmpl); rc != exitOK {
			return rc
		}
		for _, err := range errs {
			env.fail(err)
		}
		if len(errs) > 0 {
			return exitFailure
		}
		return exitOK
	}
	return c
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		data, err := json.Marshal(v)
		return string(data), err
	},
	"join": strings.Join,
}

// printInspected prints found as a JSON array, or each through tmpl.
func printInspected(env *cmdEnv, found []*engine.ContainerInspect, tmpl *template.Template) int {
	if tmpl == nil {
		if err := writeJSON(env.stdout, found); err != nil {
			return env.fail(err)
		}
		return exitOK
	}
	for _, x := range found {
		var b strings.Builder
		if err := tmpl.Execute(&b, x); err != nil {
			return env.fail(fmt.Errorf("--format: %w", err))
		}
		fmt.Fprintln(env.stdout, strings.TrimSuffix(b.String(), "\n"))
	}
	return exitOK
}
