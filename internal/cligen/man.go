package cligen

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/spf13/pflag"
)

// ManPage is the file name of the man page of command c of program prog
// (c nil: the program's own): "ckpt.1", "ckpt-image-rm.1".
func ManPage(prog string, c *Command) string {
	if c == nil {
		return prog + ".1"
	}
	return prog + "-" + strings.ReplaceAll(c.Name, " ", "-") + ".1"
}

// WriteMan writes p's man pages into dir, which must exist: the
// program's and one for each command and subcommand. It returns the file
// names written.
func (p *Program) WriteMan(dir string) ([]string, error) {
	var names []string
	pages := append([]*Command{nil}, p.All()...)
	for _, c := range pages {
		name := ManPage(p.Name, c)
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), p.Man(c), 0o644); err != nil {
			return names, fmt.Errorf("write man page %s: %w", filepath.Join(dir, name), err)
		}
		names = append(names, name)
	}
	return names, nil
}

// Man returns the roff man page of command c (nil: the program's own).
func (p *Program) Man(c *Command) []byte {
	var b bytes.Buffer
	title, synopsis, usage, desc, exits := p.Name, p.Synopsis, p.Usage, p.Desc, p.Exits
	fs := p.Globals
	if c != nil {
		title = p.Name + "-" + strings.ReplaceAll(c.Name, " ", "-")
		synopsis, usage, desc, fs = c.Synopsis, c.Usage, c.Desc, c.Flags
		if c.Exits != "" {
			exits = c.Exits
		}
	}
	footer := ""
	if p.Version != "" {
		footer = p.Name + " " + p.Version
	}
	fmt.Fprintf(&b, ".TH %s 1 %s %s \"User Commands\"\n", quote(strings.ToUpper(title)), quote(p.Date), quote(footer))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", esc(title), esc(synopsis))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.nf\n%s\n.fi\n", escLines(strings.ReplaceAll(usage, " | "+p.Name+" ", "\n"+p.Name+" ")))
	if desc != "" {
		fmt.Fprintf(&b, ".SH DESCRIPTION\n%s", paragraphs(desc))
	}
	if c == nil && len(p.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, x := range p.Commands {
			fmt.Fprintf(&b, ".TP\n.BR %s (1)\n%s\n", esc(strings.TrimSuffix(ManPage(p.Name, x), ".1")), esc(x.Synopsis))
		}
	}
	if c != nil && len(c.Subs) > 0 {
		b.WriteString(".SH SUBCOMMANDS\n")
		for _, x := range c.Subs {
			fmt.Fprintf(&b, ".TP\n.BR %s (1)\n%s\n", esc(strings.TrimSuffix(ManPage(p.Name, x), ".1")), esc(x.Synopsis))
		}
	}
	if flags := visibleFlags(fs); len(flags) > 0 {
		heading := "OPTIONS"
		if c == nil {
			heading = "GLOBAL OPTIONS"
		}
		fmt.Fprintf(&b, ".SH %s\n", heading)
		for _, f := range flags {
			b.WriteString(manFlag(f))
		}
	}
	if c == nil {
		for _, s := range p.Sections {
			fmt.Fprintf(&b, ".SH %s\n%s", esc(strings.ToUpper(s.Title)), paragraphs(s.Text))
		}
	}
	if exits != "" {
		fmt.Fprintf(&b, ".SH EXIT STATUS\n.nf\n%s\n.fi\n", escLines(exitLines(exits)))
	}
	b.WriteString(seeAlso(p, c))
	return b.Bytes()
}

// seeAlso is the SEE ALSO section: the program's page and the parent's
// from a command's, the commands' from the program's.
func seeAlso(p *Program, c *Command) string {
	var refs []string
	ref := func(x *Command) {
		refs = append(refs, ".BR "+esc(strings.TrimSuffix(ManPage(p.Name, x), ".1"))+" (1)")
	}
	switch {
	case c == nil:
		for _, x := range p.Commands {
			ref(x)
		}
	default:
		ref(nil)
		for _, x := range p.All() {
			if len(x.Subs) > 0 && strings.HasPrefix(c.Name, x.Name+" ") {
				ref(x)
			}
		}
	}
	for i := range refs[:len(refs)-1] {
		refs[i] += " ,"
	}
	return ".SH SEE ALSO\n" + strings.Join(refs, "\n") + "\n"
}

// manFlag is a flag's tagged paragraph, with the value name and default
// that pflag's FlagUsages shows.
func manFlag(f *pflag.Flag) string {
	name, usage := pflag.UnquoteUsage(f)
	head := "\\fB\\-\\-" + esc(f.Name) + "\\fR"
	if f.Shorthand != "" {
		head = "\\fB\\-" + esc(f.Shorthand) + "\\fR, " + head
	}
	if name != "" {
		head += " \\fI" + esc(name) + "\\fR"
	}
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
	default:
		usage += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	return ".TP\n" + head + "\n" + esc(usage) + "\n"
}

// exitLines drops the "Exit status:" heading of an exit status text.
func exitLines(s string) string {
	s = strings.Trim(s, "\n")
	if first, rest, ok := strings.Cut(s, "\n"); ok && strings.HasSuffix(first, ":") && !strings.HasPrefix(first, " ") {
		s = rest
	}
	return s
}

// paragraphs renders text: blank lines separate paragraphs, which roff
// fills unless one of their lines is indented.
func paragraphs(text string) string {
	var b strings.Builder
	for i, para := range strings.Split(strings.Trim(text, "\n"), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		para = strings.Trim(para, "\n")
		if strings.Contains("\n"+para, "\n ") {
			fmt.Fprintf(&b, ".nf\n%s\n.fi\n", escLines(para))
			continue
		}
		b.WriteString(escLines(para) + "\n")
	}
	return b.String()
}

// esc escapes text for roff: backslashes and minus signs.
func esc(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}

// escLines escapes each line and keeps a line from starting a request.
func escLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		l = esc(l)
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

// quote makes s one roff macro argument.
func quote(s string) string {
	return `"` + strings.ReplaceAll(esc(s), `"`, `\(dq`) + `"`
}
