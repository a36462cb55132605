package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestMigrateUsage checks podman's flag rules for checkpoint --export and
// restore --import; none of them touches a container.
func TestMigrateUsage(t *testing.T) {
	root := t.TempDir()
	g := []string{"--root", root, "--runroot", filepath.Join(root, "run")}
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"checkpoint", "--ignore-rootfs", "x"}, exitUsage, "--ignore-rootfs can only be used with --export"},
		{[]string{"checkpoint", "--ignore-volumes", "x"}, exitUsage, "--ignore-volumes can only be used with --export"},
		{[]string{"checkpoint", "-c", "gzip", "x"}, exitUsage, "--compress can only be used with --export"},
		{[]string{"checkpoint", "--stream", "x"}, exitUsage, "--stream can only be used with --export"},
		{[]string{"checkpoint", "-e", "a.tar", "-c", "lz4", "x"}, exitUsage, `"lz4" is not one of zstd, gzip, none`},
		{[]string{"checkpoint", "-e", "a.tar"}, exitUsage, "at least one name or id"},
		{[]string{"checkpoint", "-e", "a.tar", "-a"}, exitUsage, "--export needs exactly one container"},
		{[]string{"checkpoint", "-e", "a.tar", "x", "y"}, exitUsage, "--export needs exactly one container"},
		{[]string{"restore", "--name", "n", "x"}, exitUsage, `--name can only be used with --import or a checkpoint image (and no container or image is called "x")`},
		{[]string{"checkpoint", "--create-image", "i", "-e", "a.tar", "x"}, exitUsage, "--create-image and --export cannot be used together"},
		{[]string{"checkpoint", "--create-image", "i", "-c", "none", "x"}, exitUsage, "--compress can only be used with --export"},
		{[]string{"checkpoint", "--create-image", "i", "--ignore-rootfs", "x"}, exitUsage, "--ignore-rootfs can only be used with --export"},
		{[]string{"checkpoint", "--create-image", "i", "-P", "x"}, exitUsage, "--create-image takes a full checkpoint"},
		{[]string{"checkpoint", "--create-image", "i", "x", "y"}, exitUsage, "--create-image needs exactly one container"},
		{[]string{"checkpoint", "--create-image", "", "x"}, exitUsage, "--create-image needs an image name"},
		{[]string{"restore", "--ignore-rootfs", "x"}, exitUsage, "--ignore-rootfs can only be used with --import"},
		{[]string{"restore", "--ignore-volumes", "x"}, exitUsage, "--ignore-volumes can only be used with --import"},
		{[]string{"restore", "--ignore-static-ip", "x"}, exitUsage, "--ignore-static-ip can only be used with --import"},
		{[]string{"restore", "--ignore-static-mac", "x"}, exitUsage, "--ignore-static-mac can only be used with --import"},
		{[]string{"restore", "-i", "a.tar", "x"}, exitUsage, "do not name one"},
		{[]string{"restore", "-i", "a.tar", "-a"}, exitUsage, "cannot be used with --all or --latest"},
		{[]string{"restore", "-i", "a.tar", "-l"}, exitUsage, "cannot be used with --all or --latest"},
		{[]string{"restore", "-i", "a.tar", "-n", "x", "--tcp-established"}, exitUsage, "--tcp-established cannot be used with --name"},
		{[]string{"restore", "-i", "a.tar", "--tcp-established", "--tcp-close"}, exitUsage, "cannot be used together"},
		{[]string{"restore", "-i", "a.tar", "--help"}, 0, ""},
		{[]string{"checkpoint", "-P", "--with-previous", "x"}, exitUsage, "--pre-checkpoint and --with-previous cannot be used together"},
		{[]string{"checkpoint", "-P", "--with-previous", "-e", "a.tar", "x"}, exitUsage, "--pre-checkpoint and --with-previous cannot be used together"},
		{[]string{"restore", "--import-previous", "pre.tar", "x"}, exitUsage, "--import-previous can only be used with --import"},
		{[]string{"restore", "--import-previous", "pre.tar"}, exitUsage, "--import-previous can only be used with --import"},
		{[]string{"restore", "-v", "/srv:/data", "x"}, exitUsage, "--volume can only be used with --import"},
		{[]string{"restore", "--ignore-binds", "x"}, exitUsage, "--ignore-binds can only be used with --import"},
		{[]string{"restore", "--network", "host", "x"}, exitUsage, "--network can only be used with --import"},
		{[]string{"restore", "-i", "a.tar", "-v", "srv:/data"}, exitUsage, "-v srv:/data: want SRC:DST[:ro] with absolute paths"},
		{[]string{"restore", "-i", "a.tar", "-v", "/srv:/data:rx"}, exitUsage, `unknown option "rx"`},
		{[]string{"checkpoint", "--encrypt-to", "age1x", "x"}, exitUsage, "--encrypt-to can only be used with --export"},
		{[]string{"checkpoint", "-e", "a.tar", "--encrypt-to", "age1x", "x"}, exitUsage, "--encrypt-to age1x: unusable key"},
		{[]string{"checkpoint", "-e", "a.tar", "--encrypt-to", "/nonexistent.pub", "x"}, exitUsage, "--encrypt-to /nonexistent.pub: unusable key"},
		{[]string{"checkpoint", "-e", "a.tar", "--encrypt-to", "ssh-dss AAAA", "x"}, exitUsage, "neither an age recipient"},
		{[]string{"restore", "--decrypt-key", "k", "x"}, exitUsage, "--decrypt-key can only be used with --import"},
		{[]string{"checkpoint", "--sign-key", "k", "x"}, exitUsage, "--sign-key can only be used with --export and --encrypt-to"},
		{[]string{"checkpoint", "-e", "a.tar", "--sign-key", "k", "x"}, exitUsage, "--sign-key signs a sealed archive: give --encrypt-to too"},
		{[]string{"restore", "--trust-key", "k.pub", "x"}, exitUsage, "--trust-key can only be used with --import"},
		{[]string{"restore", "-i", "a.tar", "--trust-key", "/nonexistent.pub"}, exitUsage, "--trust-key /nonexistent.pub: unusable key"},
		{[]string{"checkpoint", "--confirm-cmd", "true", "x"}, exitUsage, "--confirm-cmd can only be used with --export -"},
		{[]string{"checkpoint", "-e", "a.tar", "--confirm-cmd", "true", "x"}, exitUsage, "--confirm-cmd can only be used with --export -"},
		{[]string{"restore", "-i", "a.tar", "--decrypt-key", "/nonexistent"}, exitUsage, "--decrypt-key /nonexistent: unusable key"},
	}
	for _, tt := range tests {
		args := append(append([]string{}, g...), tt.args...)
		code, _, errOut := ckpt(t, args...)
		if code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("ckpt %q = exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.stderr)
		}
	}
}

