package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

// shellLine is the ckpt binary (this test binary) with a's global flags
// and args as one sh command line.
func (a *attachEnv) shellLine(args ...string) string {
	a.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		a.t.Fatal(err)
	}
	words := append(append([]string{cliEnv + "=1", exe}, a.g...), args...)
	for i, w := range words[1:] {
		words[i+1] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}

// TestCLIPipeMigrate migrates counters between two engine roots through
// the real binary with no file on either side: a plain shell pipe
// (`ckpt checkpoint -e - p | ckpt restore -i -`), then --confirm-cmd,
// whose container is stopped only when the command exits 0: a target
// that refuses (a name in use there) or fails after reading everything
// leaves it running here, one that restores ends it.
func TestCLIPipeMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testutil.RequireTool(t, "criu")
	a, b := newAttachEnv(t), newAttachEnv(t)
	counts := func(e *attachEnv, name string, n int) func() bool {
		return func() bool { return strings.Count(e.must("logs", name), "\n") > n }
	}
	a.must("run", "-d", "--name", "p", "workload", "/bin/counter", "-interval", "50ms")
	a.must("run", "-d", "--name", "q", "workload", "/bin/counter", "-interval", "50ms")
	waitFor(t, counts(a, "p", 3))

	pipe := a.shellLine("checkpoint", "-e", "-", "p") + " | " + b.shellLine("restore", "-i", "-")
	code, out, errOut := runShell(t, pipe)
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("%s = exit %d, stdout %q, stderr %s", pipe, code, out, errOut)
	}
	if c := a.find("p"); c == nil || c.Status != engine.StatusExited {
		t.Errorf("the source after the pipe: %+v, want exited", c)
	}
	at := strings.Count(a.must("logs", "p"), "\n")
	waitFor(t, counts(b, "p", at+2))

	for _, tc := range []struct{ name, cmd, want string }{
		{"refused", b.shellLine("restore", "-i", "-", "--name", "p"), "a container named p exists"},
		{"failed", "cat >/dev/null; exit 3", "did not confirm"},
	} {
		code, _, errOut := a.run(nil, "checkpoint", "-e", "-", "--confirm-cmd", tc.cmd, "q")
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: checkpoint --confirm-cmd = exit %d, stderr %q; want a failure saying %q", tc.name, code, errOut, tc.want)
		}
		t.Logf("%s: %s", tc.name, errOut)
		if c := a.find("q"); c == nil || c.Status != engine.StatusRunning {
			t.Fatalf("%s: the source after an unconfirmed export: %+v, want running", tc.name, c)
		}
		n := strings.Count(a.must("logs", "q"), "\n")
		waitFor(t, counts(a, "q", n+2))
	}
	if l := b.list(); len(l) != 1 {
		t.Errorf("the target has %d containers after the refusals, want 1", len(l))
	}
	code, out, errOut = a.run(nil, "checkpoint", "-e", "-", "--confirm-cmd", b.shellLine("restore", "-i", "-", "--name", "q2"), "q")
	lines := strings.Fields(out)
	if code != 0 || len(lines) != 2 || len(lines[0]) != 64 || lines[1] != "q" {
		t.Fatalf("checkpoint --confirm-cmd = exit %d, stdout %q (want the target's ID, then q), stderr %s", code, out, errOut)
	}
	if c := a.find("q"); c == nil || c.Status != engine.StatusExited {
		t.Errorf("the source after a confirmed export: %+v, want exited", c)
	}
	at = strings.Count(a.must("logs", "q"), "\n")
	waitFor(t, counts(b, "q2", at+2))
}

// runShell runs line with sh (the exit status is its last command's)
// and returns its exit code and output.
func runShell(t *testing.T, line string) (code int, stdout, stderr string) {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", line)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return wait(t, c), o.String(), e.String()
}
