package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"github.com/ckpt/ckpt/internal/testutil"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeBin writes an executable shell script named name into dir.
func fakeBin(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func testEngine(t *testing.T) *Engine {
	t.Helper()
	dir := t.TempDir()
	e := &Engine{
		Root:        filepath.Join(dir, "root"),
		RunRoot:     filepath.Join(dir, "run"),
		RuntimePath: fakeBin(t, dir, "runc", "exit 0"),
		CRIUPath:    fakeBin(t, dir, "criu", `echo "Version: 4.1.1"`),
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestRuncArgs(t *testing.T) {
	r := runc{path: "runc", root: "/run/x/runc", log: "/l/runc.log"}
	base := []string{"runc", "--root", "/run/x/runc", "--log", "/l/runc.log", "--log-format", "json"}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"create", r.createArgs("id", "/b", "/b/pid"), []string{"create", "--bundle", "/b", "--pid-file", "/b/pid", "id"}},
		{"start", r.startArgs("id"), []string{"start", "id"}},
		{"kill", r.killArgs("id", 15, false), []string{"kill", "id", "15"}},
		{"kill all", r.killArgs("id", 9, true), []string{"kill", "--all", "id", "9"}},
		{"delete", r.deleteArgs("id", false), []string{"delete", "id"}},
		{"delete force", r.deleteArgs("id", true), []string{"delete", "--force", "id"}},
		{"exec", r.execArgs("id", &ExecOptions{Env: []string{"A=1"}, Cwd: "/tmp"}, []string{"ls", "-l"}),
			[]string{"exec", "--env", "A=1", "--cwd", "/tmp", "id", "ls", "-l"}},
		{"exec process", r.execProcessArgs("id", "/b/exec-1.json"), []string{"exec", "--process", "/b/exec-1.json", "id"}},
		{"checkpoint default", r.checkpointArgs("id", "/i", "/w", nil),
			[]string{"checkpoint", "--image-path", "/i", "--work-path", "/w", "id"}},
		{"checkpoint all", r.checkpointArgs("id", "/i", "/w", &CheckpointOptions{LeaveRunning: true, TCPEstablished: true, FileLocks: true, Keep: true}),
			[]string{"checkpoint", "--image-path", "/i", "--work-path", "/w", "--leave-running", "--tcp-established", "--file-locks", "id"}},
		{"pre-dump", r.checkpointArgs("id", "/i", "/w", &CheckpointOptions{LeaveRunning: true, PreCheckpoint: true, preDump: true}),
			[]string{"checkpoint", "--image-path", "/i", "--work-path", "/w", "--pre-dump", "id"}},
		{"parent path", r.checkpointArgs("id", "/i", "/w", &CheckpointOptions{WithPrevious: true, parentPath: "../pre-checkpoint"}),
			[]string{"checkpoint", "--image-path", "/i", "--work-path", "/w", "--parent-path", "../pre-checkpoint", "id"}},
		{"restore default", r.restoreArgs("id", "/b", "/p", "/i", "/w", nil),
			[]string{"restore", "--detach", "--image-path", "/i", "--work-path", "/w", "--bundle", "/b", "--pid-file", "/p", "--manage-cgroups-mode", "ignore", "id"}},
		{"restore tcp", r.restoreArgs("id", "/b", "/p", "/i", "/w", &RestoreOptions{TCPEstablished: true, FileLocks: true}),
			[]string{"restore", "--detach", "--image-path", "/i", "--work-path", "/w", "--bundle", "/b", "--pid-file", "/p", "--manage-cgroups-mode", "ignore", "--tcp-established", "--file-locks", "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := append(append([]string{}, base...), tt.want...)
			if !reflect.DeepEqual(tt.got, want) {
				t.Errorf("args = %q, want %q", tt.got, want)
			}
			if sub := tt.got[indexOfSub(tt.got)]; sub != tt.want[0] {
				t.Errorf("indexOfSub found %q, want %q", sub, tt.want[0])
			}
		})
	}
	noLog := runc{path: "runc", root: "/r"}
	if got, want := noLog.startArgs("x"), []string{"runc", "--root", "/r", "start", "x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("startArgs without log = %q, want %q", got, want)
	}
}

func TestCRIUVersion(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		script  string
		want    int
		wantErr error
	}{
		{"4.1.1", `echo "Version: 4.1.1"; echo "GitID: v4.1.1"`, 40101, nil},
		{"4.0", `echo "Version: 4.0"`, 40000, nil},
		{"3.17.1", `echo "Version: 3.17.1"`, 31701, nil},
		{"garbage", `echo "hello"`, 0, ErrCRIUMissing},
		{"fails", `echo boom >&2; exit 1`, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Engine{CRIUPath: fakeBin(t, dir, "criu-"+tt.name, tt.script)}
			_, got, err := e.criuVersion(context.Background())
			if tt.name == "fails" {
				var x *ExitError
				if !errors.As(err, &x) || x.Code != 1 || !strings.Contains(x.Error(), "boom") {
					t.Fatalf("criuVersion() error = %v, want *ExitError with status 1 quoting stderr", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("criuVersion() error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("criuVersion() = %d, want %d", got, tt.want)
			}
		})
	}
	e := &Engine{CRIUPath: filepath.Join(dir, "does-not-exist")}
	if _, _, err := e.criuVersion(context.Background()); !errors.Is(err, ErrCRIUMissing) {
		t.Errorf("criuVersion(missing binary) error = %v, want ErrCRIUMissing", err)
	}
}

func TestPreflight(t *testing.T) {
	if os.Geteuid() != 0 {
		e := testEngine(t)
		if err := e.preflight(context.Background()); !errors.Is(err, ErrNotRoot) {
			t.Fatalf("preflight() as non-root = %v, want ErrNotRoot", err)
		}
		return
	}
	dir := t.TempDir()
	old := &Engine{CRIUPath: fakeBin(t, dir, "criu", `echo "Version: 3.17.1"`), RuntimePath: fakeBin(t, dir, "runc", "exit 0")}
	err := old.preflight(context.Background())
	if !errors.Is(err, ErrCRIUMissing) || !strings.Contains(err.Error(), "make deps") || !strings.Contains(err.Error(), "3.17.1") {
		t.Errorf("preflight(CRIU 3.17.1) = %v, want ErrCRIUMissing naming the version and `make deps`", err)
	}
	noRunc := &Engine{CRIUPath: fakeBin(t, dir, "criu4", `echo "Version: 4.1.1"`), RuntimePath: filepath.Join(dir, "no-runc")}
	if err := noRunc.preflight(context.Background()); !errors.Is(err, ErrRuntimeMissing) {
		t.Errorf("preflight(no runc) = %v, want ErrRuntimeMissing", err)
	}
}

func TestLogTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dump.log")
	log := `(00.000001) Version: 4.1.1
(00.034964) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.040000) some info
(00.048333) Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported
(00.128155) Error (criu/cr-dump.c:2111): Dumping FAILED.
`
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got := logTail(p, 5)
	want := []string{
		"(00.048333) Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported",
		"(00.128155) Error (criu/cr-dump.c:2111): Dumping FAILED.",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logTail() = %q, want %q", got, want)
	}
	runcLog := filepath.Join(t.TempDir(), "runc.log")
	_ = os.WriteFile(runcLog, []byte(`{"level":"error","msg":"runc create failed: no such file","time":"x"}`+"\n"), 0o600)
	if got := logTail(runcLog, 5); !reflect.DeepEqual(got, []string{"runc create failed: no such file"}) {
		t.Errorf("logTail(runc json) = %q", got)
	}
	if got := logTail(filepath.Join(t.TempDir(), "missing"), 5); got != nil {
		t.Errorf("logTail(missing) = %q, want nil", got)
	}
}

func TestNormalizeImageName(t *testing.T) {
	for in, want := range map[string]string{
		"workload":                    "localhost/workload:latest",
		"workload:v1":                 "localhost/workload:v1",
		"localhost/workload":          "localhost/workload:latest",
		"quay.io/x/y":                 "quay.io/x/y:latest",
		"registry:5000/y:2":           "registry:5000/y:2",
		"docker.io/library/busybox:1": "docker.io/library/busybox:1",
		"library/busybox":             "localhost/library/busybox:latest",
	} {
		if got := NormalizeImageName(in); got != want {
			t.Errorf("NormalizeImageName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSpecFor(t *testing.T) {
	c := &Container{ID: strings.Repeat("ab", 32), Name: "x", Command: []string{"/bin/counter"},
		Env: []string{"A=1", "PATH=/bin"}, Rootfs: "/r", Network: NetworkNone,
		Mounts: []Mount{{Type: "volume", Name: "v", Source: "/vol/v/_data", Destination: "/data", ReadOnly: true}}}
	s, err := specFor(c)
	if err != nil {
		t.Fatal(err)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	if want := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.NetworkNamespace}; !reflect.DeepEqual(ns, want) {
		t.Errorf("namespaces = %v, want %v", ns, want)
	}
	if s.Process.Env[0] != "PATH=/bin" || s.Process.Env[len(s.Process.Env)-1] != "A=1" {
		t.Errorf("env = %q, want PATH replaced and A=1 appended", s.Process.Env)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != "/data" || last.Source != "/vol/v/_data" || !reflect.DeepEqual(last.Options, []string{"rbind", "ro"}) {
		t.Errorf("volume mount = %+v", last)
	}
	c.Network = NetworkHost
	s, _ = specFor(c)
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			t.Errorf("network host: spec has a network namespace")
		}
	}
	c.Network = "bridge"
	if _, err := specFor(c); err == nil {
		t.Errorf("specFor(network bridge) succeeded, want error")
	}
}

func TestParseVolume(t *testing.T) {
	e := testEngine(t)
	m, err := e.parseVolume("data:/data")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "volume" || m.Source != filepath.Join(e.Root, "volumes", "data", "_data") {
		t.Errorf("parseVolume(named) = %+v", m)
	}
	if fi, err := os.Stat(m.Source); err != nil || !fi.IsDir() {
		t.Errorf("named volume directory not created: %v", err)
	}
	host := t.TempDir()
	if m, err := e.parseVolume(host + ":/h:ro"); err != nil || m.Type != "bind" || !m.ReadOnly {
		t.Errorf("parseVolume(bind) = %+v, %v", m, err)
	}
	for _, bad := range []string{"/does/not/exist:/x", "data", "data:rel", "data:/x:zz", "../x:/x", ":/x"} {
		if _, err := e.parseVolume(bad); err == nil {
			t.Errorf("parseVolume(%q) succeeded, want error", bad)
		}
	}
}

func TestInetSocketBug(t *testing.T) {
	for _, tt := range []struct {
		criu int
		rel  string
		want bool
	}{
		{40101, "6.18.44-fc", true},
		{40101, "6.16.0", true},
		{40101, "6.15.9", false},
		{40200, "6.18.0", false},
		{40101, "7.0.1", true},
		{40101, "junk", false},
	} {
		if got := inetSocketBug(tt.criu, tt.rel); got != tt.want {
			t.Errorf("inetSocketBug(%d, %q) = %v, want %v", tt.criu, tt.rel, got, tt.want)
		}
	}
}

// fakeRunning writes the state of a running container whose monitor is
// this test process (so it counts as alive).
func fakeRunning(t *testing.T, e *Engine, name string) *Container {
	t.Helper()
	c := &Container{ID: newID(), Name: name, Command: []string{"/bin/true"}, Status: StatusRunning,
		MonitorPID: os.Getpid(), PID: os.Getpid(), CreatedAt: time.Now()}
	if err := os.MkdirAll(e.containerDir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.saveState(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckpointCRIUFailure(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	// A fake runc that behaves like a failed CRIU dump: it writes dump.log
	// into --work-path and exits 1.
	e.RuntimePath = fakeBin(t, t.TempDir(), "runc", `
while [ $# -gt 0 ]; do
	case "$1" in
	--work-path) work=$2; shift ;;
	esac
	shift
done
cat > "$work/dump.log" <<'LOG'
(00.01) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.02) Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported
(00.03) Error (criu/cr-dump.c:2111): Dumping FAILED.
LOG
echo "criu failed: type NOTIFY errno 0" >&2
exit 1`)
	c := fakeRunning(t, e, "c1")
	_, err := e.Checkpoint(context.Background(), "c1", &CheckpointOptions{TCPEstablished: true})
	var x *ExitError
	if !errors.As(err, &x) {
		t.Fatalf("Checkpoint() error = %v, want *ExitError", err)
	}
	if x.Tool != "runc checkpoint" || x.Code != 1 || filepath.Base(x.LogPath) != "dump.log" || len(x.LogTail) != 2 {
		t.Errorf("ExitError = %+v", x)
	}
	if !leftState(err, LeftRunning) {
		t.Errorf("Checkpoint() error = %v, want a *StateError saying the container keeps running", err)
	}
	for _, want := range []string{"dump.log", "Dumping FAILED", "keeps running", "hint:", "criu failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	got, err := e.Inspect(context.Background(), c.ID)
	if err != nil || got.Status != StatusRunning {
		t.Errorf("after failed checkpoint: status %v, %v; want running", got.Status, err)
	}
	if _, err := os.Stat(filepath.Join(e.workDir(c.ID), "dump.log")); err != nil {
		t.Errorf("dump.log removed after failure: %v", err)
	}
}

func TestCheckpointRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	ctx := context.Background()
	c := fakeRunning(t, e, "busy")
	l, err := fsutil.TryLock(filepath.Join(e.containerDir(c.ID), lockFile), "test holds it")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Checkpoint(ctx, "busy", nil)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "test holds it") {
		t.Errorf("Checkpoint(locked) = %v, want ErrBusy naming the holder", err)
	}
	l.Unlock()
	if _, err := e.Restore(ctx, "busy", nil); !errors.Is(err, ErrState) {
		t.Errorf("Restore(running) = %v, want ErrState", err)
	}
	if _, err := e.Checkpoint(ctx, "nope", nil); !errors.Is(err, ErrUnknownContainer) {
		t.Errorf("Checkpoint(unknown) = %v, want ErrUnknownContainer", err)
	}
	c.Status, c.MonitorPID, c.PID = StatusCheckpointed, 0, 0
	if err := e.saveState(c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Restore(ctx, "busy", nil); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("Restore(no images) = %v, want ErrState: no checkpoint", err)
	}
	if _, err := e.Checkpoint(ctx, "busy", nil); !errors.Is(err, ErrState) {
		t.Errorf("Checkpoint(checkpointed) = %v, want ErrState", err)
	}
	if _, err := e.Restore(ctx, "busy", &RestoreOptions{TCPEstablished: true, TCPClose: true}); err == nil {
		t.Errorf("Restore(--tcp-established --tcp-close) succeeded")
	}
}

func TestStateMergesExit(t *testing.T) {
	e := testEngine(t)
	c := fakeRunning(t, e, "x")
	x := `{"monitor_pid":` + itoa(os.Getpid()) + `,"exit_code":3,"finished_at":"2026-01-01T00:00:00Z"}`
	if err := os.WriteFile(filepath.Join(e.containerDir(c.ID), exitFile), []byte(x), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := e.loadState(c.ID)
	if err != nil || got.Status != StatusExited || got.ExitCode != 3 {
		t.Errorf("loadState() = %+v, %v; want exited with code 3", got, err)
	}
	// An exit record of an older monitor is ignored.
	c.MonitorPID = os.Getppid()
	if err := e.saveState(c); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.loadState(c.ID); got.Status != StatusRunning {
		t.Errorf("loadState() with a stale exit record = %v, want running", got.Status)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestInspectPrefix(t *testing.T) {
	e := testEngine(t)
	a := fakeRunning(t, e, "a")
	if got, err := e.Inspect(context.Background(), a.ID[:8]); err != nil || got.ID != a.ID {
		t.Errorf("Inspect(prefix) = %v, %v", got, err)
	}
	if _, err := e.Inspect(context.Background(), ""); !errors.Is(err, ErrUnknownContainer) {
		t.Errorf("Inspect(\"\") = %v, want ErrUnknownContainer", err)
	}
	if got, err := e.Latest(context.Background()); err != nil || got.ID != a.ID {
		t.Errorf("Latest() = %v, %v", got, err)
	}
}

func TestDefaultRunRoot(t *testing.T) {
	a, b := DefaultRunRoot("/var/lib/ckpt"), DefaultRunRoot("/tmp/other")
	if a == b || !strings.HasPrefix(a, "/run/ckpt-") {
		t.Errorf("DefaultRunRoot = %q, %q; want distinct /run/ckpt-* paths", a, b)
	}
	if DefaultRunRoot("/var/lib/ckpt/") != a {
		t.Errorf("DefaultRunRoot is not stable under path cleaning")
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"a\nb\n\n": "b",
		`time="x" level=error msg="container still running"` + "\n" + `time="x" level=error msg="criu failed: type NOTIFY errno 0\nlog file: /w/dump.log"`: "criu failed: type NOTIFY errno 0",
	} {
		if got := lastLine([]byte(in)); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExitErrorMessage(t *testing.T) {
	x := &ExitError{Tool: "runc restore", Code: 1, LogPath: "/w/restore.log", Stderr: []byte("a\nlast words\n"), LogTail: []string{"Error X"}}
	want := "runc restore exited with status 1: last words (log: /w/restore.log)\n    Error X"
	if got := x.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRestoreCRIUFailure(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("uses a real image store")
	}
	e := testEngine(t)
	ctx := context.Background()
	// A fake runc whose restore fails like CRIU does: restore.log in
	// --work-path, exit 1.
	e.RuntimePath = fakeBin(t, t.TempDir(), "runc", `
sub=""
while [ $# -gt 0 ]; do
	case "$1" in
	--work-path) work=$2; shift ;;
	--root|--log|--log-format|--image-path|--bundle|--pid-file) shift ;;
	-*) ;;
	*) [ -z "$sub" ] && sub=$1 ;;
	esac
	shift
done
[ "$sub" = restore ] || exit 0
echo "(00.07) 1: Error (criu/files.c:1221): Unable to open fd=4 id=0x6" > "$work/restore.log"
echo "(00.08) Error (criu/cr-restore.c:2331): Restoring FAILED." >> "$work/restore.log"
exit 1`)
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ImageImport(ctx, src, "tiny"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Remove(context.Background(), "r", true)
		if s, err := e.storeOpen(); err == nil {
			_, _ = s.Shutdown(true)
		}
	})
	c, err := e.Create(ctx, "tiny", &RunOptions{Name: "r", Command: []string{"/bin/x"}})
	if err != nil {
		t.Fatal(err)
	}
	imgs := t.TempDir()
	if err := os.WriteFile(filepath.Join(imgs, "inventory.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = e.Restore(ctx, "r", &RestoreOptions{ImageDir: imgs})
	var x *ExitError
	if !errors.As(err, &x) || x.Tool != "runc restore" || filepath.Base(x.LogPath) != "restore.log" ||
		!strings.Contains(err.Error(), "Restoring FAILED") || !strings.Contains(err.Error(), "can be restored again") {
		t.Fatalf("Restore() error = %v, want *ExitError quoting restore.log", err)
	}
	got, err := e.Inspect(ctx, c.ID)
	if err != nil || got.Status != StatusCreated {
		t.Errorf("after failed restore: %v, %v; want the container still there, created", got, err)
	}
	if _, err := os.Stat(filepath.Join(imgs, "inventory.img")); err != nil {
		t.Errorf("images removed after a failed restore: %v", err)
	}
}

func TestImageImport(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("uses a real image store")
	}
	e := testEngine(t)
	ctx := context.Background()
	t.Cleanup(func() {
		if s, err := e.storeOpen(); err == nil {
			_, _ = s.Shutdown(true)
		}
	})
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, f := range []struct{ name, body string }{{"bin/", ""}, {"etc/hello", "hi\n"}} {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	dir := t.TempDir()
	for name, data := range map[string][]byte{"plain.tar": raw.Bytes(), "packed.tar.gz": gz.Bytes()} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		img, err := e.ImageImport(ctx, p, strings.SplitN(name, ".", 2)[0])
		if err != nil {
			t.Fatalf("ImageImport(%s) = %v", name, err)
		}
		if img.Size <= 0 {
			t.Errorf("ImageImport(%s) size = %d", name, img.Size)
		}
	}
	imgs, err := e.Images(ctx)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("Images() = %d images, %v; want 2", len(imgs), err)
	}
	if _, err := e.ImageImport(ctx, filepath.Join(dir, "plain.tar"), "plain"); !errors.Is(err, ErrNameInUse) {
		t.Errorf("ImageImport(existing name) = %v, want ErrNameInUse", err)
	}
	if _, err := e.ImageInspect(ctx, "localhost/packed:latest"); err != nil {
		t.Errorf("ImageInspect(normalized name) = %v", err)
	}
	if err := e.ImageRemove(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if err := e.ImageRemove(ctx, "plain"); !errors.Is(err, ErrUnknownImage) {
		t.Errorf("ImageRemove(removed) = %v, want ErrUnknownImage", err)
	}
	if _, err := e.Run(ctx, "nosuch", &RunOptions{Command: []string{"/x"}}); !errors.Is(err, ErrUnknownImage) {
		t.Errorf("Run(unknown image) = %v, want ErrUnknownImage", err)
	}
}

func TestCheck(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	e.CRIUPath = fakeBin(t, t.TempDir(), "criu", `
case "$*" in
--version) echo "Version: 4.2.1" ;;
check) echo "Looks good." ;;
"check --feature mem_dirty_track") echo "Dirty tracking is OFF" >&2; exit 1 ;;
*) exit 9 ;;
esac`)
	e.RuntimePath = fakeBin(t, t.TempDir(), "runc", `echo "runc version 1.1.15"; echo "spec: 1.2.0"`)
	t.Cleanup(func() {
		if s, err := e.storeOpen(); err == nil {
			_, _ = s.Shutdown(true)
		}
	})
	r, err := e.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Root || !r.CRIUOK || r.CRIUVersion != "4.2.1" || r.MemoryTracking || r.PreCopy != PreCopyDedup || r.RuntimeVersion != "runc version 1.1.15" ||
		r.StorageDriver == "" || r.CgroupVersion == "" || len(r.Problems) != 0 {
		t.Errorf("Check() = %+v", r)
	}
	e.CRIUPath = fakeBin(t, t.TempDir(), "criu", `[ "$1" = --version ] && echo "Version: 4.1.1" && exit 0; echo "vdso: Unexpected rt vDSO area bounds" >&2; exit 1`)
	r, _ = e.Check(context.Background())
	if r.CRIUOK || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "vDSO") {
		t.Errorf("Check() with a CRIU that fails `criu check` = %+v", r)
	}
}