// TestCLIMigrate moves a container between two engine roots with the CLI:
// checkpoint --export --print-stats on one, restore --import --name on the
// other; the counter continues there.
func TestCLIMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	dir := t.TempDir()
	host := func(n string) func(args ...string) string {
		g := []string{"--root", filepath.Join(dir, n, "root"), "--runroot", filepath.Join(dir, n, "run")}
		t.Cleanup(func() {
			ckpt(t, append(append([]string{}, g...), "rm", "-f", "m")...)
			ckpt(t, append(append([]string{}, g...), "rm", "-f", "m2")...)
			ckpt(t, append(append([]string{}, g...), "rm", "-f", "m3")...)
			e := &engine.Engine{Root: filepath.Join(dir, n, "root"), RunRoot: filepath.Join(dir, n, "run")}
			_ = e.ImageRemove(context.Background(), "workload")
			_ = e.Close()
		})
		return func(args ...string) string {
			t.Helper()
			code, out, errOut := ckpt(t, append(append([]string{}, g...), args...)...)
			if code != 0 {
				t.Fatalf("ckpt %s %q = exit %d\nstderr: %s", n, args, code, errOut)
			}
			return out
		}
	}
	a, b := host("a"), host("b")
	a("image", "import", tarPath, "workload")
	b("image", "import", tarPath, "workload")
	a("run", "-d", "--name", "m", "workload", "/bin/counter", "-interval", "50ms")
	waitFor(t, func() bool { return strings.Contains(a("logs", "m"), "counter 3\n") })
	gb := []string{"--root", filepath.Join(dir, "b", "root"), "--runroot", filepath.Join(dir, "b", "run")}

	// Sealed to an ssh-keygen key and signed with it, the container
	// running on: refused without the key, naming the flag, and with
	// another key trusted; restored with the key and its signer trusted.
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(testutil.RequireTool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	other := filepath.Join(dir, "other")
	if out, err := exec.Command(testutil.RequireTool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	sealed := filepath.Join(dir, "m.sealed")
	a("checkpoint", "-R", "-e", sealed, "--encrypt-to", key+".pub", "--sign-key", key, "m")
	if code, _, errOut := ckpt(t, append(gb, "restore", "-i", sealed, "-n", "m3")...); code == 0 || !strings.Contains(errOut, "give its key with --decrypt-key") {
		t.Errorf("restore -i of a sealed archive without key = exit %d, %q", code, errOut)
	}
	if code, _, errOut := ckpt(t, append(gb, "restore", "-i", sealed, "-n", "m3", "--decrypt-key", key, "--trust-key", other+".pub")...); code == 0 || !strings.Contains(errOut, "signed by a key not trusted") {
		t.Errorf("restore -i --trust-key of another signer = exit %d, %q", code, errOut)
	}
	b("restore", "-i", sealed, "-n", "m3", "--decrypt-key", key, "--trust-key", key+".pub")
	waitFor(t, func() bool { return strings.Count(b("logs", "m3"), "\n") > 3 })

	archive := filepath.Join(dir, "m.tar.gz")
	out := a("checkpoint", "--print-stats", "-e", archive, "-c", "gzip", "m")
	var st checkpointStatsJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Containers) != 1 || st.Containers[0].CRIU == nil {
		t.Fatalf("checkpoint --export --print-stats = %s (%v)", out, err)
	}
	// stderr on a terminal: the progress line names CRIU's restore after
	// its bar, and stdout stays the ID alone.
	var idOut strings.Builder
	var code int
	term := onTerminal(t, func(stderr *os.File) {
		code = run(context.Background(), append(gb, "restore", "-i", archive, "-n", "m2"), &idOut, stderr)
	})
	if code != 0 || !strings.Contains(term, "100%") || !strings.Contains(term, "restoring (CRIU)…") {
		t.Errorf("restore -i on a terminal = exit %d, terminal %q; want the bar and the CRIU step", code, term)
	}
	id := strings.TrimSpace(idOut.String())
	if len(id) != 64 || id == st.Containers[0].ID {
		t.Fatalf("restore --import --name printed %q, want a new ID", id)
	}
	at := strings.Count(a("logs", "m"), "\n")
	waitFor(t, func() bool { return strings.Count(b("logs", "m2"), "\n") > at+2 })
}

