package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
)

// asCKPT makes the test binary act as ckpt (its main, exit code
// included) when the tests run it with this variable set: the real
// binary's behaviour without a build.
const asCKPT = "CKPT_TEST_AS_CKPT"

func init() {
	if os.Getenv(asCKPT) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
}

// ckptProcess runs ckpt as a process (the test binary, see asCKPT), as
// the user cred if not nil.
func ckptProcess(t *testing.T, exe string, cred *syscall.Credential, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asCKPT+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

// TestUnknownCommandsAndFlags: an unknown command or flag is one line
// with a suggestion, then where to look, exit 125 as podman's; run as a
// process, so the exit code is main's.
func TestUnknownCommandsAndFlags(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	g := []string{"--root", root, "--runroot", filepath.Join(root, "run")}
	tests := []struct {
		args []string
		line string // the first line, whole
		see  string // the second line
	}{
		{[]string{"chekpoint", "x"}, `ckpt: unknown command "chekpoint" (did you mean "checkpoint"?)`, "see 'ckpt --help'"},
		{[]string{"restor", "x"}, `ckpt: unknown command "restor" (did you mean "restore"?)`, "see 'ckpt --help'"},
		{[]string{"frobnicate"}, `ckpt: unknown command "frobnicate"`, "see 'ckpt --help'"},
		{[]string{"images"}, `ckpt: unknown command "images" (did you mean "image ls"?)`, "see 'ckpt --help'"},
		{[]string{"rmi", "x"}, `ckpt: unknown command "rmi" (did you mean "image rm"?)`, "see 'ckpt --help'"},
		{[]string{"container", "checkpoint", "x"}, `ckpt: unknown command "container" (did you mean "checkpoint"?)`, "see 'ckpt --help'"},
		{[]string{"--rot", "/x", "ps"}, `ckpt: unknown flag: --rot (did you mean --root?)`, "see 'ckpt --help'"},
		{[]string{"checkpoint", "--leave-runing", "x"}, `ckpt: checkpoint: unknown flag: --leave-runing (did you mean --leave-running?)`, "see 'ckpt checkpoint --help'"},
		{[]string{"restore", "--tcp-establish", "x"}, `ckpt: restore: unknown flag: --tcp-establish (did you mean --tcp-established?)`, "see 'ckpt restore --help'"},
		{[]string{"checkpoint", "--frobnicate", "i", "x"}, `ckpt: checkpoint: unknown flag: --frobnicate`, "see 'ckpt checkpoint --help'"},
		{[]string{"checkpoint", "-Z", "x"}, `ckpt: checkpoint: unknown shorthand flag: 'Z' in -Z`, "see 'ckpt checkpoint --help'"},
		{[]string{"ps", "--root", "/x"}, `ckpt: ps: unknown flag: --root (--root is a global flag: give it before the command)`, "see 'ckpt ps --help'"},
		{[]string{"image", "lss"}, `ckpt: image: unknown subcommand "lss" (did you mean "ls"?)`, "see 'ckpt image --help'"},
		{[]string{"image", "import", "--nope", "a", "b"}, `ckpt: image import: unknown flag: --nope`, "see 'ckpt image import --help'"},
	}
	for _, tt := range tests {
		args := tt.args
		if args[0] != "--rot" {
			args = append(append([]string{}, g...), args...)
		}
		code, out, errOut := ckptProcess(t, exe, nil, args...)
		if want := tt.line + "\n" + tt.see + "\n"; code != exitUsage || out != "" || errOut != want {
			t.Errorf("ckpt %q = exit %d, stdout %q, stderr\n%s\nwant exit %d, stderr\n%s", tt.args, code, out, errOut, exitUsage, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"image", "run", "ps", "logs", "exec", "stop", "kill", "rm", "checkpoint", "restore", "check"}
	for word, want := range map[string]string{
		"chekpoint": "checkpoint", "checkpiont": "checkpoint", "Restore": "restore", "imgae": "image",
		"stpo": "stop", "ls": "ps", "restor": "restore", "checkpo": "checkpoint",
		"frobnicate": "", "x": "", "volume": "", "": "",
	} {
		if got := suggest(word, cands); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"stpo", "stop", 1}, {"ca", "abc", 3}, {"ünï", "uni", 2}} {
		if d := editDistance(tt.a, tt.b); d != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
	}
}

// TestNotRoot: as an unprivileged user, a command that needs the engine
// says it needs root in one line and fails; help and usage errors still
// work. The real binary (the test binary as ckpt) runs as nobody.
func TestNotRoot(t *testing.T) {
	testutil.RequireRoot(t) // to run a process as another user
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// nobody must reach the binary: a copy in a directory it can enter.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "ckpt")
	copyFile(t, self, exe, 0o755)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	for _, args := range [][]string{{"ps"}, {"ps", "-a", "--json"}, {"logs", "x"}, {"image", "ls"}, {"volume", "ls"}, {"info"}, {"checkpoint", "-l"}, {"restore", "-i", "a.tar"}} {
		code, out, errOut := ckptProcess(t, exe, nobody, append(append([]string{}, g...), args...)...)
		want := "ckpt: " + strings.Fields(strings.Join(args[:min(2, len(args))], " ") + " ")[0]
		if args[0] == "image" {
			want = "ckpt: image ls"
		}
		if code != exitFailure || out != "" || strings.Count(errOut, "\n") != 1 ||
			!strings.HasPrefix(errOut, want+": must run as root") {
			t.Errorf("ckpt %q as nobody = exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, want+": must run as root...")
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, errOut := ckptProcess(t, exe, nobody, append(append([]string{}, g...), args...)...); code != 0 || !strings.HasPrefix(out, "ckpt version ") {
			t.Errorf("ckpt %q as nobody = exit %d, %q, %q; want the versions", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"--help"}, {"ps", "--help"}, {"image", "import", "--help"}} {
		if code, out, errOut := ckptProcess(t, exe, nobody, append(append([]string{}, g...), args...)...); code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("ckpt %q as nobody = exit %d, %q, %q; want its help", args, code, out, errOut)
		}
	}
	if code, _, errOut := ckptProcess(t, exe, nobody, append(g, "ps", "extra")...); code != exitUsage || !strings.Contains(errOut, "takes no arguments") {
		t.Errorf("ckpt ps extra as nobody = exit %d, %q; want the usage error", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "root")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the engine root was made: %v", err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeTar writes a tar of the given names (a trailing / makes a
// directory; files hold size bytes) at path.
func writeTar(t *testing.T, path string, names []string, size int) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(size)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, h.Size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wrongFiles writes files of each kind that is not a checkpoint archive
// into dir: a text file, a root filesystem tar, and the image archives
// `podman save` writes (their layouts as podman 4.3 writes them).
func wrongFiles(t *testing.T, dir string) (text, rootfs, oci, docker string) {
	t.Helper()
	text, rootfs = filepath.Join(dir, "notes.txt"), filepath.Join(dir, "rootfs.tar")
	oci, docker = filepath.Join(dir, "oci.tar"), filepath.Join(dir, "docker.tar")
	if err := os.WriteFile(text, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeTar(t, rootfs, []string{"./", "./bin/", "./bin/busybox", "./etc/", "./etc/passwd", "./usr/"}, 100)
	writeTar(t, oci, []string{"blobs/", "blobs/sha256/", "blobs/sha256/0c87a3108be9", "blobs/sha256/1181890f1349", "index.json", "oci-layout"}, 100)
	writeTar(t, docker, []string{"a64271085e2d.tar", "0c87a3108be9.json", "520679e7802798bb/VERSION", "520679e7802798bb/json", "manifest.json", "repositories"}, 100)
	return text, rootfs, oci, docker
}

// TestImportWrongFile: restore --import of a file that is no checkpoint
// archive names what it looks like and what to do, and leaves nothing.
func TestImportWrongFile(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	dir := t.TempDir()
	text, rootfs, oci, docker := wrongFiles(t, dir)
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	for path, want := range map[string]string{
		text:   "ckpt: import " + text + ": format: not a checkpoint archive: it looks like a text file\n",
		rootfs: "ckpt: import " + rootfs + ": format: not a checkpoint archive: it looks like a root filesystem tar: import it as an image with `ckpt image import " + rootfs + " NAME`\n",
		oci:    "ckpt: import " + oci + ": format: not a checkpoint archive: it looks like an OCI image archive (oci-archive): it is an image: load it with `ckpt image load -i " + oci + "`\n",
		docker: "ckpt: import " + docker + ": format: not a checkpoint archive: it looks like a Docker image archive (docker-archive): it is an image: load it with `ckpt image load -i " + docker + "`\n",
	} {
		code, out, errOut := ckpt(t, append(g, "restore", "--import", path)...)
		if code != exitFailure || out != "" || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("restore --import %s = exit %d, stdout %q, stderr\n%s\nwant exit 1 and\n%s", filepath.Base(path), code, out, errOut, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "root", "import")); len(entries) > 0 {
		t.Errorf("the imports left %d entries in <root>/import", len(entries))
	}
}

// TestImageImportWrongFile: image import refuses an image archive (file
// or OCI layout directory), a checkpoint archive and a text file, with
// what to do, and stores nothing.
func TestImageImportWrongFile(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	text, _, oci, docker := wrongFiles(t, dir)
	ociDir := filepath.Join(dir, "oci-dir")
	if err := os.MkdirAll(filepath.Join(ociDir, "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"oci-layout", "index.json"} {
		if err := os.WriteFile(filepath.Join(ociDir, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	archive, _ := filepath.Abs("../../testdata/ckpt/counter.tar.zst")
	imageHint := func(p string) string { return "it is an image: load it with `ckpt image load -i " + p + "`" }
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	for path, want := range map[string]string{
		oci:     "engine: not a root filesystem: it looks like an OCI image archive (oci-archive): " + imageHint(oci),
		docker:  "engine: not a root filesystem: it looks like a Docker image archive (docker-archive): " + imageHint(docker),
		ociDir:  "engine: not a root filesystem: it holds an OCI image layout (oci-layout): " + imageHint(ociDir),
		archive: "engine: not a root filesystem: it looks like a checkpoint archive: restore it with `ckpt restore --import " + archive + "`",
		text:    "engine: not a root filesystem: it looks like a text file",
	} {
		code, out, errOut := ckpt(t, append(g, "image", "import", path, "img")...)
		if code != exitFailure || out != "" || !strings.HasPrefix(errOut, "ckpt: import image img from "+path+": "+want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("image import %s = exit %d, stdout %q, stderr\n%s\nwant exit 1 and ...%s", filepath.Base(path), code, out, errOut, want)
		}
	}
	if _, out, _ := ckpt(t, append(g, "image", "ls", "--json")...); strings.Contains(out, "img") {
		t.Errorf("image ls after the refused imports: %s", out)
	}
}

// TestExportPathErrors: checkpoint --export to a path that cannot be
// written names the user's path and what to do, and leaves the container
// running, untouched (its output goes on).
func TestExportPathErrors(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "runc")
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
	t.Cleanup(func() {
		c("rm", "-f", "xp")
		e := &engine.Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")}
		_ = e.ImageRemove(context.Background(), "workload")
		_ = e.Close()
	})
	if code, _, errOut := c("image", "import", tarPath, "workload"); code != 0 {
		t.Fatalf("image import: %s", errOut)
	}
	if code, _, errOut := c("run", "-d", "--name", "xp", "workload", "/bin/counter", "-interval", "20ms"); code != 0 {
		t.Fatalf("run: %s", errOut)
	}
	logLines := func() int { _, out, _ := c("logs", "xp"); return strings.Count(out, "\n") }
	waitFor(t, func() bool { return logLines() > 2 })
	// runningPID is the container's PID, 0 unless it is the one running.
	runningPID := func() int {
		var ps psJSON
		_, out, _ := c("ps", "-a", "--json")
		if json.Unmarshal([]byte(out), &ps) != nil || len(ps.Containers) != 1 || ps.Containers[0].Status != engine.StatusRunning {
			t.Logf("ps -a --json: %s", out)
			return 0
		}
		return ps.Containers[0].PID
	}
	pid0 := runningPID()
	if pid0 == 0 {
		t.Fatal("the container does not run")
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/no/such/dir/x.tar.zst":          "ckpt: export xp: directory /no/such/dir does not exist: create it, or give a path in an existing directory\n",
		filepath.Join(file, "x.tar.zst"):  "ckpt: export xp: " + file + " is not a directory\n",
		dir:                               "ckpt: export xp: " + dir + " is a directory: give a file name\n",
		"/proc/no-such-file-here.tar.zst": "ckpt: export xp: cannot create /proc/no-such-file-here.tar.zst: ",
	} {
		code, out, errOut := c("checkpoint", "-e", path, "xp")
		if code != exitFailure || out != "" || !strings.HasPrefix(errOut, want) || strings.Contains(errOut, ".tmp-") {
			t.Errorf("checkpoint -e %s = exit %d, stdout %q, stderr %q; want exit 1 and %q", path, code, out, errOut, want)
		}
	}
	if pid := runningPID(); pid != pid0 {
		t.Fatalf("after the refused exports the container's PID is %d, was %d", pid, pid0)
	}
	n := logLines()
	waitFor(t, func() bool { return logLines() > n+2 })
}

// TestUsageExitDocumented: every command's exit table gives usage errors
// the code they exit with.
func TestUsageExitDocumented(t *testing.T) {
	want := fmt.Sprintf("%d  usage error", exitUsage)
	for _, c := range commands() {
		if c.exits != "" && strings.Contains(c.exits, "usage error") && !strings.Contains(c.exits, want) {
			t.Errorf("%s --help: exit table %q does not say %q", c.name, c.exits, want)
		}
	}
}
