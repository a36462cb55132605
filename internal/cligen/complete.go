package cligen

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// CompleteCommand is the hidden command the completion scripts run:
// `PROG __complete WORD...`, the words after the program's name up to
// and including the one being completed ("" after a space).
const CompleteCommand = "__complete"

// ValuesAnnotation is the pflag annotation that lists a flag's values for
// completion: fs.SetAnnotation("network", ValuesAnnotation, []string{"none", "host"}).
const ValuesAnnotation = "cligen_values"

// Candidate is one completion: the word and what it is.
type Candidate struct {
	Word, Desc string
}

// Completion is the answer to a completion request.
type Completion struct {
	// Candidates are the words that begin with the word being completed.
	Candidates []Candidate
	// Files reports that file names fit there too.
	Files bool
}

// state is where the words before the one being completed leave the
// command line.
type state struct {
	cmd  *Command       // nil: no command yet
	fs   *pflag.FlagSet // the flags that apply: the command's, or the globals
	pos  int            // positional arguments of cmd seen
	flag *pflag.Flag    // the flag whose value comes next, or nil
	dash bool           // "--" seen: only positional arguments follow
	lost bool           // an unknown command: nothing fits
}

// walk reads the words before the one being completed.
func (p *Program) walk(words []string) state {
	s := state{fs: p.Globals}
	for _, w := range words {
		switch {
		case s.flag != nil:
			s.flag = nil
		case w == "--" && !s.dash:
			s.dash = true
		case strings.HasPrefix(w, "-") && w != "-" && !s.dash:
			s.flag = valueFlag(s.fs, w)
		case s.cmd == nil || (len(s.cmd.Subs) > 0 && s.pos == 0):
			list := p.Commands
			if s.cmd != nil {
				list = s.cmd.Subs
			}
			s.cmd = find(list, w)
			if s.cmd == nil {
				s.lost = true
				return s
			}
			s.fs = s.cmd.Flags
		default:
			s.pos++
		}
	}
	return s
}

// valueFlag returns the flag of fs that word sets if its value is the
// next word (not a boolean, not "--name=value"); nil otherwise.
func valueFlag(fs *pflag.FlagSet, word string) *pflag.Flag {
	if fs == nil || strings.Contains(word, "=") {
		return nil
	}
	var f *pflag.Flag
	if name, ok := strings.CutPrefix(word, "--"); ok {
		f = fs.Lookup(name)
	} else {
		// -abc: only the last shorthand of a group can take a value.
		f = fs.ShorthandLookup(word[len(word)-1:])
	}
	if f == nil || f.NoOptDefVal != "" {
		return nil
	}
	return f
}

func find(list []*Command, word string) *Command {
	for _, c := range list {
		if lastWord(c.Name) == word {
			return c
		}
	}
	return nil
}

// Complete completes the last of words, the command line after the
// program's name (the last word is the one being typed, maybe "").
func (p *Program) Complete(words []string) Completion {
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	s := p.walk(words[:len(words)-1])
	var c Completion
	switch {
	case s.lost:
	case s.flag != nil:
		c = flagValues(s.flag, "")
	case strings.HasPrefix(cur, "--") && strings.Contains(cur, "=") && !s.dash:
		name, _, _ := strings.Cut(cur[2:], "=")
		if s.fs != nil && s.fs.Lookup(name) != nil {
			c = flagValues(s.fs.Lookup(name), "--"+name+"=")
		}
	case strings.HasPrefix(cur, "-") && !s.dash:
		for _, f := range visibleFlags(s.fs) {
			c.Candidates = append(c.Candidates, Candidate{"--" + f.Name, f.Usage})
			if f.Shorthand != "" {
				c.Candidates = append(c.Candidates, Candidate{"-" + f.Shorthand, f.Usage})
			}
		}
	case s.cmd == nil:
		c.Candidates = commandCandidates(p.Commands)
	case len(s.cmd.Subs) > 0 && s.pos == 0:
		c.Candidates = commandCandidates(s.cmd.Subs)
	default:
		c = p.argValues(s.cmd, s.pos)
	}
	c.Candidates = withPrefix(c.Candidates, cur)
	return c
}

func commandCandidates(list []*Command) []Candidate {
	out := make([]Candidate, 0, len(list))
	for _, c := range list {
		out = append(out, Candidate{lastWord(c.Name), c.Synopsis})
	}
	return out
}

// flagValues completes the value of f: the values annotated, else file
// names for a string flag; each candidate begins with prefix.
func flagValues(f *pflag.Flag, prefix string) Completion {
	if vs := f.Annotations[ValuesAnnotation]; len(vs) > 0 {
		var c Completion
		for _, v := range vs {
			c.Candidates = append(c.Candidates, Candidate{Word: prefix + v})
		}
		return c
	}
	t := f.Value.Type()
	return Completion{Files: prefix == "" && (t == "string" || t == "stringArray" || t == "stringSlice")}
}

// argValues completes the positional argument number pos of c.
func (p *Program) argValues(c *Command, pos int) Completion {
	args := positionals(c.Usage)
	if len(args) == 0 {
		return Completion{}
	}
	a := args[len(args)-1]
	switch {
	case pos < len(args):
		a = args[pos]
	case !a.repeat:
		return Completion{}
	}
	var out Completion
	for _, v := range a.choices {
		out.Candidates = append(out.Candidates, Candidate{Word: v})
	}
	if a.word == "" {
		return out
	}
	if p.Args == nil {
		out.Files = FileWords[a.word]
		return out
	}
	vs, files := p.Args(a.word)
	for _, v := range vs {
		out.Candidates = append(out.Candidates, Candidate{Word: v})
	}
	out.Files = files
	return out
}

func withPrefix(cs []Candidate, prefix string) []Candidate {
	var out []Candidate
	for _, c := range cs {
		if strings.HasPrefix(c.Word, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// WriteCompletion writes c as the scripts read it: one candidate a line,
// "WORD\tDESCRIPTION" (tabs and newlines in either made spaces), then
// ":files" if file names fit or ":nofiles".
func WriteCompletion(w io.Writer, c Completion) error {
	clean := strings.NewReplacer("\t", " ", "\n", " ")
	var b strings.Builder
	for _, x := range c.Candidates {
		b.WriteString(clean.Replace(x.Word))
		if x.Desc != "" {
			b.WriteString("\t" + clean.Replace(x.Desc))
		}
		b.WriteByte('\n')
	}
	if c.Files {
		b.WriteString(":files\n")
	} else {
		b.WriteString(":nofiles\n")
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write completion: %w", err)
	}
	return nil
}
