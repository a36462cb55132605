package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/cligen"
)

// jsonVersion is the "version" of every --json document.
const jsonVersion = 1

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func imageCmd() *command {
	c := &command{
		name:     "image",
		synopsis: "pull, push, load, save, import, list and remove images",
		noRoot:   true, // its subcommands check
		subs:     []string{"pull", "push", "load", "save", "import", "ls", "rm"},
		usage:    "ckpt image (pull REF | push IMAGE [DEST] | load -i FILE | save [--format F] -o FILE IMAGE | import SOURCE NAME | ls [--json] | rm IMAGE...) [flags]",
		desc: `pull copies an image from a registry (docker://), an OCI layout or
archive, a docker-archive or podman's store (containers-storage:) into
the store; push copies one out; load reads an oci-archive or
docker-archive; save writes one. import stores a root filesystem (a
directory, or a tar archive compressed with gzip, zstd, xz or none) as a
one-layer image called NAME (stored as localhost/NAME:latest unless NAME
has a registry or a tag), which records no command. ls lists the images;
rm removes images no container uses. Run 'ckpt image SUBCOMMAND --help'
for each one's flags.`,
	}
	subs := map[string]func(context.Context, *cmdEnv, *command, []string) int{
		"pull": imagePull, "push": imagePush, "load": imageLoad, "save": imageSave,
		"import": imageImport, "ls": imageList, "list": imageList, "rm": imageRemove, "remove": imageRemove,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		fs.SetInterspersed(false)
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		sub, ok := subs[rest[0]]
		if !ok {
			env.errorf("image: unknown subcommand %q%s", rest[0], didYouMean(rest[0], c.subs, ""))
			fmt.Fprintln(env.stderr, "see 'ckpt image --help'")
			return exitUsage
		}
		return sub(ctx, env, c, rest[1:])
	}
	return c
}

func imageImport(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image import", synopsis: "import a root filesystem as an image",
		usage: "ckpt image import SOURCE NAME", desc: c.desc}
	fs := newFlags(sc)
	rest, code := parse(sc, env, fs, args, 2, 2)
	if code >= 0 {
		return code
	}
	img, err := env.eng.ImageImport(ctx, rest[0], rest[1])
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintln(env.stdout, img.ID)
	return exitOK
}

// imageJSON is the --json schema of `image ls`.
type imageJSON struct {
	Version int             `json:"version"`
	Images  []*engine.Image `json:"images"`
}

func imageList(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image ls", synopsis: "list images", usage: "ckpt image ls [--json]",
		desc: "Lists the images in the store. The human format may change; --json is stable."}
	fs := newFlags(sc)
	asJSON := fs.Bool("json", false, "print one JSON document")
	if _, code := parse(sc, env, fs, args, 0, 0); code >= 0 {
		return code
	}
	imgs, err := env.eng.Images(ctx)
	if err != nil {
		return env.fail(err)
	}
	if *asJSON {
		if imgs == nil {
			imgs = []*engine.Image{}
		}
		if err := writeJSON(env.stdout, imageJSON{Version: jsonVersion, Images: imgs}); err != nil {
			return env.fail(err)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE ID\tNAMES\tCREATED\tSIZE")
	for _, i := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", shortID(i.ID), strings.Join(i.Names, ","), i.Created.Format(time.RFC3339), i.Size)
	}
	_ = tw.Flush()
	return exitOK
}

func imageRemove(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image rm", synopsis: "remove images", usage: "ckpt image rm IMAGE...", desc: c.desc}
	fs := newFlags(sc)
	rest, code := parse(sc, env, fs, args, 1, -1)
	if code >= 0 {
		return code
	}
	return eachRef(env, rest, func(ref string) error { return env.eng.ImageRemove(ctx, ref) })
}

