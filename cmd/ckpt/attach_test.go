package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

// cliEnv makes the test binary run as ckpt itself (TestMain).
const cliEnv = "CKPT_TEST_CLI"

// attachEnv is an engine root with the workload image, driven through the
// ckpt binary (this test binary) as a user's shell would.
type attachEnv struct {
	t *testing.T
	g []string // global flags
}

func newAttachEnv(t *testing.T) *attachEnv {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	dir := t.TempDir()
	a := &attachEnv{t: t, g: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}}
	t.Cleanup(func() {
		for _, x := range a.list() {
			ckpt(t, append(a.g, "rm", "-f", x.ID)...)
		}
		e := &engine.Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
		_ = e.ImageRemove(context.Background(), "workload")
		_ = e.Close()
	})
	a.must("image", "import", tarPath, "workload")
	return a
}

// cmd returns the ckpt command line args as a process.
func (a *attachEnv) cmd(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		a.t.Fatal(err)
	}
	c := exec.Command(exe, append(append([]string{}, a.g...), args...)...)
	c.Env = append(os.Environ(), cliEnv+"=1")
	return c
}

// run runs ckpt with stdin (nil: the test's /dev/null) and a time limit,
// and returns its exit code and output.
func (a *attachEnv) run(stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	a.t.Helper()
	c := a.cmd(args...)
	var o, e bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &o, &e
	if err := c.Start(); err != nil {
		a.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = c.Process.Kill()
		<-done
		a.t.Fatalf("ckpt %q did not return within 60s (stdout %q, stderr %q)", args, o.String(), e.String())
	}
	return c.ProcessState.ExitCode(), o.String(), e.String()
}

func (a *attachEnv) must(args ...string) string {
	a.t.Helper()
	code, out, errOut := ckpt(a.t, append(append([]string{}, a.g...), args...)...)
	if code != 0 {
		a.t.Fatalf("ckpt %q = exit %d\nstderr: %s", args, code, errOut)
	}
	return out
}

func (a *attachEnv) list() []*engine.Container {
	e := &engine.Engine{Root: a.g[1], RunRoot: a.g[3]}
	defer e.Close()
	l, _ := e.List(context.Background())
	return l
}

func (a *attachEnv) find(name string) *engine.Container {
	for _, x := range a.list() {
		if x.Name == name {
			return x
		}
	}
	return nil
}

// start starts ckpt in the background with its stdout in out.
func (a *attachEnv) start(stdin io.Reader, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	a.t.Helper()
	c := a.cmd(args...)
	var o, e syncBuffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &o, &e
	if err := c.Start(); err != nil {
		a.t.Fatal(err)
	}
	return c, &o, &e
}

// wait waits for c to exit within a minute and returns its exit code.
func wait(t *testing.T, c *exec.Cmd) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
		return c.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		_ = c.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within 60s", c.Args)
		return -1
	}
}

// TestRunStdin: the container's stdin is at EOF without -i (`echo hi |
// ckpt run IMAGE cat` used to hang), and piped to it with -i.
func TestRunStdin(t *testing.T) {
	a := newAttachEnv(t)
	for _, tt := range []struct {
		name  string
		stdin io.Reader
		flags []string
		want  string
	}{
		{"pipe without -i", strings.NewReader("hi\n"), nil, ""},
		{"dev null without -i", nil, nil, ""},
		{"pipe with -i", strings.NewReader("hi\n"), []string{"-i"}, "hi\n"},
		{"dev null with -i", nil, []string{"-i"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &attachEnv{t: t, g: a.g} // failing this subtest, not its parent
			args := append(append([]string{"run"}, tt.flags...), "workload", "/bin/counter", "-cat")
			code, out, errOut := a.run(tt.stdin, args...)
			if code != 0 || out != tt.want {
				t.Errorf("ckpt %q = %d, stdout %q (stderr %q), want 0, %q", args, code, out, errOut, tt.want)
			}
		})
	}
}

// TestRunRm: --rm leaves no record, attached (at once) or detached (once
// the container exits); a --rm container is checkpointed only by an export.
func TestRunRm(t *testing.T) {
	a := newAttachEnv(t)
	code, out, errOut := a.run(strings.NewReader("x\n"), "run", "--rm", "-i", "--name", "rm1", "workload", "/bin/counter", "-cat")
	if code != 0 || out != "x\n" {
		t.Fatalf("run --rm -i = %d, %q (stderr %q)", code, out, errOut)
	}
	if ps := a.must("ps", "-a"); strings.Contains(ps, "rm1") {
		t.Errorf("ps -a after run --rm lists it:\n%s", ps)
	}
	// The exit status survives the removal.
	if code, _, errOut := a.run(nil, "run", "--rm", "workload", "/bin/counter", "-ticks", "x"); code != 2 {
		t.Errorf("run --rm of a failing command = %d (stderr %q), want its status 2", code, errOut)
	}
	a.must("run", "-d", "--rm", "--name", "rm2", "workload", "/bin/counter", "-interval", "20ms", "-file", "")
	if code, _, errOut := ckpt(t, append(a.g, "checkpoint", "rm2")...); code != 1 || !strings.Contains(errOut, "--export") {
		t.Errorf("checkpoint of a --rm container = %d, %q; want 1 and a hint about --export", code, errOut)
	}
	a.must("stop", "rm2")
	waitFor(t, func() bool { return a.find("rm2") == nil })
	if ps := a.must("ps", "-a"); strings.Contains(ps, "rm2") {
		t.Errorf("ps -a lists the stopped run -d --rm:\n%s", ps)
	}
}