func TestProgress(t *testing.T) {
	var buf strings.Builder
	if p := newProgress(&buf, "x"); p != nil {
		t.Fatalf("newProgress(non-terminal) = %v, want nil", p)
	}
	var none *progress
	none.set(1, 2) // a nil progress does nothing
	none.done(true)
	p := &progress{w: &buf, label: "import a.tar"}
	p.set(50<<20, 100<<20)
	if got := buf.String(); !strings.Contains(got, " 50% 50.0/100.0 MiB") || !strings.HasPrefix(got, "\rimport a.tar [###############...") {
		t.Errorf("progress line = %q", got)
	}
	p.done(true)
	if got := buf.String(); !strings.Contains(got, "100%") || !strings.HasSuffix(got, "\n") {
		t.Errorf("final progress line = %q", got)
	}
	buf.Reset()
	q := &progress{w: &buf, label: "export a.tar"}
	q.set(3<<20, 0)
	if got := buf.String(); !strings.Contains(got, "export a.tar 3.0 MiB") {
		t.Errorf("progress line without total = %q", got)
	}
}

// onTerminal runs f with a pseudo-terminal for stderr and returns what
// was written to it.
func onTerminal(t *testing.T, f func(stderr *os.File)) string {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Missing(t, "pseudo-terminal: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, m) // ends with EIO once the terminal's last user closes it
		close(copied)
	}()
	f(s)
	s.Close()
	<-copied
	return out.String()
}

