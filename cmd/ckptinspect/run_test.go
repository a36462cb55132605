package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

func writeArchive(t *testing.T, dir, name, spec string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := format.NewWriter(f, format.Manifest{Created: time.Unix(1_800_000_000, 0).UTC(), Engine: format.Engine{Name: "ckpt"},
		Container: format.Container{Name: "tiny", ID: "abc"}}, &format.WriterOptions{Compression: format.None, Concurrency: 1})
	if err := w.AddDir(format.CheckpointDir, "../../format/criuimg/testdata/tiny"); err != nil {
		t.Fatal(err)
	}
	if err := w.AddBytes(format.SpecName, []byte(spec)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	a := writeArchive(t, dir, "a.ckpt", `{"annotations":{"x":"1"}}`)
	b := writeArchive(t, dir, "b.ckpt", `{"annotations":{"x":"2"}}`)
	bad := filepath.Join(dir, "bad.ckpt")
	raw, _ := os.ReadFile(a)
	raw[len(raw)/2] ^= 1
	os.WriteFile(bad, raw, 0o600)
	crio := "../../testdata/legacy/crio.tar"
	// podman's archive after four -R checkpoints: stale images of
	// exited sleeps (issue 18).
	multi := "../../testdata/podman/multi.tar.zst"
	missing := filepath.Join(dir, "missing")
	fuzzOut := filepath.Join(dir, "findings")
	tests := []struct {
		name string
		args []string
		want int
		out  string // substring of stdout
	}{
		{"no command", nil, 2, ""},
		{"help", []string{"--help"}, 0, "Usage:"},
		{"unknown", []string{"frob"}, 2, ""},
		{"show help", []string{"show", "--help"}, 0, "Exit codes"},
		{"show bad flag", []string{"show", "--nope", a}, 2, ""},
		{"show no args", []string{"show"}, 2, ""},
		{"show", []string{"show", a, crio}, 0, "unverifiable"},
		{"show json", []string{"show", "--json", a}, 0, `"version": 1`},
		{"show missing", []string{"show", missing}, 1, ""},
		{"inspect", []string{"inspect", "--all", a}, 0, "Process tree"},
		{"inspect json", []string{"inspect", "--ps-tree", "--format", "json", a}, 0, `"processTree"`},
		{"inspect bad format", []string{"inspect", "--format", "xml", a}, 2, ""},
		{"inspect bad pid", []string{"inspect", "-p", "999", a}, 1, ""},
		{"inspect corrupt", []string{"inspect", bad}, 1, ""},
		{"memparse", []string{"memparse", a}, 0, "PID"},
		{"memparse hexdump", []string{"memparse", "--pid", "22557", a}, 0, "*"},
		{"memparse search", []string{"memparse", "-s", "tiny", "-c", "4", a}, 0, "tiny"},
		{"memparse two args", []string{"memparse", a, b}, 2, ""},
		{"memparse both searches", []string{"memparse", "-s", "x", "-r", "y", a}, 2, ""},
		{"verify clean", []string{"verify", a}, 0, "ok"},
		{"verify json", []string{"verify", "--json", a, bad}, 1, `"problems"`},
		{"verify problems", []string{"verify", bad}, 1, "problem"},
		{"verify legacy", []string{"verify", crio}, 0, "unverifiable"},
		{"verify legacy required", []string{"verify", "--require-manifest", crio}, 1, "unverifiable"},
		{"verify stale images", []string{"verify", multi}, 0, "note: stale image, not read by CRIU: checkpoint/pagemap-14.img: pid 14 is not in pstree.img"},
		{"verify stale json", []string{"verify", "--json", multi}, 0, `"reason": "pid 14 is not in pstree.img"`},
		{"inspect stale", []string{"inspect", "--ps-tree", multi}, 0, "Stale images: "},
		{"memparse stale", []string{"memparse", multi}, 0, "34   sleep"},
		{"memparse stale pid", []string{"memparse", "--pid", "14", multi}, 1, ""},
		{"verify missing", []string{"verify", missing}, 2, ""},
		{"verify no args", []string{"verify"}, 2, ""},
		{"diff same", []string{"diff", a, a}, 0, "identical"},
		{"diff different", []string{"diff", a, b}, 1, "spec.dump.annotations.x"},
		{"diff json", []string{"diff", "--format", "json", a, b}, 1, `"version": 1`},
		{"diff missing", []string{"diff", a, missing}, 2, ""},
		{"diff one arg", []string{"diff", a}, 2, ""},
		{"fuzz", []string{"fuzz", "--iterations", "20", "--seed", "1", "--out", fuzzOut, a}, 0, "execs/s"},
		{"fuzz both limits", []string{"fuzz", "--iterations", "2", "--duration", "1s", a}, 2, ""},
		{"fuzz missing seed", []string{"fuzz", "--iterations", "2", missing}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(context.Background(), tt.args, &stdout, &stderr)
			if got != tt.want {
				t.Errorf("run(%q) = %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, got, tt.want, stdout.String(), stderr.String())
			}
			if tt.out != "" && !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout.String(), tt.out)
			}
			if strings.Contains(strings.Join(tt.args, " "), "json") && got != 2 && !json.Valid(stdout.Bytes()) {
				t.Errorf("run(%q) stdout is not one JSON document", tt.args)
			}
		})
	}
}
