package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCLIProcessFlags runs the probe workload under the real runc with
// run's and exec's flags and checks what it sees inside the container.
func TestCLIProcessFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	h := newCLIHost(t, dir, "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "px")
	probe := func(name string, args ...string) string {
		t.Helper()
		a := append([]string{"run", "--name", name}, args...)
		return h.must(a...)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"p1", []string{"-u", "app", "workload", "/bin/probe", "id"}, "uid=1000 gid=1000 groups=50\n"},
		{"p2", []string{"--user", "4321", "workload", "/bin/probe", "id"}, "uid=4321 gid=0 groups=\n"},
		{"p3", []string{"-u", "app:root", "workload", "/bin/probe", "id"}, "uid=1000 gid=0 groups=50\n"},
		{"p4", []string{"-w", "/data", "workload", "/bin/probe", "pwd"}, "/data\n"},
		{"p5", []string{"--hostname", "box.example", "workload", "/bin/probe", "hostname"}, "box.example\n"},
		{"p6", []string{"--entrypoint", "/bin/probe", "-w", "/etc", "workload", "pwd"}, "/etc\n"},
		{"p7", []string{"--entrypoint", `["/bin/probe","cat"]`, "workload", "/etc/hostname"}, "counter\n"},
	} {
		if got := probe(tt.name, tt.args...); got != tt.want {
			t.Errorf("run %q printed %q, want %q", tt.args, got, tt.want)
		}
	}
	if out := h.must("inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}", "p7"); out != `["/bin/probe","cat"] ["/etc/hostname"] 0:0`+"\n" {
		t.Errorf("inspect of --entrypoint = %q", out)
	}
	if out := h.must("inspect", "-f", "{{.Config.User}}", "p1"); out != "app\n" {
		t.Errorf("inspect .Config.User of -u app = %q", out)
	}
	if code, _, errOut := h.c("run", "-u", "nobody", "workload", "/bin/probe", "id"); code != 1 || !strings.Contains(errOut, `no user "nobody" in the image's /etc/passwd`) {
		t.Errorf("run -u nobody = %d, %q", code, errOut)
	}

	// --env-file: KEY=VALUE, KEY alone from ckpt's environment, --env wins.
	t.Setenv("CKPT_TEST_FROM_HOST", "host value")
	envFile := filepath.Join(dir, "vars.env")
	if err := os.WriteFile(envFile, []byte("# settings\nA=from file\nB=from file\n  CKPT_TEST_FROM_HOST\nCKPT_TEST_UNSET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := probe("p8", "--env-file", envFile, "-e", "B=from flag", "workload", "/bin/probe", "env", "A", "B", "CKPT_TEST_FROM_HOST", "CKPT_TEST_UNSET")
	if want := "A=from file\nB=from flag\nCKPT_TEST_FROM_HOST=host value\n"; out != want {
		t.Errorf("run --env-file printed %q, want %q", out, want)
	}

	// exec: the container's user and directory by default, or -u and -w.
	h.must("run", "-d", "--name", "px", "-u", "app", "-w", "/data", "workload", "/bin/counter", "-file", "", "-interval", "50ms")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"px", "/bin/probe", "id"}, "uid=1000 gid=1000 groups=50\n"},
		{[]string{"-u", "root", "px", "/bin/probe", "id"}, "uid=0 gid=0 groups=\n"},
		{[]string{"--user", "4321:50", "px", "/bin/probe", "id"}, "uid=4321 gid=50 groups=\n"},
		{[]string{"px", "/bin/probe", "pwd"}, "/data\n"},
		{[]string{"-w", "/tmp", "px", "/bin/probe", "pwd"}, "/tmp\n"},
		{[]string{"-e", "X=1", "px", "/bin/probe", "env", "X"}, "X=1\n"},
	} {
		if code, out, errOut := h.c(append([]string{"exec"}, tt.args...)...); code != 0 || out != tt.want {
			t.Errorf("exec %q = %d, %q (%s); want %q", tt.args, code, out, errOut, tt.want)
		}
	}
	if code, _, errOut := h.c("exec", "-u", "ghost", "px", "/bin/probe", "id"); code != 1 || !strings.Contains(errOut, `no user "ghost"`) {
		t.Errorf("exec -u ghost = %d, %q", code, errOut)
	}

	// ps -q and --format see the running container only.
	id := strings.TrimSpace(h.must("inspect", "-f", "{{.ID}}", "px"))
	if out := h.must("ps", "-q"); out != id[:12]+"\n" {
		t.Errorf("ps -q = %q, want %q", out, id[:12])
	}
	if out := h.must("ps", "-a", "--format", "{{.Names}} {{.State}}"); !strings.Contains(out, "px running\n") || !strings.Contains(out, "p1 exited\n") {
		t.Errorf("ps -a --format = %q", out)
	}
}