// TestProgressPhases feeds the progress line the engine's phases after the
// archive is read: each is named after the full bar, the last one keeps
// being redrawn (its elapsed time moves) until done, and done ends the
// line without a step, or with the step that failed.
func TestProgressPhases(t *testing.T) {
	var buf syncBuffer
	p := &progress{w: &buf, label: "import a.tar", start: time.Now()}
	p.set(10<<20, 100<<20)
	for _, ph := range []string{"check", "volumes", "create", "apply_rootfs", "restore"} {
		p.setPhase(ph)
	}
	lines := strings.Split(buf.String(), "\r")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "100% 100.0/100.0 MiB") || !strings.Contains(last, "restoring (CRIU)…") || !strings.HasSuffix(last, "\x1b[K") {
		t.Errorf("line during restore = %q, want the full bar and the step", last)
	}
	for _, want := range []string{"checking the host…", "restoring volumes…", "creating the container…", "applying root filesystem changes…"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress output %q lacks %q", buf.String(), want)
		}
	}
	n := strings.Count(buf.String(), "\r")
	time.Sleep(1200 * time.Millisecond)
	if strings.Count(buf.String(), "\r") < n+2 {
		t.Errorf("the line was not redrawn while the step ran: %q", buf.String())
	}
	p.done(true)
	out := buf.String()
	final := out[strings.LastIndex(out, "\r"):]
	if strings.Contains(final, "restoring") || !strings.HasSuffix(final, "\n") {
		t.Errorf("final line = %q, want the bar alone and a newline", final)
	}
	time.Sleep(600 * time.Millisecond)
	if buf.String() != out {
		t.Errorf("redrawn after done: %q", buf.String()[len(out):])
	}

	buf.Reset()
	q := &progress{w: &buf, label: "import a.tar", start: time.Now()}
	q.set(1, 1)
	q.setPhase("restore")
	q.done(false)
	if got := buf.String(); !strings.Contains(got, "restoring (CRIU)… failed") {
		t.Errorf("failed restore's final line = %q", got)
	}
	var none *progress
	none.setPhase("restore") // a nil progress (stderr not a terminal) prints nothing
}

