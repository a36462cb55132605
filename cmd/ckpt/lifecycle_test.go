package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

func TestLifecycleUsage(t *testing.T) {
	root := t.TempDir()
	g := []string{"--root", root, "--runroot", filepath.Join(root, "run")}
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--version"}, 0, "ckpt version " + engine.Version, ""},
		{[]string{"-v"}, 0, "criu:", ""},
		{[]string{"version", "--json"}, 0, `"ckpt_version": "` + engine.Version, ""},
		{[]string{"create", "--help"}, 0, "ckpt create - create a container without starting it", ""},
		{[]string{"create", "img"}, exitFailure, "", "ckpt: create img: engine: no such image: img: fetch it first with `ckpt image pull img`"},
		{[]string{"start"}, exitUsage, "", "too few arguments"},
		{[]string{"start", "-a", "x", "y"}, exitUsage, "", "--attach takes one container"},
		{[]string{"start", "nosuch"}, 1, "", "no such container"},
		{[]string{"restart", "nosuch"}, 1, "", "no such container"},
		{[]string{"wait", "-i", "0s", "x"}, exitUsage, "", "--interval must be positive"},
		{[]string{"wait", "--condition", "healthy", "x"}, exitUsage, "", `unknown --condition "healthy" (ckpt has created, running, exited, stopped, checkpointed)`},
		{[]string{"wait", "nosuch"}, 1, "", "no such container"},
		{[]string{"inspect"}, exitUsage, "", "give container names or IDs, or --latest"},
		{[]string{"inspect", "-l", "x"}, exitUsage, "", "give container names or IDs, or --latest"},
		{[]string{"inspect", "-f", "{{.State", "x"}, exitUsage, "", "--format"},
		{[]string{"inspect", "nosuch"}, 1, "[]", "no such container"},
		{[]string{"volume"}, exitUsage, "", "too few arguments"},
		{[]string{"volume", "frob"}, exitUsage, "", `unknown subcommand "frob"`},
		{[]string{"volume", "rm"}, exitUsage, "", "give volume names, or --all"},
		{[]string{"volume", "inspect", "nosuch"}, 1, "[]", "no such volume"},
		{[]string{"volume", "create", "-l", "=x", "v"}, exitUsage, "", "invalid --label"},
		{[]string{"volume", "create", "a", "b"}, exitUsage, "", "too many arguments"},
		{[]string{"volume", "ls", "--json"}, 0, `"volumes": []`, ""},
	} {
		args := tt.args
		if !strings.HasPrefix(args[0], "-") {
			args = append(append([]string{}, g...), args...)
		}
		code, out, errOut := ckpt(t, args...)
		if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("ckpt %q = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q", args, code, out, errOut, tt.code, tt.stdout, tt.stderr)
		}
	}
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " y ": true, "n\n": false, "": false, "yes please\n": false} {
		var w strings.Builder
		if got := confirm(&w, strings.NewReader(in), "sure? "); got != want || w.String() != "sure? " {
			t.Errorf("confirm(%q) = %v (asked %q), want %v", in, got, w.String(), want)
		}
	}
}

// cliHost is a CLI bound to its own engine root, with the workload image.
type cliHost struct {
	t *testing.T
	g []string
}

func newCLIHost(t *testing.T, dir string, names ...string) *cliHost {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	h := &cliHost{t: t, g: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}}
	t.Cleanup(func() {
		for _, n := range names {
			h.c("rm", "-f", n)
		}
		h.c("volume", "prune", "-f")
		e := &engine.Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
		_ = e.ImageRemove(context.Background(), "workload")
		_ = e.Close()
	})
	h.must("image", "import", tarPath, "workload")
	return h
}

func (h *cliHost) c(args ...string) (int, string, string) {
	h.t.Helper()
	return ckpt(h.t, append(append([]string{}, h.g...), args...)...)
}

func (h *cliHost) must(args ...string) string {
	h.t.Helper()
	code, out, errOut := h.c(args...)
	if code != 0 {
		h.t.Fatalf("ckpt %q = exit %d\nstderr: %s", args, code, errOut)
	}
	return out
}

func (h *cliHost) status(name string) string {
	h.t.Helper()
	return strings.TrimSpace(h.must("inspect", "-f", "{{.State.Status}}", name))
}