// memoryLimit reads the memory limit of the container's cgroup from the
// host: memory.max (cgroup v2) or memory.limit_in_bytes (v1).
func memoryLimit(t *testing.T, h *cliHost, name string) int64 {
	t.Helper()
	cg := strings.TrimSpace(h.must("inspect", "-f", "{{.HostConfig.CgroupsPath}}", name))
	for _, p := range []string{filepath.Join("/sys/fs/cgroup", cg, "memory.max"), filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")} {
		if data, err := os.ReadFile(p); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", p, data)
			}
			return n
		}
	}
	t.Fatalf("no memory cgroup file of %s (%s)", name, cg)
	return 0
}

// TestCLIMemoryAndLogs checks that -m reaches the container's cgroup and
// stays across a checkpoint and restore, in place and through an export,
// and that the log keeps one timed history across them.
func TestCLIMemoryAndLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dir := t.TempDir()
	h := newCLIHost(t, dir, "pm")
	start := time.Now()
	h.must("run", "-d", "--name", "pm", "-m", "64m", "workload", "/bin/counter", "-file", "", "-interval", "50ms")
	const limit = 64 << 20
	if n := memoryLimit(t, h, "pm"); n != limit {
		t.Fatalf("memory limit of run -m 64m = %d, want %d", n, limit)
	}
	if out := h.must("inspect", "-f", "{{.HostConfig.Memory}}", "pm"); out != "67108864\n" {
		t.Errorf("inspect HostConfig.Memory = %q", out)
	}
	waitFor(t, func() bool { return strings.Contains(h.must("logs", "pm"), "counter 3\n") })
	h.must("checkpoint", "pm")
	h.must("restore", "pm")
	if n := memoryLimit(t, h, "pm"); n != limit {
		t.Errorf("memory limit after checkpoint and restore = %d, want %d", n, limit)
	}
	before := strings.Count(h.must("logs", "pm"), "\n")
	waitFor(t, func() bool { return strings.Count(h.must("logs", "pm"), "\n") > before+2 })
	archive := filepath.Join(dir, "pm.tar.zst")
	h.must("checkpoint", "-e", archive, "pm")
	h.must("rm", "pm")
	h.must("restore", "-i", archive)
	if n := memoryLimit(t, h, "pm"); n != limit {
		t.Errorf("memory limit after export and import = %d, want %d", n, limit)
	}
	before = strings.Count(h.must("logs", "pm"), "\n")
	waitFor(t, func() bool { return strings.Count(h.must("logs", "pm"), "\n") > before+2 })
	h.must("stop", "-t", "5", "pm")

	// One history: counter 1, 2, ... each once, with times in order since
	// the run, the restored process' lines after the checkpointed one's.
	lines := strings.Split(strings.TrimSuffix(h.must("logs", "-t", "pm"), "\n"), "\n")
	var last time.Time
	for i, l := range lines {
		ts, text, ok := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil || at.Before(last) || at.Before(start.Add(-time.Second)) || text != "counter "+strconv.Itoa(i+1) {
			t.Fatalf("logs -t line %d = %q (after %v); want counter %d with a later time", i+1, l, last, i+1)
		}
		last = at
	}
	if out := h.must("logs", "--tail", "2", "pm"); out != strings.Join([]string{"counter " + strconv.Itoa(len(lines)-1), "counter " + strconv.Itoa(len(lines))}, "\n")+"\n" {
		t.Errorf("logs --tail 2 = %q (of %d lines)", out, len(lines))
	}
	if out := h.must("logs", "--since", last.Add(-time.Nanosecond).Format(time.RFC3339Nano), "pm"); out != "counter "+strconv.Itoa(len(lines))+"\n" {
		t.Errorf("logs --since the last line's time = %q", out)
	}
	if out := h.must("logs", "--since", "1h", "--tail", "1", "pm"); out != "counter "+strconv.Itoa(len(lines))+"\n" {
		t.Errorf("logs --since 1h --tail 1 = %q", out)
	}
	if out := h.must("logs", "--since", "0s", "pm"); out != "" {
		t.Errorf("logs --since 0s = %q, want nothing", out)
	}
}
