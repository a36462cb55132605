package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/cligen"
	"github.com/ckpt/ckpt/internal/testutil"
)

// TestDescribe: every command of the table is described, with its
// subcommands, and probing one runs nothing (no engine, no root check).
func TestDescribe(t *testing.T) {
	p, err := program(context.Background(), &globalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Commands {
		got = append(got, c.Name)
		for _, s := range c.Subs {
			got = append(got, s.Name)
		}
	}
	for _, c := range commands() {
		if !slices.Contains(got, c.name) {
			t.Errorf("command %s is not described", c.name)
		}
	}
	for _, want := range []string{"image import", "image ls", "image rm", "volume create", "volume ls", "volume inspect", "volume rm", "volume prune", "completion"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q is not described (got %q)", want, got)
		}
	}
}

var (
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-(\w), )?--([\w-]+)`)
	manFlag  = regexp.MustCompile(`(?m)^(?:\\fB\\-(\w)\\fR, )?\\fB\\-\\-([\w\\-]+)\\fR`)
)

// flagSet returns the "-s" and "--long" flags that re finds in text.
func flagSet(re *regexp.Regexp, text string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if m[1] != "" {
			out = append(out, "-"+m[1])
		}
		out = append(out, "--"+strings.ReplaceAll(m[2], `\-`, "-"))
	}
	slices.Sort(out)
	return out
}

// section returns the part of text after the line start, up to the
// first line that begins with end ("" if there is no start).
func section(text, start, end string) string {
	_, rest, ok := strings.Cut(text, "\n"+start+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n"+end); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// TestHelpCompletionManAgree: each command's flags are the same in its
// --help, in what completion offers and in its man page, and are those
// of the flag set it parses; the global flags too.
func TestHelpCompletionManAgree(t *testing.T) {
	p, err := program(context.Background(), &globalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if code, _, errOut := ckpt(t, manCommand, dir); code != 0 {
		t.Fatalf("ckpt %s: exit %d: %s", manCommand, code, errOut)
	}
	check := func(what string, source, help []string, args []string, page string) {
		t.Helper()
		_, comp, _ := ckpt(t, append(append([]string{cligen.CompleteCommand}, args...), "-")...)
		var compFlags []string
		for _, l := range strings.Split(strings.TrimSpace(comp), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); !strings.HasPrefix(w, ":") {
				compFlags = append(compFlags, w)
			}
		}
		slices.Sort(compFlags)
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		heading := ".SH OPTIONS"
		if len(args) == 0 {
			heading = ".SH GLOBAL OPTIONS"
		}
		man := flagSet(manFlag, section(string(b), heading, ".SH"))
		if !slices.Equal(help, source) || !slices.Equal(compFlags, source) || !slices.Equal(man, source) {
			t.Errorf("%s: flags differ:\nflag set   %q\n--help     %q\ncompletion %q\nman page   %q", what, source, help, compFlags, man)
		}
	}
	var g globalOptions
	_, mainHelp, _ := ckpt(t, "--help")
	check("ckpt", flagSet(helpFlag, globalFlags(&g).FlagUsages()), flagSet(helpFlag, section(mainHelp, "Global flags:", "\n")), nil, "ckpt.1")
	n := 0
	for _, c := range p.All() {
		words := strings.Fields(c.Name)
		_, help, _ := ckpt(t, append(words, "--help")...)
		source := []string{}
		if c.Flags != nil {
			source = flagSet(helpFlag, c.Flags.FlagUsages())
		}
		n += len(source)
		check(c.Name, source, flagSet(helpFlag, section(help, "Flags:", "\n")), words, cligen.ManPage("ckpt", c))
	}
	if n < 20 {
		t.Errorf("only %d flags compared: the flag sets were not found", n)
	}
}

// TestCompletionCommand: ckpt completion prints each shell's script, and
// refuses other shells as a usage error.
func TestCompletionCommand(t *testing.T) {
	for sh, want := range map[string]string{
		"bash": "complete -F _ckpt_complete ckpt",
		"zsh":  "#compdef ckpt\n",
		"fish": "complete -c ckpt -f -a '(_ckpt_complete)'",
	} {
		code, out, errOut := ckpt(t, "completion", sh)
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "__complete") || errOut != "" {
			t.Errorf("ckpt completion %s = %d (%s), want a script with %q:\n%s", sh, code, errOut, want, out)
		}
	}
	for _, args := range [][]string{{"completion", "tcsh"}, {"completion"}, {"completion", "bash", "zsh"}} {
		if code, out, errOut := ckpt(t, args...); code != exitUsage || out != "" || !strings.Contains(errOut, "ckpt: completion:") {
			t.Errorf("ckpt %q = %d, %q, %q; want a usage error", args, code, out, errOut)
		}
	}
}

// bashCompleter returns a function that completes a command line as
// bash does with ckpt's script, ckpt being this test binary.
func bashCompleter(t *testing.T) func(line string, env ...string) []string {
	t.Helper()
	bash := testutil.RequireTool(t, "bash")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\n" + asCKPT + "=1 exec '" + exe + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "ckpt"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	_, script, _ := ckpt(t, "completion", "bash")
	scriptPath := filepath.Join(bin, "ckpt.bash")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(line string, env ...string) []string {
		t.Helper()
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c",
			`source "$1" && COMP_LINE=$2 && COMP_POINT=${#COMP_LINE} && _ckpt_complete && printf '%s\n' "${COMPREPLY[@]}"`,
			"bash", scriptPath, line)
		cmd.Env = append(append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH")), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("complete %q: %v\n%s", line, err, out)
		}
		return strings.Fields(string(out))
	}
}

