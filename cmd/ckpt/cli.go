package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ckpt/ckpt/engine"
	"github.com/spf13/pflag"
)

// Exit codes. A usage error is podman's 125 (its code for its own errors),
// which no container's status of 0-124 can be mistaken for.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 125
)

// globalOptions are the flags before the command name.
type globalOptions struct {
	root, storageRoot, runRoot, tmpDir, runtime, criu string
	criuLimits                                        engine.CRIULimits
	criuMaxLogMiB                                     int64
	config                                            string
	version                                           bool
}

// command is one subcommand.
type command struct {
	name     string
	synopsis string // one line
	usage    string // "ckpt NAME [flags] ARGS"
	desc     string // paragraph(s)
	exits    string // exit-code meanings, "" for the default
	run      func(ctx context.Context, env *cmdEnv, args []string) int
	// noRoot: the command runs without root (parse checks the others).
	noRoot bool
	// subs are the subcommands run dispatches to ("image import"), for
	// completion and man pages (gen.go); aliases are left out.
	subs []string
}

// cmdEnv is what a subcommand runs with.
type cmdEnv struct {
	eng            *engine.Engine
	stdout, stderr io.Writer
	// config is the configuration file the settings came from, "" if none.
	config string
	// probe, if not nil, makes parse stop the command it names (gen.go).
	probe *probe
}

func (c *cmdEnv) errorf(format string, a ...any) {
	fmt.Fprintf(c.stderr, "ckpt: "+format+"\n", a...)
}

// eachRef runs op on each of refs, printing the ones done and the errors
// of the others, as podman does for several containers, and returns
// exitFailure if any failed.
func eachRef(env *cmdEnv, refs []string, op func(ref string) error) int {
	rc := exitOK
	for _, ref := range refs {
		if err := op(ref); err != nil {
			rc = env.fail(err)
			continue
		}
		fmt.Fprintln(env.stdout, ref)
	}
	return rc
}

// fail prints err (its advice in ckpt's flags) and returns exitFailure.
func (c *cmdEnv) fail(err error) int {
	c.errorf("%s", message(err))
	return exitFailure
}

const defaultExits = `Exit status:
  0    success
  1    failure (the message says what to do)
  125  usage error (unknown command or flag, wrong arguments)`

func commands() []*command {
	return []*command{
		imageCmd(), runCmd(), psCmd(), logsCmd(), execCmd(), stopCmd(), killCmd(), rmCmd(),
		checkpointCmd(), restoreCmd(), checkCmd(), completionCmd(),
		createCmd(), startCmd(), restartCmd(), waitCmd(), inspectCmd(), volumeCmd(), infoCmd(), versionCmd(),
	}
}

func globalFlags(g *globalOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("ckpt", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetInterspersed(false)
	fs.StringVar(&g.root, "root", engine.DefaultRoot, "engine state directory")
	fs.StringVar(&g.storageRoot, "storage-root", "", "containers/storage graph root (default <root>/storage)")
	fs.StringVar(&g.runRoot, "runroot", "", "runtime state directory (default /run/ckpt-<hash of --root>)")
	fs.StringVar(&g.tmpDir, "tmpdir", "", "a tmpfs directory for the CRIU images of exports and imports, e.g. /dev/shm (default: under --root, through the page cache)")
	fs.StringVar(&g.runtime, "runtime", engine.DefaultRuntime, "OCI runtime binary")
	fs.StringVar(&g.criu, "criu", engine.DefaultCRIU, "CRIU binary ckpt checks (runc runs the criu in PATH)")
	fs.DurationVar(&g.criuLimits.Timeout, "criu-timeout", engine.DefaultCRIUTimeout, "time every CRIU dump or restore gets before it is killed")
	fs.DurationVar(&g.criuLimits.TimeoutPerGiB, "criu-timeout-per-gib", engine.DefaultCRIUTimeoutPerGiB, "time added per GiB of CRIU images (restore) or container memory (dump)")
	fs.Int64Var(&g.criuMaxLogMiB, "criu-max-log", engine.DefaultCRIUMaxLog>>20, "MiB CRIU's log may reach before CRIU is killed")
	fs.StringVar(&g.config, "config", "", "configuration file (default $CKPT_CONFIG, else "+DefaultConfigFile+" if it exists)")
	fs.BoolVarP(&g.version, "version", "v", false, "print ckpt's, the runtime's and CRIU's versions")
	return fs
}

// mainDesc and mainUsageLine begin ckpt --help and ckpt(1).
const (
	mainDesc      = "ckpt runs containers under runc and checkpoints and restores them with CRIU."
	mainUsageLine = "ckpt [global flags] COMMAND [flags] [ARGS]"
)

func mainUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n\nCommands:\n", mainDesc, mainUsageLine)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s\n%s\n\nRun 'ckpt COMMAND --help' for a command's flags.\n\n%s\n", fs.FlagUsages(), settingsHelp, defaultExits)
}

