package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutputFormats runs every command that prints data with --json and
// with --format json: both write the same one JSON document, the default
// writes none, and a --json contradicted by --format or an unknown format
// is a usage error.
func TestOutputFormats(t *testing.T) {
	dir := t.TempDir()
	a := writeArchive(t, dir, "a.ckpt", `{"annotations":{"x":"1"}}`)
	b := writeArchive(t, dir, "b.ckpt", `{"annotations":{"x":"2"}}`)
	fuzzOut := filepath.Join(dir, "findings")
	cmds := []struct {
		name  string
		human string // the default format's name
		args  []string
		code  int
	}{
		{"show", "table", []string{a}, 0},
		{"inspect", "tree", []string{"--ps-tree", a}, 0},
		{"memparse", "table", []string{a}, 0},
		{"memparse", "table", []string{"-s", "tiny", a}, 0},
		{"verify", "text", []string{a}, 0},
		{"diff", "tree", []string{a, b}, 1},
		{"fuzz", "text", []string{"--iterations", "5", "--seed", "1", "--out", fuzzOut, a}, 0},
	}
	runArgs := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, c := range cmds {
		t.Run(c.name, func(t *testing.T) {
			outs := map[string]string{}
			// The first three ask for JSON.
			for i, flags := range [][]string{{"--json"}, {"--format", "json"}, {"--json", "--format", "json"}, nil, {"--format", c.human}} {
				args := append(append([]string{c.name}, flags...), c.args...)
				code, out, errOut := runArgs(args...)
				if code != c.code {
					t.Fatalf("run(%q) = %d, want %d; stderr: %s", args, code, c.code, errOut)
				}
				var doc struct {
					Version int `json:"version"`
				}
				isJSON := json.Unmarshal([]byte(out), &doc) == nil && doc.Version == 1
				if wantJSON := i < 3; isJSON != wantJSON {
					t.Errorf("run(%q): JSON document %v, want %v:\n%s", args, isJSON, wantJSON, out)
				}
				outs[strings.Join(flags, " ")] = out
			}
			if c.name != "fuzz" && outs["--json"] != outs["--format json"] {
				t.Errorf("%s: --json and --format json differ:\n%s\n%s", c.name, outs["--json"], outs["--format json"])
			}
			for _, flags := range [][]string{{"--json", "--format", c.human}, {"--format", "xml"}} {
				args := append(append([]string{c.name}, flags...), c.args...)
				if code, _, errOut := runArgs(args...); code != exitUsage || !strings.Contains(errOut, "format") {
					t.Errorf("run(%q) = %d, %q; want a usage error about the format", args, code, errOut)
				}
			}
		})
	}
}

// TestShowFileColumn shows two copies of one checkpoint: only the FILE
// column tells their rows apart.
func TestShowFileColumn(t *testing.T) {
	dir := t.TempDir()
	a := writeArchive(t, dir, "first.ckpt", `{}`)
	raw, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "second.ckpt")
	if err := os.WriteFile(b, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"show", a, b}, &stdout, &stderr); code != 0 {
		t.Fatalf("show = %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "FILE ") || !strings.HasPrefix(lines[1], a+" ") || !strings.HasPrefix(lines[2], b+" ") {
		t.Errorf("show %s %s =\n%s\nwant a FILE column naming each", a, b, stdout.String())
	}
}
