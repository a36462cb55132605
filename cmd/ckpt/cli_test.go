package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/ckpt/ckpt/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"

	"github.com/ckpt/ckpt/engine"
)

// TestMain lets the test binary act as ckpt itself when the engine
// re-executes it as a container monitor.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == engine.MonitorCommand {
		os.Exit(engine.RunMonitor(os.Args[2:]))
	}
	if os.Getenv(cliEnv) == "1" {
		main() // the test binary as the ckpt binary (cliCommand)
	}
	os.Exit(m.Run())
}

func ckpt(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsage(t *testing.T) {
	root := t.TempDir()
	g := []string{"--root", root, "--runroot", filepath.Join(root, "run")}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring of stdout
		stderr     string // substring of stderr
		emptyOut   bool
		emptyError bool
	}{
		{name: "no args", args: nil, code: exitUsage, stderr: "Usage:"},
		{name: "help", args: []string{"--help"}, code: 0, stdout: "Commands:", emptyError: true},
		{name: "help cmd", args: []string{"help", "checkpoint"}, code: 0, stdout: "--leave-running"},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`},
		{name: "unknown global flag", args: []string{"--nope", "ps"}, code: exitUsage, stderr: "unknown flag"},
		{name: "checkpoint help", args: []string{"checkpoint", "--help"}, code: 0, stdout: "Exit status:", emptyError: true},
		{name: "checkpoint help short flags", args: []string{"checkpoint", "-h"}, code: 0, stdout: "-R, --leave-running"},
		{name: "restore help", args: []string{"restore", "--help"}, code: 0, stdout: "--tcp-close"},
		{name: "checkpoint no target", args: []string{"checkpoint"}, code: exitUsage, stderr: "at least one name or id", emptyOut: true},
		{name: "checkpoint all and name", args: []string{"checkpoint", "-a", "x"}, code: exitUsage, stderr: "cannot be used together"},
		{name: "checkpoint all and latest", args: []string{"checkpoint", "-a", "-l"}, code: exitUsage, stderr: "cannot be used together"},
		{name: "checkpoint unknown flag", args: []string{"checkpoint", "--frobnicate", "x"}, code: exitUsage, stderr: "unknown flag: --frobnicate"},
		{name: "restore tcp both", args: []string{"restore", "--tcp-established", "--tcp-close", "x"}, code: exitUsage, stderr: "cannot be used together"},
		{name: "run missing image", args: []string{"run", "img"}, code: exitFailure, stderr: "no such image: img: fetch it first with `ckpt image pull img`"},
		{name: "run bad network", args: []string{"run", "--network", "bridge", "img", "/bin/x"}, code: exitUsage, stderr: "--network must be none or host"},
		{name: "run bad env", args: []string{"run", "-e", "=x", "img", "/bin/x"}, code: exitUsage, stderr: "invalid --env"},
		{name: "ps extra arg", args: []string{"ps", "x"}, code: exitUsage, stderr: "takes no arguments"},
		{name: "ps json empty", args: []string{"ps", "--json"}, code: 0, stdout: `"version": 1`},
		{name: "kill bad signal", args: []string{"kill", "-s", "NOPE", "x"}, code: exitUsage, stderr: "unknown signal"},
		{name: "logs unknown", args: []string{"logs", "nosuch"}, code: 1, stderr: "no such container"},
		{name: "checkpoint unknown", args: []string{"checkpoint", "nosuch"}, code: 1, stderr: "ckpt: checkpoint nosuch:"},
		{name: "image no sub", args: []string{"image"}, code: exitUsage, stderr: "too few arguments"},
		{name: "image bad sub", args: []string{"image", "frob"}, code: exitUsage, stderr: "unknown subcommand"},
		{name: "image import args", args: []string{"image", "import", "x"}, code: exitUsage, stderr: "too few arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				args = append(append([]string{}, g...), args...)
			}
			code, out, errOut := ckpt(t, args...)
			if code != tt.code {
				t.Errorf("ckpt %q = exit %d, want %d\nstdout: %s\nstderr: %s", args, code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("ckpt %q stdout = %q, want it to contain %q", args, out, tt.stdout)
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("ckpt %q stderr = %q, want it to contain %q", args, errOut, tt.stderr)
			}
			if tt.emptyOut && out != "" {
				t.Errorf("ckpt %q wrote to stdout: %q", args, out)
			}
			if tt.emptyError && errOut != "" {
				t.Errorf("ckpt %q wrote to stderr: %q", args, errOut)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"KILL": 9, "SIGTERM": 15, "term": 15, "9": 9, "HUP": 1, "USR1": 10} {
		got, ok := parseSignal(in)
		if !ok || int(got) != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "99"} {
		if _, ok := parseSignal(bad); ok {
			t.Errorf("parseSignal(%q) succeeded", bad)
		}
	}
}

// TestCLIEndToEnd drives the real runc and CRIU through the CLI: import,
// run, checkpoint --print-stats, restore, logs, exec, ps --json, rm.
func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testutil.RequireRoot(t)
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	dir := t.TempDir()
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	c := func(args ...string) (int, string, string) {
		t.Helper()
		return ckpt(t, append(append([]string{}, g...), args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := c(args...)
		if code != 0 {
			t.Fatalf("ckpt %q = exit %d\nstderr: %s", args, code, errOut)
		}
		return out
	}
	if code, out, errOut := c("check"); code != 0 {
		testutil.Missing(t, "ckpt check: %s%s", out, errOut)
	}
	t.Cleanup(func() {
		c("rm", "-f", "cli")
		e := &engine.Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
		_ = e.ImageRemove(context.Background(), "workload")
		_ = e.Close()
	})
	must("image", "import", tarPath, "workload")
	if out := must("image", "ls"); !strings.Contains(out, "localhost/workload:latest") {
		t.Errorf("image ls = %q", out)
	}
	id := strings.TrimSpace(must("run", "-d", "--name", "cli", "-v", "vol1:/data", "workload", "/bin/counter", "-interval", "50ms"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an ID", id)
	}
	waitFor(t, func() bool { return strings.Contains(must("logs", "cli"), "counter 3\n") })
	out := must("checkpoint", "--print-stats", "-l")
	var st struct {
		Duration   int64 `json:"podman_checkpoint_duration"`
		Containers []struct {
			ID      string                 `json:"Id"`
			Runtime int64                  `json:"runtime_checkpoint_duration"`
			CRIU    *engine.CRIUStatistics `json:"criu_statistics"`
			Phases  []engine.Phase         `json:"ckpt_phases"`
		} `json:"container_statistics"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Containers) != 1 || st.Containers[0].ID != id ||
		st.Duration < st.Containers[0].Runtime || st.Containers[0].CRIU == nil || len(st.Containers[0].Phases) == 0 {
		t.Fatalf("checkpoint --print-stats = %s (%v)", out, err)
	}
	var ps struct {
		Version    int                 `json:"version"`
		Containers []*engine.Container `json:"containers"`
	}
	if err := json.Unmarshal([]byte(must("ps", "-a", "--json")), &ps); err != nil || ps.Version != 1 ||
		len(ps.Containers) != 1 || ps.Containers[0].Status != engine.StatusCheckpointed {
		t.Fatalf("ps -a --json after checkpoint: %+v, %v", ps, err)
	}
	if code, _, errOut := c("checkpoint", "cli"); code != 1 || !strings.Contains(errOut, "not running") {
		t.Errorf("checkpoint of a checkpointed container = %d, %q", code, errOut)
	}
	must("restore", "-a")
	before := strings.Count(must("logs", "cli"), "\n")
	waitFor(t, func() bool { return strings.Count(must("logs", "cli"), "\n") > before+2 })
	if code, out, _ := c("exec", "cli", "/bin/counter", "-ticks", "1", "-interval", "1ms", "-file", ""); code != 0 || !strings.Contains(out, "counter 1") {
		t.Errorf("exec after restore = %d, %q", code, out)
	}
	if code, _, errOut := c("rm", "cli"); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("rm of a running container = %d, %q; want 1 and a hint about --force", code, errOut)
	}
	must("stop", "-t", "5", "cli")
	if out := must("ps", "-a"); !strings.Contains(out, "exited (0)") {
		t.Errorf("ps -a after stop = %q", out)
	}
	must("rm", "cli")
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("timed out")
}