// syncBuffer is a strings.Builder safe for the progress line's redraws.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// TestCLIPreCopy is pre-copy migration with the CLI: checkpoint -P -e
// twice (the second --print-stats, deduplicated against the first on a
// host without memory tracking), then --with-previous -e --print-stats
// (deduplication statistics) on one root, restore --import with
// --import-previous repeated on the other; the counter continues there. A
// final archive alone, or with only part of its chain, is refused. The
// second pre-checkpoint and the final are sealed (--encrypt-to, the first
// is not): without --decrypt-key the chain is refused naming the flag.
func TestCLIPreCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	tarPath, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(tarPath); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	dir := t.TempDir()
	host := func(n string) ([]string, func(args ...string) string) {
		g := []string{"--root", filepath.Join(dir, n, "root"), "--runroot", filepath.Join(dir, n, "run")}
		t.Cleanup(func() {
			ckpt(t, append(append([]string{}, g...), "rm", "-f", "pc")...)
			e := &engine.Engine{Root: filepath.Join(dir, n, "root"), RunRoot: filepath.Join(dir, n, "run")}
			_ = e.ImageRemove(context.Background(), "workload")
			_ = e.Close()
		})
		return g, func(args ...string) string {
			t.Helper()
			code, out, errOut := ckpt(t, append(append([]string{}, g...), args...)...)
			if code != 0 {
				t.Fatalf("ckpt %s %q = exit %d\nstderr: %s", n, args, code, errOut)
			}
			return out
		}
	}
	_, a := host("a")
	gb, b := host("b")
	a("image", "import", tarPath, "workload")
	b("image", "import", tarPath, "workload")
	a("run", "-d", "--name", "pc", "workload", "/bin/counter", "-interval", "50ms", "-ballast-mb", "16", "-dirty-percent", "1", "-file", "")
	waitFor(t, func() bool { return strings.Contains(a("logs", "pc"), "counter 3\n") })
	pre1, pre2, final := filepath.Join(dir, "pre1.tar.zst"), filepath.Join(dir, "pre2.sealed"), filepath.Join(dir, "final.sealed")
	// The chain mixes levels: pre1 unsealed, pre2 and final sealed.
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(testutil.RequireTool(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	a("checkpoint", "-P", "-e", pre1, "pc")
	out := a("checkpoint", "-P", "--print-stats", "-e", pre2, "--encrypt-to", key+".pub", "pc")
	var st2 checkpointStatsJSON
	if err := json.Unmarshal([]byte(out), &st2); err != nil || len(st2.Containers) != 1 {
		t.Fatalf("checkpoint -P --print-stats = %s (%v)", out, err)
	}
	if cs := st2.Containers[0]; cs.PreCopy == engine.PreCopyDedup && (cs.Incremental == nil || cs.Incremental.PagesParent == 0) {
		t.Errorf("second -P by full dump + dedup: no page skipped as in parent: %s", out)
	}
	out = a("checkpoint", "--with-previous", "--print-stats", "-e", final, "--encrypt-to", key+".pub", "pc")
	var st checkpointStatsJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Containers) != 1 {
		t.Fatalf("checkpoint --with-previous --print-stats = %s (%v)", out, err)
	}
	// The method follows the host's memory tracking (ckpt check).
	switch cs := st.Containers[0]; cs.PreCopy {
	case engine.PreCopyDedup:
		if inc := cs.Incremental; inc == nil || inc.PagesParent == 0 || inc.PagesScanned != inc.PagesWritten+inc.PagesParent {
			t.Errorf("full dump + dedup: no page skipped as in parent: %+v", inc)
		}
	case engine.PreCopyPreDump:
		if cs.Incremental != nil {
			t.Errorf("CRIU pre-dump chain reports a deduplication: %+v", cs.Incremental)
		}
	default:
		t.Errorf("checkpoint --with-previous --print-stats: ckpt_pre_copy %q, want a method (%s)", cs.PreCopy, out)
	}
	dk := []string{"--decrypt-key", key}
	if code, _, errOut := ckpt(t, append(append([]string{}, gb...), "restore", "-i", final, "--import-previous", pre2, "--import-previous", pre1)...); code != 1 || !strings.Contains(errOut, "give its key with --decrypt-key") {
		t.Errorf("restore -i of the sealed chain without --decrypt-key = exit %d, stderr %q; want 1 naming --decrypt-key", code, errOut)
	}
	if code, _, errOut := ckpt(t, append(append([]string{}, gb...), append([]string{"restore", "-i", final}, dk...)...)...); code != 1 || !strings.Contains(errOut, "--import-previous") {
		t.Errorf("restore -i FINAL without --import-previous = exit %d, stderr %q; want 1 naming --import-previous", code, errOut)
	}
	if st.Containers[0].PreCopy == engine.PreCopyDedup {
		if code, _, errOut := ckpt(t, append(append([]string{}, gb...), append([]string{"restore", "-i", final, "--import-previous", pre2}, dk...)...)...); code != 1 || !strings.Contains(errOut, "not among those given") || !strings.Contains(errOut, "with --import-previous") {
			t.Errorf("restore -i FINAL --import-previous PRE2 = exit %d, stderr %q; want 1 naming the missing archive", code, errOut)
		}
		b(append([]string{"restore", "-i", final, "--import-previous", pre2, "--import-previous", pre1}, dk...)...)
	} else {
		b(append([]string{"restore", "-i", final, "--import-previous", pre2}, dk...)...) // CRIU pre-dumps do not chain
	}
	at := strings.Count(a("logs", "pc"), "\n")
	waitFor(t, func() bool { return strings.Count(b("logs", "pc"), "\n") > at+2 })
}

func TestParseBindMaps(t *testing.T) {
	got, err := parseBindMaps([]string{"/srv/a/:/data", "/b:/logs:ro", "/c:/x:rw"})
	want := []engine.BindMap{{Source: "/srv/a", Destination: "/data"}, {Source: "/b", Destination: "/logs", Options: []string{"ro"}}, {Source: "/c", Destination: "/x"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseBindMaps() = %v, %v, want %v", got, err, want)
	}
	for _, bad := range []string{"/a", "a:/b", "/a:b", "/a:/b:ro:x", "/a:/b:z"} {
		if _, err := parseBindMaps([]string{bad}); err == nil {
			t.Errorf("parseBindMaps(%q) succeeded", bad)
		}
	}
}
