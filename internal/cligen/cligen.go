package cligen

import (
	"regexp"
	"strings"

	"github.com/spf13/pflag"
)

// Program is a command-line program and its commands.
type Program struct {
	// Name is the program's name: "ckpt".
	Name string
	// Synopsis is one line, for the man page's NAME.
	Synopsis string
	// Usage is its usage line: "ckpt [global flags] COMMAND [flags] [ARGS]".
	Usage string
	// Desc is what it does: paragraphs separated by blank lines.
	Desc string
	// Version goes in the man pages' footer; "" for none.
	Version string
	// Date goes in the man pages' footer; "" for none (reproducible pages).
	Date string
	// Globals are the flags before the command; nil if none.
	Globals *pflag.FlagSet
	// Commands are the program's commands in the order to list them.
	Commands []*Command
	// Sections are more sections of the program's own man page, after
	// its options.
	Sections []Section
	// Exits is the exit status text of commands whose Exits is "".
	Exits string
	// Args completes a positional argument named word in a usage line
	// ("CONTAINER", "FILE"): the candidates, and whether file names fit.
	// Nil completes file names for the words of FileWords and nothing
	// else.
	Args func(word string) (values []string, files bool)
}

// Command is one command of a program.
type Command struct {
	// Name is the command's words after the program's: "ps", "image rm".
	Name string
	// Synopsis is one line, for lists and the man page's NAME.
	Synopsis string
	// Usage is the usage line, "ckpt ps [-a] [--json]"; its upper-case
	// words name the positional arguments (see the package doc).
	Usage string
	// Desc is what it does: paragraphs separated by blank lines; a
	// paragraph with indented lines is kept as it is.
	Desc string
	// Exits is the exit status text; "" means the program's.
	Exits string
	// Flags are the flags the command parses; nil if none.
	Flags *pflag.FlagSet
	// Subs are its subcommands, whose Names are this Name, a space and
	// one word.
	Subs []*Command
}

// Section is a titled section of a man page.
type Section struct {
	Title, Text string
}

// FileWords are the usage words that name files when Program.Args is nil.
var FileWords = map[string]bool{
	"FILE": true, "PATH": true, "DIR": true, "SOURCE": true, "ARCHIVE": true, "CMD": true, "ARG": true,
}

// arg is one positional argument of a usage line.
type arg struct {
	word    string   // "CONTAINER"; "" for choices
	choices []string // literal alternatives, "bash|zsh|fish"
	repeat  bool     // "CONTAINER...": it and all after it
}

var (
	argWord   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(\.\.\.)?$`)
	argChoice = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*(\|[a-z0-9][a-z0-9-]*)+$`)
)

// positionals returns the positional arguments of a usage line: see the
// package doc.
func positionals(usage string) []arg {
	var b, group strings.Builder
	depth := 0
	for _, r := range usage {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
			if depth == 0 {
				b.WriteString(optional(group.String()))
				group.Reset()
			}
		case depth > 0:
			group.WriteRune(r)
		case r == '(' || r == ')':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	var out []arg
	for _, f := range strings.Fields(b.String()) {
		switch {
		case f == "|" && len(out) > 0:
			return out
		case argWord.MatchString(f):
			w, rep := strings.CutSuffix(f, "...")
			out = append(out, arg{word: w, repeat: rep})
		case argChoice.MatchString(f):
			out = append(out, arg{choices: strings.Split(f, "|")})
		}
	}
	return out
}

// optional returns the words of a bracketed group that are optional
// positional arguments ("[ARG...]", "[NAME]"), or " " for a group with
// flags ("[-e K=V]").
func optional(group string) string {
	for _, f := range strings.Fields(group) {
		if !argWord.MatchString(f) {
			return " "
		}
	}
	return " " + group + " "
}

// lastWord is the last word of a command's name, what a user types.
func lastWord(name string) string {
	return name[strings.LastIndexByte(name, ' ')+1:]
}

// visibleFlags returns fs's flags that are documented and completed.
func visibleFlags(fs *pflag.FlagSet) []*pflag.Flag {
	var out []*pflag.Flag
	if fs == nil {
		return nil
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Deprecated == "" && f.Name != "help" {
			out = append(out, f)
		}
	})
	return out
}

// All returns every command of p, subcommands after their parent.
func (p *Program) All() []*Command {
	var out []*Command
	var walk func([]*Command)
	walk = func(cs []*Command) {
		for _, c := range cs {
			out = append(out, c)
			walk(c.Subs)
		}
	}
	walk(p.Commands)
	return out
}