func runCmd() *command {
	c := &command{
		name:     "run",
		synopsis: "run a command in a new container",
		usage:    "ckpt run [-d] [-i] [-t] [--rm] [--sig-proxy=false] [--name NAME] [-e K=V]... [-v VOLUME:/path]... [--network none|host] [flags] IMAGE [CMD [ARG...]]",
		desc: `Creates a container from IMAGE and runs CMD in it under runc, in its own PID,
mount, UTS and IPC namespaces and (with --network none, the default) a
private network namespace with only loopback up. A small monitor process
holds the container's stdio as pipes, writes its output to the container
log and records its exit status; it outlives this command.

-v NAME:/path mounts the named volume NAME (created if missing);
-v /host/path:/path bind-mounts a host path. Append :ro for read-only.

Without -d, ckpt prints the container's output until it exits and exits
with its status, and forwards the signals it gets (Ctrl-C, SIGTERM, ...)
to the container's first process (--sig-proxy=false: Ctrl-C leaves the
container running); with -d it prints the container ID and returns.

The container's stdin is at end-of-file unless -i: then this command's
stdin is piped to it (attached; its end closes the container's stdin), or
with -d kept open with nothing writing to it. A checkpoint keeps the
container, not the pipe: after a restore its stdin is open (-i) or at
end-of-file, and nothing is attached to it.

--rm removes the container (record, layer, logs) once it has exited, also
when it exits after this command has gone (-d, or an interrupted
--sig-proxy=false); such a container can be checkpointed only with
--export, after which it is removed, as under podman.

Without CMD the image's command runs (its entrypoint and command, as in
podman; --entrypoint replaces the entrypoint and drops the image's
command); the image's environment, working directory and user apply
unless -e, -w and -u say otherwise. Images made by ckpt image import
record none: CMD or --entrypoint is required for them. --user resolves names in the image's /etc/passwd and
/etc/group (a uid the image lacks runs with gid 0, as in podman);
--memory sets the cgroup memory limit (OCI linux.resources.memory.limit),
which a checkpoint and restore, in place or through an export, keep.
-t gives the container a pseudo-terminal, held by its monitor: its output
(with the terminal's \r\n) goes to the log; attached, it comes here, and
with -i on a terminal this one is in raw mode until the container exits
(Ctrl-C reaches the container's terminal; its window size follows this
one). A container with a terminal checkpoints and restores like any other.
--env-file lines are KEY=VALUE (KEY alone takes ckpt's own value, #
starts a comment); --env wins over them.`,
		exits: `Exit status:
  0    success (with -d), or the container's exit status
  1    failure
  125  usage error`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		fs.SetInterspersed(false)
		detach := fs.BoolP("detach", "d", false, "run in the background and print the container ID")
		interactive := fs.BoolP("interactive", "i", false, "keep stdin open; attached, pipe this command's stdin to the container")
		tty := fs.BoolP("tty", "t", false, "give the container a terminal (attached: this command's, in raw mode with -i)")
		remove := fs.Bool("rm", false, "remove the container once it has exited")
		sigProxy := fs.Bool("sig-proxy", true, "forward the signals this command gets to the container (attached)")
		name := fs.String("name", "", "container name (default ckpt-<short ID>)")
		envs := fs.StringArrayP("env", "e", nil, "set an environment variable K=V, or K (K*) to pass this shell's (repeatable)")
		vols := fs.StringArrayP("volume", "v", nil, "mount a named volume or host path: SRC:/path[:ro] (repeatable)")
		network := fs.String("network", engine.NetworkNone, "network mode: none or host")
		_ = fs.SetAnnotation("network", cligen.ValuesAnnotation, []string{engine.NetworkNone, engine.NetworkHost})
		pf := addProcessFlags(fs)
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		if *network != engine.NetworkNone && *network != engine.NetworkHost {
			return usageError(env, c, "--network must be none or host, not %q", *network)
		}
		vars, err := envFlags(*envs, os.Environ())
		if err != nil {
			return usageError(env, c, "%v", err)
		}
		o := &engine.RunOptions{
			Name: *name, Command: rest[1:], Env: vars, Volumes: *vols, Network: *network,
			OpenStdin: *interactive, Remove: *remove, Terminal: *tty,
		}
		if code := pf.apply(env, c, o); code >= 0 {
			return code
		}
		if c.name == createName {
			return createContainer(ctx, env, rest[0], o)
		}
		if !*detach {
			return runAttached(ctx, env, rest[0], o, attachOptions{interactive: *interactive, sigProxy: *sigProxy, tty: *tty})
		}
		ctr, err := env.eng.Run(ctx, rest[0], o)
		if err != nil {
			return env.fail(err)
		}
		fmt.Fprintln(env.stdout, ctr.ID)
		return exitOK
	}
	return c
}

// psJSON is the --json schema of `ps`.
type psJSON struct {
	Version    int                 `json:"version"`
	Containers []*engine.Container `json:"containers"`
}

