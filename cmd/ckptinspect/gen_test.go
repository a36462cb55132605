package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/cligen"
)

func ckptinspect(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

var (
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-(\w), )?--([\w-]+)`)
	manFlag  = regexp.MustCompile(`(?m)^(?:\\fB\\-(\w)\\fR, )?\\fB\\-\\-([\w\\-]+)\\fR`)
)

func flagSet(re *regexp.Regexp, text string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if m[1] != "" {
			out = append(out, "-"+m[1])
		}
		out = append(out, "--"+strings.ReplaceAll(m[2], `\-`, "-"))
	}
	sort.Strings(out)
	return out
}

// TestHelpCompletionManAgree: each command's flags are the same in its
// --help, in what completion offers and in its man page.
func TestHelpCompletionManAgree(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := ckptinspect("__man", dir); code != 0 {
		t.Fatalf("__man: exit %d: %s", code, errOut)
	}
	n := 0
	for name := range commands() {
		_, help, _ := ckptinspect(name, "--help")
		_, helpFlags, _ := strings.Cut(help, "\nFlags:\n")
		helpFlags, _, _ = strings.Cut(helpFlags, "\nExit codes:")
		_, comp, _ := ckptinspect(cligen.CompleteCommand, name, "-")
		var compFlags []string
		for _, l := range strings.Split(strings.TrimSpace(comp), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); !strings.HasPrefix(w, ":") {
				compFlags = append(compFlags, w)
			}
		}
		sort.Strings(compFlags)
		page, err := os.ReadFile(filepath.Join(dir, "ckptinspect-"+name+".1"))
		if err != nil {
			t.Fatal(err)
		}
		_, opts, _ := strings.Cut(string(page), ".SH OPTIONS\n")
		opts, _, _ = strings.Cut(opts, ".SH")
		h, m := flagSet(helpFlag, helpFlags), flagSet(manFlag, opts)
		n += len(h)
		if len(h) == 0 || !slices.Equal(h, compFlags) || !slices.Equal(h, m) {
			t.Errorf("%s: flags differ:\n--help     %q\ncompletion %q\nman page   %q", name, h, compFlags, m)
		}
	}
	if n < 20 {
		t.Errorf("only %d flags compared", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "ckptinspect.1")); err != nil {
		t.Error(err)
	}
}

func TestCompletion(t *testing.T) {
	code, out, _ := ckptinspect("completion", "fish")
	if code != 0 || !strings.Contains(out, "complete -c ckptinspect") {
		t.Errorf("completion fish = %d:\n%s", code, out)
	}
	if code, _, errOut := ckptinspect("completion", "tcsh"); code != exitUsage || !strings.Contains(errOut, "unknown shell") {
		t.Errorf("completion tcsh = %d, %q; want a usage error", code, errOut)
	}
	// Every argument is an archive file; flags complete per command.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"ver"}, "verify\tverify archives and list every problem\n:nofiles\n"},
		{[]string{"verify", ""}, ":files\n"},
		{[]string{"fuzz", "--seed", ""}, ":nofiles\n"},
		{[]string{"diff", "--parent", ""}, ":files\n"},
		{[]string{"show", "--v"}, "--verify\tread and verify each whole archive\n:nofiles\n"},
	} {
		if _, out, _ := ckptinspect(append([]string{cligen.CompleteCommand}, tt.args...)...); out != tt.want {
			t.Errorf("__complete %q = %q, want %q", tt.args, out, tt.want)
		}
	}
}