// TestRunSigProxy: a SIGINT to an attached run reaches the container,
// which exits (and the command with its status); with --sig-proxy=false
// the command ends and the container keeps running.
func TestRunSigProxy(t *testing.T) {
	a := newAttachEnv(t)
	c, out, errOut := a.start(nil, "run", "--name", "sp", "workload", "/bin/counter", "-interval", "50ms", "-file", "")
	waitFor(t, func() bool { return strings.Contains(out.String(), "counter 2\n") })
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := wait(t, c); code != 0 {
		t.Errorf("attached run after SIGINT = %d (stderr %q), want the counter's 0", code, errOut)
	}
	if x := a.find("sp"); x == nil || x.Status != engine.StatusExited || x.ExitCode != 0 {
		t.Errorf("container after SIGINT to ckpt run: %+v, want exited (0)", x)
	}

	c, out, errOut = a.start(nil, "run", "--sig-proxy=false", "--name", "np", "workload", "/bin/counter", "-interval", "50ms", "-file", "")
	waitFor(t, func() bool { return strings.Contains(out.String(), "counter 2\n") })
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := wait(t, c); code != 1 || !strings.Contains(errOut.String(), "keeps running") {
		t.Errorf("run --sig-proxy=false after SIGINT = %d, %q; want 1 and a note", code, errOut)
	}
	if x := a.find("np"); x == nil || x.Status != engine.StatusRunning {
		t.Errorf("container after SIGINT to ckpt run --sig-proxy=false: %+v, want running", x)
	}
}

// TestExecAttached: exec -i pipes stdin, exec without -i does not; a
// missing or non-executable command exits 127 or 126 with one line; a
// SIGTERM to exec reaches the command.
func TestExecAttached(t *testing.T) {
	a := newAttachEnv(t)
	a.must("run", "-d", "--name", "ex", "workload", "/bin/counter", "-interval", "1s", "-file", "")
	for _, tt := range []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"-i", "ex", "/bin/counter", "-cat"}, 0, "hi\n", ""},
		{[]string{"ex", "/bin/counter", "-cat"}, 0, "", ""},
		{[]string{"ex", "nosuch"}, 127, "", "ckpt: exec in ex: \"nosuch\": executable file not found in $PATH\n"},
		{[]string{"ex", "/bin/nosuch"}, 127, "", "ckpt: exec in ex: \"/bin/nosuch\": executable file not found\n"},
		{[]string{"ex", "/etc/hostname"}, 126, "", "ckpt: exec in ex: \"/etc/hostname\": permission denied (not an executable file)\n"},
	} {
		code, out, errOut := a.run(strings.NewReader("hi\n"), append([]string{"exec"}, tt.args...)...)
		if code != tt.code || out != tt.out || errOut != tt.err {
			t.Errorf("exec %q = %d, %q, %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.out, tt.err)
		}
	}
	marker := "/exec-sigterm-" + strconv.Itoa(os.Getpid())
	c, out, errOut := a.start(nil, "exec", "ex", "/bin/counter", "-interval", "50ms", "-file", "", "-root", marker)
	waitFor(t, func() bool { return strings.Contains(out.String(), "counter 2\n") })
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := wait(t, c); code != 0 {
		t.Errorf("exec after SIGTERM = %d (stderr %q), want the counter's 0", code, errOut)
	}
	waitFor(t, func() bool { return !processWithArg(marker) })
}

// processWithArg reports whether a process on the host has arg in its
// command line.
func processWithArg(arg string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(arg+"\x00")) {
			return true
		}
	}
	return false
}

// TestCheckpointAttachedStdin: a container whose stdin is piped from an
// attached run -i checkpoints (its stdin is a pipe CRIU dumps) and
// restores, with an open stdin nothing writes to.
func TestCheckpointAttachedStdin(t *testing.T) {
	a := newAttachEnv(t)
	// An *os.File, so that Wait does not wait for a copy into the command.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	c, out, errOut := a.start(pr, "run", "-i", "--name", "ck", "workload", "/bin/counter", "-cat")
	pr.Close()
	if _, err := pw.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return out.String() == "first\n" })
	a.must("checkpoint", "ck")
	if code := wait(t, c); code != 0 || !strings.Contains(errOut.String(), "was checkpointed") {
		t.Errorf("attached run -i after checkpoint = %d, %q; want 0 and a note", code, errOut)
	}
	a.must("restore", "ck")
	x := a.find("ck")
	if x == nil || x.Status != engine.StatusRunning {
		t.Fatalf("after restore: %+v, want running", x)
	}
	if l, err := os.Readlink("/proc/" + strconv.Itoa(x.PID) + "/fd/0"); err != nil || !strings.HasPrefix(l, "pipe:") {
		t.Errorf("restored stdin = %q, %v; want a pipe", l, err)
	}
	time.Sleep(300 * time.Millisecond)
	if x := a.find("ck"); x == nil || x.Status != engine.StatusRunning {
		t.Errorf("restored run -i container: %+v, want running (stdin open)", x)
	}
}