// run is the whole program: args without the program name; it returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == engine.MonitorCommand {
		return engine.RunMonitor(args[1:])
	}
	if code, ok := hidden(ctx, args, stdout, stderr); ok {
		return code
	}
	var g globalOptions
	fs := globalFlags(&g)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			mainUsage(stdout, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "ckpt: %s\nsee 'ckpt --help'\n", flagError(err, fs, nil))
		return exitUsage
	}
	config, err := applySettings(fs, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt: %v\n", err)
		return exitUsage
	}
	rest := fs.Args()
	if g.version {
		printVersion(ctx, stdout, &engine.Engine{RuntimePath: g.runtime, CRIUPath: g.criu})
		return exitOK
	}
	if len(rest) == 0 {
		mainUsage(stderr, fs)
		return exitUsage
	}
	if rest[0] == "help" {
		if len(rest) == 1 {
			mainUsage(stdout, fs)
			return exitOK
		}
		rest = []string{rest[1], "--help"}
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == rest[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "ckpt: unknown command %q%s\nsee 'ckpt --help'\n", rest[0], commandHint(rest))
		return exitUsage
	}
	eng := &engine.Engine{
		Root: g.root, StorageRoot: g.storageRoot, RunRoot: g.runRoot, TmpDir: g.tmpDir,
		RuntimePath: g.runtime, CRIUPath: g.criu, CRIULimits: g.criuLimits,
	}
	eng.CRIULimits.MaxLog = g.criuMaxLogMiB << 20
	defer eng.Close()
	return cmd.run(ctx, &cmdEnv{eng: eng, stdout: stdout, stderr: stderr, config: config}, rest[1:])
}

// newFlags returns a subcommand's flag set.
func newFlags(c *command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses a subcommand's flags, checks the positional count (max <
// 0: unlimited) and, unless c.noRoot, that ckpt runs as root (the engine
// would find nothing, or fail at runc). It returns (args, -1) to go on or
// (nil, code).
func parse(c *command, env *cmdEnv, fs *pflag.FlagSet, args []string, min, max int) ([]string, int) {
	if env.probe.stops(c, fs) {
		return nil, exitOK
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			usage(env.stdout, c, fs)
			return nil, exitOK
		}
		env.errorf("%s: %s", c.name, flagError(err, fs, globalFlags(&globalOptions{})))
		fmt.Fprintf(env.stderr, "see 'ckpt %s --help'\n", c.name)
		return nil, exitUsage
	}
	n := fs.NArg()
	if n < min || (max >= 0 && n > max) {
		switch {
		case max == 0:
			env.errorf("%s: takes no arguments", c.name)
		case n < min:
			env.errorf("%s: too few arguments", c.name)
		default:
			env.errorf("%s: too many arguments", c.name)
		}
		fmt.Fprintf(env.stderr, "Usage:\n  %s\n", c.usage)
		return nil, exitUsage
	}
	if !c.noRoot && env.probe == nil && os.Geteuid() != 0 {
		env.errorf("%s: must run as root: ckpt runs containers with runc and CRIU as root (try sudo)", c.name)
		return nil, exitFailure
	}
	return fs.Args(), -1
}

func usage(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "ckpt %s - %s\n\nUsage:\n  %s\n\n%s\n", c.name, c.synopsis, c.usage, strings.TrimSpace(c.desc))
	if f := fs.FlagUsages(); f != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", f)
	}
	exits := c.exits
	if exits == "" {
		exits = defaultExits
	}
	fmt.Fprintf(w, "\n%s\n", exits)
}

// usageError prints a usage error for c and returns exitUsage.
func usageError(env *cmdEnv, c *command, format string, a ...any) int {
	env.errorf("%s: %s", c.name, fmt.Sprintf(format, a...))
	fmt.Fprintf(env.stderr, "Usage:\n  %s\n", c.usage)
	return exitUsage
}