func psCmd() *command {
	c := &command{
		name:     "ps",
		synopsis: "list containers",
		usage:    "ckpt ps [-a] [-q | --format FORMAT | --json] [--no-trunc]",
		desc: `Lists running containers, or all with -a. The human format may change;
--json prints one stable JSON document. -q prints only the IDs.

--format takes a Go template applied to each container, one line each, or
"json" (a JSON array of the rows), or "table TEMPLATE" (a header line and
aligned columns; "table" alone is the default columns). "\t" is a tab.
The fields, in podman's names: .ID, .Names, .Image, .ImageID, .Command,
.Created, .CreatedAt, .CreatedHuman, .Status (Up 5 minutes, Exited (0)
...), .State (created, running, exited, checkpointed), .ExitCode,
.Exited, .ExitedAt and .StartedAt (Unix seconds), .RunningFor, .Pid,
.Mounts and .Networks (lists: {{join .Mounts ","}}); {{json .X}} prints
X as JSON. IDs have 12 digits unless --no-trunc.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		all := fs.BoolP("all", "a", false, "show all containers, not only running ones")
		asJSON := fs.Bool("json", false, "print one JSON document")
		quiet := fs.BoolP("quiet", "q", false, "print only the container IDs")
		format := fs.String("format", "", `Go template applied to each container, "json", or "table TEMPLATE"`)
		noTrunc := fs.Bool("no-trunc", false, "print whole IDs")
		if _, code := parse(c, env, fs, args, 0, 0); code >= 0 {
			return code
		}
		if n := btoi(*asJSON) + btoi(*quiet) + btoi(*format != ""); n > 1 {
			return usageError(env, c, "--json, --quiet and --format cannot be used together")
		}
		list, err := env.eng.List(ctx)
		if err != nil {
			return env.fail(err)
		}
		shown := []*engine.Container{}
		for _, x := range list {
			if *all || x.Status == engine.StatusRunning {
				shown = append(shown, x)
			}
		}
		if *asJSON {
			if err := writeJSON(env.stdout, psJSON{Version: jsonVersion, Containers: shown}); err != nil {
				return env.fail(err)
			}
			return exitOK
		}
		if *quiet || *format != "" {
			return psFormatted(env, c, shown, *quiet, *format, *noTrunc)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONTAINER ID\tNAME\tIMAGE\tCOMMAND\tSTATUS\tCREATED")
		for _, x := range shown {
			st := string(x.Status)
			if x.Status == engine.StatusExited {
				st = fmt.Sprintf("exited (%d)", x.ExitCode)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(x.ID), x.Name, x.Image,
				strings.Join(x.Command, " "), st, x.CreatedAt.Format(time.RFC3339))
		}
		_ = tw.Flush()
		return exitOK
	}
	return c
}

func logsCmd() *command {
	c := &command{
		name:     "logs",
		synopsis: "print a container's output",
		usage:    "ckpt logs [-f] [-t] [--tail N] [--since TIME] [--until TIME] CONTAINER",
		desc: `Prints what the container wrote to stdout and stderr, across checkpoints
and restores (an imported container's log goes on from the archive's).
With -f, keeps printing until the container stops.

The log (ctr.log in the container's directory) is podman's k8s-file
format: each line is recorded with the time the engine read it, which -t
prints and --since and --until select by. TIME is RFC 3339
(2026-01-02T15:04:05Z, 2026-01-02T15:04:05.999999999+01:00), a date and
time without a zone (2026-01-02T15:04:05, UTC), a date (2026-01-02), Unix
seconds (1767366245.5), or a Go duration before now (10m, 1h30m), as
podman takes them. Lines logged by a ckpt older than this have no time:
-t prints them without, and --since leaves them out.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		follow := fs.BoolP("follow", "f", false, "follow the log until the container stops")
		stamps := fs.BoolP("timestamps", "t", false, "print each line's time before it")
		tail := fs.Int("tail", -1, "print only the last N lines (-1: all)")
		since := fs.String("since", "", "print lines logged since TIME (a time or a duration before now)")
		until := fs.String("until", "", "print lines logged before TIME (a time or a duration before now)")
		rest, code := parse(c, env, fs, args, 1, 1)
		if code >= 0 {
			return code
		}
		o := &engine.LogOptions{Follow: *follow, Timestamps: *stamps, Tail: *tail}
		var err error
		if *since != "" {
			if o.Since, err = parseLogTime(*since, time.Now()); err != nil {
				return usageError(env, c, "--since: %v", err)
			}
		}
		if *until != "" {
			if o.Until, err = parseLogTime(*until, time.Now()); err != nil {
				return usageError(env, c, "--until: %v", err)
			}
		}
		if err := env.eng.ReadLogs(ctx, rest[0], env.stdout, o); err != nil {
			return env.fail(err)
		}
		return exitOK
	}
	return c
}

// exec's exit status when CMD cannot be run, as podman's (and a shell's).
const (
	exitNotExecutable = 126
	exitNotFound      = 127
)

// logTimeFormats are the time formats podman's --since and --until take.
var logTimeFormats = []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999",
	"2006-01-02Z07:00", "2006-01-02"}

