package cligen

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestPositionals(t *testing.T) {
	for _, tt := range []struct {
		usage string
		want  []arg
	}{
		{"ckpt ps [-a] [--json]", nil},
		{"ckpt logs [-f] CONTAINER", []arg{{word: "CONTAINER"}}},
		{"ckpt run [-d] [--name NAME] [-e K=V]... [-v VOLUME:/path]... [--network none|host] IMAGE CMD [ARG...]",
			[]arg{{word: "IMAGE"}, {word: "CMD"}, {word: "ARG", repeat: true}}},
		{"ckpt stop [-t SECONDS] CONTAINER...", []arg{{word: "CONTAINER", repeat: true}}},
		{"ckpt inspect [-f FORMAT] (CONTAINER... | -l)", []arg{{word: "CONTAINER", repeat: true}}},
		{"ckpt checkpoint [flags] CONTAINER... | -a | -l   (--export FILE: one container)", []arg{{word: "CONTAINER", repeat: true}}},
		{"ckpt restore [flags] CONTAINER... | -a | -l | --import FILE [--name NAME]", []arg{{word: "CONTAINER", repeat: true}}},
		{"ckpt volume create [-l K=V]... [--ignore] [NAME]", []arg{{word: "NAME"}}},
		{"ckpt image import SOURCE NAME", []arg{{word: "SOURCE"}, {word: "NAME"}}},
		{"ckpt completion bash|zsh|fish", []arg{{choices: []string{"bash", "zsh", "fish"}}}},
		{"ckptinspect diff A B [--format tree|json] [--parent FILE]...", []arg{{word: "A"}, {word: "B"}}},
		{"x [a [nested] b] FILE", []arg{{word: "FILE"}}},
	} {
		if got := positionals(tt.usage); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("positionals(%q) = %+v, want %+v", tt.usage, got, tt.want)
		}
	}
}

// testProgram is a small program with globals, subcommands, flags of each
// kind and dynamic arguments.
func testProgram() *Program {
	g := pflag.NewFlagSet("p", pflag.ContinueOnError)
	g.String("root", "/var/lib/p", "state directory")
	g.BoolP("verbose", "V", false, "say more")

	run := pflag.NewFlagSet("run", pflag.ContinueOnError)
	run.SortFlags = false
	run.BoolP("detach", "d", false, "in the background")
	run.String("name", "", "container name")
	run.String("network", "none", "network mode")
	_ = run.SetAnnotation("network", ValuesAnnotation, []string{"none", "host"})
	run.Int("memory", 0, "memory limit")
	run.String("old", "", "old flag")
	_ = run.MarkDeprecated("old", "use --name")

	rm := pflag.NewFlagSet("vol rm", pflag.ContinueOnError)
	rm.BoolP("force", "f", false, "force")
	return &Program{
		Name: "p", Synopsis: "a program", Usage: "p [global flags] COMMAND", Globals: g, Exits: "Exit status:\n  0 ok",
		Commands: []*Command{
			{Name: "run", Synopsis: "run a container", Usage: "p run [flags] IMAGE CMD [ARG...]", Flags: run,
				Desc: "Runs it.\n.dot starts a line\n\nIndented:\n  keep  me"},
			{Name: "logs", Synopsis: "print logs", Usage: "p logs CONTAINER"},
			{Name: "vol", Synopsis: "volumes", Usage: "p vol (rm|ls)", Subs: []*Command{
				{Name: "vol rm", Synopsis: "remove volumes", Usage: "p vol rm [-f] VOLUME...", Flags: rm},
				{Name: "vol ls", Synopsis: "list volumes", Usage: "p vol ls"},
			}},
			{Name: "completion", Synopsis: "scripts", Usage: "p completion bash|zsh|fish"},
		},
		Args: func(word string) ([]string, bool) {
			switch word {
			case "IMAGE":
				return []string{"alpine:latest", "busybox"}, false
			case "CONTAINER":
				return []string{"web", "db"}, false
			case "VOLUME":
				return []string{"data", "cache"}, false
			}
			return nil, word == "CMD" || word == "ARG"
		},
	}
}

func words(c Completion) []string {
	var out []string
	for _, x := range c.Candidates {
		out = append(out, x.Word)
	}
	return out
}