// TestCLILifecycle drives create, start, wait, stop, start after stop,
// restart and inspect through the real runc.
func TestCLILifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	h := newCLIHost(t, t.TempDir(), "lc", "lr", "lx")

	// create: not started until start; wait prints the exit code.
	id := strings.TrimSpace(h.must("create", "--name", "lc", "-v", "lcvol:/data", "workload", "/bin/counter", "-ticks", "3", "-interval", "20ms", "-file", "/data/n"))
	if len(id) != 64 || h.status("lc") != "created" || h.must("logs", "lc") != "" {
		t.Fatalf("create printed %q; status %s", id, h.status("lc"))
	}
	if out := h.must("start", "lc"); out != "lc\n" {
		t.Errorf("start printed %q", out)
	}
	if out := h.must("wait", "lc"); out != "0\n" {
		t.Errorf("wait = %q, want 0", out)
	}
	// Start after exit: the command runs afresh in the same layer.
	code, out, errOut := h.c("start", "-a", "lc")
	if code != 0 || out != "counter 1\ncounter 2\ncounter 3\n" {
		t.Errorf("start -a of an exited container = %d, %q (%s); want its new output only", code, out, errOut)
	}
	if n := strings.Count(h.must("logs", "lc"), "counter 3\n"); n != 2 {
		t.Errorf("logs after two runs hold %d 'counter 3', want 2", n)
	}

	// A start that fails leaves the container as it was, exit code kept.
	if code, _, errOut := h.c("--runtime", "/bin/false", "start", "lc"); code != 1 || !strings.Contains(errOut, "stays exited") {
		t.Errorf("start under a failing runtime = %d, %q", code, errOut)
	}
	if out := h.must("wait", "lc"); out != "0\n" || h.status("lc") != "exited" {
		t.Errorf("after a failed start: wait = %q, status %s; want 0, exited", out, h.status("lc"))
	}

	// A non-zero exit, and wait for several containers.
	h.must("run", "-d", "--name", "lx", "workload", "/bin/counter", "bogus")
	if out := h.must("wait", "lx", "lc"); out != "2\n0\n" {
		t.Errorf("wait lx lc = %q, want the exit codes 2 and 0", out)
	}

	// Start after stop, restart, kill.
	h.must("run", "-d", "--name", "lr", "workload", "/bin/counter", "-interval", "30ms", "-file", "")
	waitFor(t, func() bool { return strings.Contains(h.must("logs", "lr"), "counter 2\n") })
	h.must("stop", "-t", "5", "lr")
	if h.status("lr") != "exited" {
		t.Fatalf("status after stop = %s", h.status("lr"))
	}
	h.must("start", "lr")
	if h.status("lr") != "running" {
		t.Fatalf("status after start = %s", h.status("lr"))
	}
	// --condition: a running container prints -1, an exited one its code.
	if out := h.must("wait", "--condition", "running", "--condition=created,checkpointed", "lr"); out != "-1\n" {
		t.Errorf("wait --condition running of a running container = %q, want -1", out)
	}
	if out := h.must("wait", "--condition", "stopped", "lx"); out != "2\n" {
		t.Errorf("wait --condition stopped of an exited container = %q, want 2", out)
	}
	waitFor(t, func() bool { return strings.Count(h.must("logs", "lr"), "counter 2\n") == 2 })
	before := h.must("inspect", "-f", "{{.State.Pid}} {{.State.StartedAt}}", "lr")
	h.must("restart", "-t", "5", "lr")
	if after := h.must("inspect", "-f", "{{.State.Pid}} {{.State.StartedAt}}", "lr"); after == before || h.status("lr") != "running" {
		t.Errorf("restart: pid and start %q -> %q, status %s", before, after, h.status("lr"))
	}
	waitFor(t, func() bool { return strings.Count(h.must("logs", "lr"), "counter 2\n") == 3 })
	h.must("kill", "lr")
	if out := h.must("wait", "lr"); out != "137\n" {
		t.Errorf("wait after kill = %q, want 137", out)
	}
	h.must("start", "lr") // runc's state of the killed container is cleared
	waitFor(t, func() bool { return strings.Count(h.must("logs", "lr"), "counter 2\n") == 4 })

	// inspect: an array, podman's names, the spec summary; missing ones
	// reported after the others.
	code, out, errOut = h.c("inspect", "lc", "nosuch", "lr")
	var xs []engine.ContainerInspect
	if err := json.Unmarshal([]byte(out), &xs); err != nil || code != 1 || len(xs) != 2 || !strings.Contains(errOut, "nosuch") {
		t.Fatalf("inspect lc nosuch lr = %d, %v\n%s\n%s", code, err, out, errOut)
	}
	lc, lr := xs[0], xs[1]
	if lc.ID != id || lc.Name != "lc" || lc.State.Status != engine.StatusExited || lc.Path != "/bin/counter" ||
		lc.ImageName != "workload" || len(lc.Mounts) != 1 || lc.Mounts[0].Name != "lcvol" || !lc.Mounts[0].RW ||
		lc.Config.Cmd[0] != "/bin/counter" || lc.HostConfig.NetworkMode != "none" || lc.Config.User != "0:0" ||
		!strings.Contains(strings.Join(lc.HostConfig.Namespaces, ","), "network") || lc.Checkpoint.Present {
		t.Errorf("inspect lc = %+v", lc)
	}
	if !lr.State.Running || lr.State.Pid <= 0 || lr.State.MonitorPid <= 0 {
		t.Errorf("inspect lr state = %+v", lr.State)
	}
	if out := h.must("inspect", "-l", "-f", "{{.Name}} {{json .Args}}"); out != "lr [\"-interval\",\"30ms\",\"-file\",\"\"]\n" {
		t.Errorf("inspect -l -f = %q", out)
	}
}