// TestBashCompletion runs bash with ckpt's script: commands,
// subcommands, flags, choices and file names.
func TestBashCompletion(t *testing.T) {
	complete := bashCompleter(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "abc.tar.zst"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string][]string{
		"ckpt vol":                {"volume"},
		"ckpt che":                {"checkpoint", "check"},
		"ckpt volume r":           {"rm"},
		"ckpt image ":             {"pull", "push", "load", "save", "import", "ls", "rm"},
		"ckpt volume rm --f":      {"--force"},
		"ckpt checkpoint --exp":   {"--export"},
		"ckpt --ro":               {"--root"},
		"ckpt ps --a":             {"--all"},
		"ckpt completion ":        {"bash", "zsh", "fish"},
		"ckpt run --network ":     {"none", "host"},
		"ckpt create --network=h": {"host"},
		"ckpt checkpoint --export " + dir + "/ab": {dir + "/abc.tar.zst"},
		"ckpt nosuch ": nil,
	} {
		if got := complete(line); !slices.Equal(got, want) {
			t.Errorf("complete %q = %q, want %q", line, got, want)
		}
	}
}

// TestBashCompletionNames: container, image and volume names come from
// the engine of the global flags or of CKPT_ROOT; an image name's part
// after its colon completes as bash replaces it.
func TestBashCompletionNames(t *testing.T) {
	if testing.Short() {
		t.Skip("imports an image")
	}
	dir := t.TempDir()
	h := newCLIHost(t, dir, "compctr")
	complete := bashCompleter(t)
	h.must("create", "--name", "compctr", "workload", "/bin/counter")
	h.must("volume", "create", "compvol")
	g := strings.Join(h.g, " ")
	for line, want := range map[string][]string{
		"ckpt " + g + " logs comp":                      {"compctr"},
		"ckpt " + g + " stop compctr ":                  {"compctr"},
		"ckpt " + g + " volume rm comp":                 {"compvol"},
		"ckpt " + g + " volume inspect -a ":             {"compvol"},
		"ckpt " + g + " image rm localhost/work":        {"localhost/workload:latest"},
		"ckpt " + g + " image rm localhost/workload:":   {"latest"},
		"ckpt " + g + " run -d --name x localhost/work": {"localhost/workload:latest"},
	} {
		if got := complete(line); !slices.Equal(got, want) {
			t.Errorf("complete %q = %q, want %q", line, got, want)
		}
	}
	env := []string{"CKPT_ROOT=" + h.g[1], "CKPT_RUNROOT=" + h.g[3]}
	if got := complete("ckpt logs comp", env...); !slices.Equal(got, []string{"compctr"}) {
		t.Errorf("with CKPT_ROOT, complete logs = %q, want compctr", got)
	}
	if got := complete("ckpt --root " + filepath.Join(dir, "none") + " logs "); len(got) > 0 {
		t.Errorf("an engine root that does not exist completed %q", got)
	}
}

// TestMakeInstall: make install lays out the binaries, completion
// scripts and man pages under DESTDIR and PREFIX; make uninstall removes
// them.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	makeTool := testutil.RequireTool(t, "make")
	testutil.RequireTool(t, "go")
	dest := t.TempDir()
	mk := func(target string) {
		t.Helper()
		cmd := exec.Command(makeTool, "-C", "../..", target, "DESTDIR="+dest, "PREFIX=/usr", "BIN="+filepath.Join(dest, "build"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	mk("install")
	usr := filepath.Join(dest, "usr")
	want := []string{"bin/ckpt", "bin/ckptinspect",
		"share/bash-completion/completions/ckpt", "share/bash-completion/completions/ckptinspect",
		"share/zsh/site-functions/_ckpt", "share/zsh/site-functions/_ckptinspect",
		"share/fish/vendor_completions.d/ckpt.fish", "share/fish/vendor_completions.d/ckptinspect.fish"}
	p, err := program(context.Background(), &globalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, "share/man/man1/ckpt.1")
	for _, c := range p.All() {
		want = append(want, "share/man/man1/"+cligen.ManPage("ckpt", c))
	}
	got := installed(t, usr)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("make install did not install %s", w)
		}
	}
	for _, g := range got {
		if strings.HasPrefix(g, "share/man/man1/ckpt") && !strings.HasPrefix(g, "share/man/man1/ckptinspect") && !slices.Contains(want, g) {
			t.Errorf("make install installed %s, which no command has", g)
		}
	}
	if !slices.Contains(got, "share/man/man1/ckptinspect-verify.1") {
		t.Errorf("no ckptinspect-verify.1 among %q", got)
	}
	script, err := exec.Command(filepath.Join(usr, "bin/ckpt"), "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(usr, "share/bash-completion/completions/ckpt")); string(b) != string(script) {
		t.Error("the installed bash completion is not the installed ckpt's")
	}
	if st, err := os.Stat(filepath.Join(usr, "bin/ckpt")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("installed ckpt: %v %v, want mode 0755", st.Mode(), err)
	}
	mk("uninstall")
	if left := installed(t, usr); len(left) > 0 {
		t.Errorf("make uninstall left %q", left)
	}
}

// installed lists the files under dir, relative to it.
func installed(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