func TestComplete(t *testing.T) {
	p := testProgram()
	for _, tt := range []struct {
		line  []string
		want  []string
		files bool
	}{
		{[]string{""}, []string{"run", "logs", "vol", "completion"}, false},
		{[]string{"r"}, []string{"run"}, false},
		{[]string{"--"}, []string{"--root", "--verbose"}, false},
		{[]string{"-"}, []string{"--root", "--verbose", "-V"}, false},
		{[]string{"--root", ""}, nil, true},
		{[]string{"--root", "/x", "-V", "l"}, []string{"logs"}, false},
		{[]string{"--root=/x", "logs", ""}, []string{"web", "db"}, false},
		{[]string{"logs", "web", ""}, nil, false},
		{[]string{"run", "-"}, []string{"--detach", "-d", "--name", "--network", "--memory"}, false},
		{[]string{"run", "--network", ""}, []string{"none", "host"}, false},
		{[]string{"run", "--network="}, []string{"--network=none", "--network=host"}, false},
		{[]string{"run", "--name", ""}, nil, true},
		{[]string{"run", "--memory", ""}, nil, false},
		{[]string{"run", "-d", "--name", "x", "b"}, []string{"busybox"}, false},
		{[]string{"run", "busybox", ""}, nil, true},
		{[]string{"run", "busybox", "sh", "-c", ""}, nil, true},
		{[]string{"run", "--", "-"}, []string{}, false},
		{[]string{"vol", ""}, []string{"rm", "ls"}, false},
		{[]string{"vol", "rm", "-"}, []string{"--force", "-f"}, false},
		{[]string{"vol", "rm", "-f", "data", "c"}, []string{"cache"}, false},
		{[]string{"vol", "ls", ""}, nil, false},
		{[]string{"vol", "frob", ""}, nil, false},
		{[]string{"nosuch", ""}, nil, false},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}, false},
		{[]string{"completion", "bash", ""}, nil, false},
	} {
		c := p.Complete(tt.line)
		got := words(c)
		if len(got) == 0 && len(tt.want) == 0 {
			got, tt.want = nil, nil
		}
		if !reflect.DeepEqual(got, tt.want) || c.Files != tt.files {
			t.Errorf("Complete(%q) = %q files %v, want %q files %v", tt.line, got, c.Files, tt.want, tt.files)
		}
	}
}

func TestWriteCompletion(t *testing.T) {
	var b strings.Builder
	err := WriteCompletion(&b, Completion{Candidates: []Candidate{{"a", "the\ta"}, {"b:c", ""}}, Files: true})
	if want := "a\tthe a\nb:c\n:files\n"; err != nil || b.String() != want {
		t.Errorf("WriteCompletion wrote %q, %v; want %q", b.String(), err, want)
	}
	b.Reset()
	_ = WriteCompletion(&b, Completion{})
	if b.String() != ":nofiles\n" {
		t.Errorf("WriteCompletion of nothing wrote %q", b.String())
	}
}

func TestScript(t *testing.T) {
	for _, sh := range Shells {
		s, err := Script(sh, "my-prog")
		fn := "_my_prog_complete"
		if sh == "zsh" {
			fn = "_my-prog" // the name of the file zsh autoloads it from
		}
		if err != nil || !strings.Contains(s, "__complete") || !strings.Contains(s, fn) || strings.Contains(s, "PROG") || strings.Contains(s, "FUNC") {
			t.Errorf("Script(%s) = %v\n%s", sh, err, s)
		}
	}
	if _, err := Script("tcsh", "p"); !errors.Is(err, ErrShell) {
		t.Errorf("Script(tcsh) = %v, want ErrShell", err)
	}
	if _, err := Script("bash", "p; rm -rf /"); err == nil {
		t.Error("Script took a program name that is not a word")
	}
}

func TestMan(t *testing.T) {
	p := testProgram()
	p.Version, p.Date = "1.0", "2026-01-02"
	dir := t.TempDir()
	names, err := p.WriteMan(dir)
	want := []string{"p.1", "p-run.1", "p-logs.1", "p-vol.1", "p-vol-rm.1", "p-vol-ls.1", "p-completion.1"}
	if err != nil || !reflect.DeepEqual(names, want) {
		t.Fatalf("WriteMan = %q, %v; want %q", names, err, want)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, parts := range map[string][]string{
		"p.1": {`.TH "P" 1 "2026\-01\-02" "p 1.0" "User Commands"`, ".SH GLOBAL OPTIONS", `\fB\-V\fR, \fB\-\-verbose\fR`,
			`\fB\-\-root\fR \fIstring\fR` + "\nstate directory (default /var/lib/p)", ".BR p\\-run (1)\nrun a container",
			".SH EXIT STATUS\n.nf\n  0 ok\n.fi"},
		"p-run.1": {".SH NAME\np\\-run \\- run a container", "Runs it.\n\\&.dot starts a line\n.PP\n.nf\nIndented:\n  keep  me\n.fi",
			`\fB\-d\fR, \fB\-\-detach\fR`, `\fB\-\-network\fR \fIstring\fR` + "\nnetwork mode (default none)",
			".SH SEE ALSO\n.BR p (1)\n"},
		"p-vol.1":    {".SH SUBCOMMANDS", ".BR p\\-vol\\-rm (1)"},
		"p-vol-rm.1": {".SH SEE ALSO\n.BR p (1) ,\n.BR p\\-vol (1)\n", `\fB\-f\fR, \fB\-\-force\fR`},
	} {
		page := read(name)
		for _, s := range parts {
			if !strings.Contains(page, s) {
				t.Errorf("%s lacks %q:\n%s", name, s, page)
			}
		}
	}
	if page := read("p-run.1"); strings.Contains(page, "old") {
		t.Errorf("p-run.1 documents the deprecated --old:\n%s", page)
	}
	if page := read("p-logs.1"); strings.Contains(page, "OPTIONS") {
		t.Errorf("p-logs.1 has an OPTIONS section without flags:\n%s", page)
	}
}