// TestCLIVolumes: volume create, ls, inspect, rm (refused in use, -f
// removes the users), prune.
func TestCLIVolumes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	h := newCLIHost(t, t.TempDir(), "vu")
	if out := h.must("volume", "create", "-l", "team=a", "v1"); out != "v1\n" {
		t.Errorf("volume create printed %q", out)
	}
	if code, _, errOut := h.c("volume", "create", "v1"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("volume create of an existing name = %d, %s", code, errOut)
	}
	h.must("volume", "create", "--ignore", "v1")
	anon := strings.TrimSpace(h.must("volume", "create"))
	h.must("run", "-d", "--name", "vu", "-v", "v1:/data", "workload", "/bin/counter", "-interval", "50ms", "-file", "/data/n")
	var got []struct {
		Name, Driver, Mountpoint string
		Labels                   map[string]string
	}
	if err := json.Unmarshal([]byte(h.must("volume", "inspect", "v1")), &got); err != nil || len(got) != 1 ||
		got[0].Labels["team"] != "a" || got[0].Driver != "local" || !strings.HasSuffix(got[0].Mountpoint, "/volumes/v1/_data") {
		t.Fatalf("volume inspect v1 = %+v, %v", got, err)
	}
	if out := h.must("volume", "ls", "-q"); out != anon+"\nv1\n" {
		t.Errorf("volume ls -q = %q", out)
	}
	code, _, errOut := h.c("volume", "rm", "v1")
	if code != 1 || !strings.Contains(errOut, "in use by container vu") || !strings.Contains(errOut, "ckpt volume rm -f v1") {
		t.Errorf("volume rm of a volume in use = %d, %q; want the user named and -f advised", code, errOut)
	}
	if out := h.must("volume", "prune", "-f"); out != anon+"\n" {
		t.Errorf("volume prune = %q, want only the unused %s", out, anon)
	}
	h.must("volume", "rm", "-f", "v1")
	if code, _, _ := h.c("inspect", "vu"); code != 1 {
		t.Errorf("volume rm -f left its user vu")
	}
	if out := h.must("volume", "ls", "-q"); out != "" {
		t.Errorf("volume ls -q after rm = %q", out)
	}
	if code, _, errOut := h.c("volume", "rm", "v1"); code != 1 || !strings.Contains(errOut, "no such volume") {
		t.Errorf("volume rm of a missing volume = %d, %q", code, errOut)
	}
}

// TestCLIVolumeRestoreTwice: a second restore --import --name of an
// archive with a named volume names `ckpt volume rm`; after it, the copy
// restores. Also: start refuses a checkpointed container.
func TestCLIVolumeRestoreTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testutil.RequireTool(t, "criu")
	dir := t.TempDir()
	h := newCLIHost(t, dir, "vr", "vr2", "vr3")
	if code, out, errOut := h.c("check"); code != 0 {
		testutil.Missing(t, "ckpt check: %s%s", out, errOut)
	}
	h.must("run", "-d", "--name", "vr", "-v", "vrvol:/data", "workload", "/bin/counter", "-interval", "50ms", "-file", "/data/n")
	waitFor(t, func() bool { return strings.Contains(h.must("logs", "vr"), "counter 3\n") })
	archive := filepath.Join(dir, "vr.tar")
	h.must("checkpoint", "-e", archive, "vr")
	if code, _, errOut := h.c("start", "vr"); code != 1 || !strings.Contains(errOut, "ckpt restore vr") {
		t.Errorf("start of a checkpointed container = %d, %q; want a refusal naming restore", code, errOut)
	}
	if code, _, errOut := h.c("restart", "vr"); code != 1 || !strings.Contains(errOut, "checkpointed") {
		t.Errorf("restart of a checkpointed container = %d, %q", code, errOut)
	}
	h.must("rm", "vr")
	h.must("volume", "rm", "vrvol")
	h.must("restore", "-i", archive, "-n", "vr2")
	code, _, errOut := h.c("restore", "-i", archive, "-n", "vr3")
	if code != 1 || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "`ckpt volume rm vrvol`") {
		t.Fatalf("second restore -i -n = %d, %q; want the volume named with `ckpt volume rm vrvol`", code, errOut)
	}
	h.must("volume", "rm", "-f", "vrvol") // removes vr2, its user
	h.must("restore", "-i", archive, "-n", "vr3")
	if h.status("vr3") != "running" {
		t.Fatalf("vr3 is %s", h.status("vr3"))
	}
	if code, _, _ := h.c("inspect", "vr2"); code != 1 {
		t.Errorf("vr2 survived volume rm -f of its volume")
	}
	waitFor(t, func() bool {
		_, out, _ := h.c("exec", "vr3", "/bin/counter", "-ticks", "1", "-interval", "1ms", "-file", "")
		return strings.Contains(out, "counter 1")
	})
}