// parseLogTime parses --since or --until as podman does: one of
// logTimeFormats, Unix seconds (with a fraction), or a duration before
// now.
func parseLogTime(s string, now time.Time) (time.Time, error) {
	for _, f := range logTimeFormats {
		if t, err := time.Parse(f, s); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(secs, 0) && !math.IsNaN(secs) {
		whole, frac := math.Modf(secs)
		return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339 such as 2026-01-02T15:04:05Z, a date, Unix seconds, or a duration such as 10m)", s)
}

func execCmd() *command {
	c := &command{
		name:     "exec",
		synopsis: "run a command in a running container",
		usage:    "ckpt exec [-i] [-t] [-e K=V]... [-u USER[:GROUP]] [-w DIR] CONTAINER CMD [ARG...]",
		desc: `Runs CMD inside the running container with this command's stdout and
stderr, and with -i its stdin (without -i the command's stdin is /dev/null),
as the container's user in its working directory unless --user or
--workdir say otherwise (names resolve in the container's /etc/passwd and
/etc/group). The signals this command gets (Ctrl-C, SIGTERM, ...) are
forwarded to CMD.`,
		exits: `Exit status:
  the command's exit status, or
  1    failure to run it
  125  usage error
  126  CMD is not executable in the container
  127  CMD is not found in the container`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		fs.SetInterspersed(false)
		interactive := fs.BoolP("interactive", "i", false, "pipe this command's stdin to CMD")
		tty := fs.BoolP("tty", "t", false, "give CMD a terminal (with -i on a terminal: this one, in raw mode)")
		envs := fs.StringArrayP("env", "e", nil, "set an environment variable K=V, or K (K*) to pass this shell's (repeatable)")
		workdir := fs.StringP("workdir", "w", "", "working directory inside the container (default the container's)")
		user := fs.StringP("user", "u", "", "run as USER[:GROUP], names or numbers (default the container's user)")
		rest, code := parse(c, env, fs, args, 2, -1)
		if code >= 0 {
			return code
		}
		if *workdir != "" && !filepath.IsAbs(*workdir) {
			return usageError(env, c, "--workdir %q must be an absolute path", *workdir)
		}
		vars, err := envFlags(*envs, os.Environ())
		if err != nil {
			return usageError(env, c, "%v", err)
		}
		o := &engine.ExecOptions{Env: vars, Cwd: *workdir, User: *user, Stdout: env.stdout, Stderr: env.stderr, Terminal: *tty}
		if *interactive {
			o.Stdin = os.Stdin
		}
		sigs, stop := catchSignals()
		defer stop()
		o.Signals = sigs
		// Once CMD runs, a signal is forwarded to it rather than ending this command.
		rc, err := env.eng.Exec(context.WithoutCancel(ctx), rest[0], rest[1:], o)
		switch {
		case errors.Is(err, engine.ErrCommandNotFound):
			env.fail(err)
			return exitNotFound
		case errors.Is(err, engine.ErrCommandNotExecutable):
			env.fail(err)
			return exitNotExecutable
		case err != nil:
			return env.fail(err)
		}
		return rc
	}
	return c
}

func stopCmd() *command {
	c := &command{
		name:     "stop",
		synopsis: "stop containers",
		usage:    "ckpt stop [-t SECONDS] CONTAINER...",
		desc:     `Sends SIGTERM, waits up to --time seconds, then sends SIGKILL.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		secs := fs.UintP("time", "t", 10, "seconds to wait before killing the container")
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		return eachRef(env, rest, func(ref string) error {
			_, err := env.eng.Stop(ctx, ref, time.Duration(*secs)*time.Second+time.Millisecond)
			return err
		})
	}
	return c
}

// signals are the names `kill -s` accepts (with or without "SIG").
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "CONT": syscall.SIGCONT,
	"STOP": syscall.SIGSTOP,
}

func parseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return syscall.Signal(n), n > 0 && n < 65
	}
	sig, ok := signals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]
	return sig, ok
}

func killCmd() *command {
	c := &command{
		name:     "kill",
		synopsis: "send a signal to containers",
		usage:    "ckpt kill [-s SIGNAL] CONTAINER...",
		desc:     `Sends SIGNAL (default KILL) to each container's init process.`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		sigName := fs.StringP("signal", "s", "KILL", "signal name or number")
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		sig, ok := parseSignal(*sigName)
		if !ok {
			return usageError(env, c, "unknown signal %q", *sigName)
		}
		return eachRef(env, rest, func(ref string) error { return env.eng.Kill(ctx, ref, sig) })
	}
	return c
}

func rmCmd() *command {
	c := &command{
		name:     "rm",
		synopsis: "remove containers",
		usage:    "ckpt rm [-f] (CONTAINER... | --all)",
		desc: `Removes containers with their logs and checkpoint images. A running
container is refused unless --force, which kills it first. --all removes
every container (running ones only with --force).`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		force := fs.BoolP("force", "f", false, "kill a running container first")
		all := fs.BoolP("all", "a", false, "remove all containers")
		rest, code := parse(c, env, fs, args, 0, -1)
		if code >= 0 {
			return code
		}
		switch {
		case *all && len(rest) > 0:
			return usageError(env, c, "--all and container names cannot be used together")
		case !*all && len(rest) == 0:
			return usageError(env, c, "give a container name or ID, or --all")
		case *all:
			list, err := env.eng.List(ctx)
			if err != nil {
				return env.fail(err)
			}
			for _, ct := range list {
				rest = append(rest, ct.Name)
			}
		}
		return eachRef(env, rest, func(ref string) error { return env.eng.Remove(ctx, ref, *force) })
	}
	return c
}

// checkJSON is the --json schema of `check`.
type checkJSON struct {
	Version int `json:"version"`
	*engine.HostReport
}

func checkCmd() *command {
	c := &command{
		name:     "check",
		synopsis: "report what this host supports",
		noRoot:   true, // it reports a missing root as a problem
		usage:    "ckpt check [--json]",
		desc: `Reports CRIU and runtime versions, whether soft-dirty memory tracking
is available and so how checkpoint -P/--with-previous work (yes: CRIU
pre-dump; no: full dump + page dedup), the cgroup version and the storage
driver. The human format may change; --json is stable.`,
		exits: `Exit status:
  0    checkpoint/restore can work here
  1    something is missing (listed)
  125  usage error`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		asJSON := fs.Bool("json", false, "print one JSON document")
		if _, code := parse(c, env, fs, args, 0, 0); code >= 0 {
			return code
		}
		r, err := env.eng.Check(ctx)
		if err != nil {
			return env.fail(err)
		}
		if *asJSON {
			if err := writeJSON(env.stdout, checkJSON{Version: jsonVersion, HostReport: r}); err != nil {
				return env.fail(err)
			}
		} else {
			yn := func(b bool) string {
				if b {
					return "yes"
				}
				return "no"
			}
			orNone := func(s string) string {
				if s == "" {
					return "missing"
				}
				return s
			}
			fmt.Fprintf(env.stdout, "root:            %s\n", yn(r.Root))
			fmt.Fprintf(env.stdout, "criu:            %s\n", orNone(r.CRIUVersion))
			fmt.Fprintf(env.stdout, "runtime:         %s\n", orNone(r.RuntimeVersion))
			fmt.Fprintf(env.stdout, "memory tracking: %s\n", memoryTrackingLine(r))
			fmt.Fprintf(env.stdout, "cgroup:          %s\n", r.CgroupVersion)
			fmt.Fprintf(env.stdout, "storage driver:  %s\n", orNone(r.StorageDriver))
			fmt.Fprintf(env.stdout, "kernel:          %s\n", r.Kernel)
			for _, w := range r.Warnings {
				fmt.Fprintf(env.stdout, "warning:         %s\n", w)
			}
			for _, p := range r.Problems {
				fmt.Fprintf(env.stdout, "problem:         %s\n", p)
			}
		}
		if len(r.Problems) > 0 {
			return exitFailure
		}
		return exitOK
	}
	return c
}

// memoryTrackingLine is check's "memory tracking" value: whether CRIU has
// soft-dirty tracking, and the pre-copy method that follows.
func memoryTrackingLine(r *engine.HostReport) string {
	switch r.PreCopy {
	case engine.PreCopyPreDump:
		return "yes (soft-dirty) -> pre-copy: CRIU pre-dump"
	case engine.PreCopyDedup:
		return "no (soft-dirty) -> pre-copy: full dump + page dedup"
	}
	if r.MemoryTracking {
		return "yes (soft-dirty)"
	}
	return "no (soft-dirty)"
}
