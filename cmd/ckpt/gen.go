package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/cligen"
	"github.com/spf13/pflag"
)

// Completion and man pages come from the command table: each command's
// run is probed (run with a probe in its cmdEnv), so the flag set its
// parse receives, the one its --help prints, is the one completed and
// documented.

// manCommand is the hidden command that writes the man pages into a
// directory (make install).
const manCommand = "__man"

// completeTimeout bounds the engine look-ups of one completion request.
const completeTimeout = 2 * time.Second

// probe makes parse stop the command named target before it checks its
// arguments, and keep the command and its flags; parse lets the other
// commands (a parent on the way to its subcommand) go on, without the
// root check.
type probe struct {
	target string
	cmd    *command
	fs     *pflag.FlagSet
}

// stops reports whether p stops c, recording c and fs.
func (p *probe) stops(c *command, fs *pflag.FlagSet) bool {
	if p == nil || p.target != c.name {
		return false
	}
	p.cmd, p.fs = c, fs
	return true
}

// describe returns c with its subcommands as cligen describes them.
func describe(c *command) (*cligen.Command, error) {
	d, err := probeCommand(c, c.name, nil)
	if err != nil {
		return nil, err
	}
	for _, s := range c.subs {
		sd, err := probeCommand(c, c.name+" "+s, []string{s})
		if err != nil {
			return nil, err
		}
		d.Subs = append(d.Subs, sd)
	}
	return d, nil
}

// probeCommand runs c with args until the parse of the command named
// target.
func probeCommand(c *command, target string, args []string) (*cligen.Command, error) {
	p := &probe{target: target}
	c.run(context.Background(), &cmdEnv{stdout: io.Discard, stderr: io.Discard, probe: p}, args)
	if p.cmd == nil {
		return nil, fmt.Errorf("describe command %q: it never parsed its flags", target)
	}
	return &cligen.Command{Name: p.cmd.name, Synopsis: p.cmd.synopsis, Usage: p.cmd.usage,
		Desc: p.cmd.desc, Exits: p.cmd.exits, Flags: p.fs}, nil
}

// program describes ckpt with the global flags bound to g; completion
// looks up names in the engine g describes.
func program(ctx context.Context, g *globalOptions) (*cligen.Program, error) {
	p := &cligen.Program{
		Name:     "ckpt",
		Synopsis: "run containers under runc, checkpoint and restore them with CRIU",
		Usage:    mainUsageLine,
		Desc:     mainDesc + "\n\nRun 'ckpt COMMAND --help' or see ckpt-COMMAND(1) for a command's flags.",
		Version:  engine.Version,
		Date:     sourceDate(),
		Globals:  globalFlags(g),
		Sections: []cligen.Section{{Title: "Settings", Text: settingsHelp}},
		Exits:    defaultExits,
		Args: func(word string) ([]string, bool) {
			return argValues(ctx, g, word)
		},
	}
	for _, c := range commands() {
		d, err := describe(c)
		if err != nil {
			return nil, err
		}
		p.Commands = append(p.Commands, d)
	}
	return p, nil
}

// sourceDate is the man pages' date: $SOURCE_DATE_EPOCH's, else none, so
// that the pages are reproducible.
func sourceDate() string {
	sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return ""
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02")
}

// argValues completes a positional argument: the names of the engine's
// containers, images or volumes, none when ckpt is not root or the engine
// root does not exist (completion creates nothing).
func argValues(ctx context.Context, g *globalOptions, word string) ([]string, bool) {
	switch word {
	case "CONTAINER", "IMAGE", "VOLUME":
	default:
		return nil, cligen.FileWords[word]
	}
	if os.Geteuid() != 0 {
		return nil, false
	}
	if _, err := os.Stat(g.root); err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()
	eng := &engine.Engine{Root: g.root, StorageRoot: g.storageRoot, RunRoot: g.runRoot, RuntimePath: g.runtime, CRIUPath: g.criu}
	defer eng.Close()
	var names []string
	switch word {
	case "CONTAINER":
		list, _ := eng.List(ctx)
		for _, c := range list {
			names = append(names, c.Name)
		}
	case "IMAGE":
		imgs, _ := eng.Images(ctx)
		for _, i := range imgs {
			names = append(names, i.Names...)
		}
	case "VOLUME":
		vols, _ := eng.Volumes(ctx)
		for _, v := range vols {
			names = append(names, v.Name)
		}
	}
	return names, false
}

// hidden runs the hidden commands: __complete and __man. ok is false for
// any other command line.
func hidden(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 || (args[0] != cligen.CompleteCommand && args[0] != manCommand) {
		return 0, false
	}
	var g globalOptions
	p, err := program(ctx, &g)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt: %v\n", err)
		return exitFailure, true
	}
	if args[0] == manCommand {
		if len(args) != 2 {
			fmt.Fprintf(stderr, "ckpt: %s: give the directory to write the man pages to\n", manCommand)
			return exitUsage, true
		}
		if _, err := p.WriteMan(args[1]); err != nil {
			fmt.Fprintf(stderr, "ckpt: %v\n", err)
			return exitFailure, true
		}
		return exitOK, true
	}
	words := args[1:]
	if len(words) > 0 {
		// The global flags typed so far choose the engine whose names
		// complete, as the settings do for a command.
		p.Globals.SetOutput(io.Discard)
		_ = p.Globals.Parse(words[:len(words)-1])
		_, _ = applySettings(p.Globals, os.Getenv)
	}
	if err := cligen.WriteCompletion(stdout, p.Complete(words)); err != nil {
		return exitFailure, true
	}
	return exitOK, true
}

func completionCmd() *command {
	c := &command{
		name:     "completion",
		synopsis: "print a shell completion script",
		noRoot:   true,
		usage:    "ckpt completion bash|zsh|fish",
		desc: `Prints the completion script of bash, zsh or fish. It completes commands,
subcommands, every flag of each command, and the names of containers,
images and volumes where a command takes them (asked of ckpt on each
TAB, so they are the engine's of the global flags typed, and are
offered only to root). make install puts the scripts in place; to try
one in the current shell:

  bash:  source <(ckpt completion bash)
  zsh:   source <(ckpt completion zsh)
  fish:  ckpt completion fish | source`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		rest, code := parse(c, env, fs, args, 1, 1)
		if code >= 0 {
			return code
		}
		s, err := cligen.Script(rest[0], "ckpt")
		if errors.Is(err, cligen.ErrShell) {
			return usageError(env, c, "unknown shell %q (want bash, zsh or fish)", rest[0])
		}
		if err != nil {
			return env.fail(err)
		}
		fmt.Fprint(env.stdout, s)
		return exitOK
	}
	return c
}
