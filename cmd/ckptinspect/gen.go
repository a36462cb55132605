package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/ckpt/ckpt/internal/cligen"
	"github.com/spf13/pflag"
)

// completionUsage is the completion command's line of ckptinspect --help.
const completionUsage = "completion bash|zsh|fish"

// program describes ckptinspect from its command table, for completion
// and man pages: each command's flags are the ones its run parses.
func program() *cligen.Program {
	p := &cligen.Program{
		Name:     "ckptinspect",
		Synopsis: "show, inspect, verify, diff and fuzz checkpoint archives offline",
		Usage:    "ckptinspect COMMAND [flags] ARGS",
		Desc: "ckptinspect reads ckpt archives and the legacy checkpoint archives of podman,\n" +
			"CRI-O and containerd without running CRIU, and needs no root.\n\n" +
			"Human output may change; use --json / --format json in scripts.",
		Date: sourceDate(),
		Exits: "  0  success (verify: clean; diff: identical)\n" +
			"  1  failure (verify: problems; diff: differences; fuzz: a finding)\n" +
			"  2  usage error, or trouble reading an archive",
		// Every positional argument of ckptinspect is a file.
		Args: func(string) ([]string, bool) { return nil, true },
	}
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cmds[n]
		fs := pflag.NewFlagSet(n, pflag.ContinueOnError)
		fs.SortFlags = false
		c.flags(fs)
		p.Commands = append(p.Commands, &cligen.Command{Name: n, Synopsis: c.short,
			Usage: "ckptinspect " + c.synopsis, Desc: c.desc, Exits: c.exits, Flags: fs})
	}
	p.Commands = append(p.Commands, &cligen.Command{Name: "completion", Synopsis: "print a shell completion script",
		Usage: "ckptinspect " + completionUsage,
		Desc:  "Prints the completion script of bash, zsh or fish (make install puts them in place)."})
	return p
}

// sourceDate is the man pages' date: $SOURCE_DATE_EPOCH's, else none.
func sourceDate() string {
	sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return ""
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02")
}

// generated runs the commands that come from program: completion and the
// hidden __complete and __man. ok is false for any other command line.
func generated(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "completion":
		if len(args) != 2 {
			return usageErr(stderr, "completion", "give one shell: bash, zsh or fish"), true
		}
		s, err := cligen.Script(args[1], "ckptinspect")
		if err != nil {
			return usageErr(stderr, "completion", err.Error()), true
		}
		fmt.Fprint(stdout, s)
		return exitOK, true
	case cligen.CompleteCommand:
		if err := cligen.WriteCompletion(stdout, program().Complete(args[1:])); err != nil {
			return exitFailure, true
		}
		return exitOK, true
	case "__man":
		if len(args) != 2 {
			return usageErr(stderr, "__man", "give the directory to write the man pages to"), true
		}
		if _, err := program().WriteMan(args[1]); err != nil {
			fail(stderr, "__man", err)
			return exitFailure, true
		}
		return exitOK, true
	}
	return 0, false
}
