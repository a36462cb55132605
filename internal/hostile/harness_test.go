package hostile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/volumes"
)

const (
	// caseTimeout bounds each command of a case.
	caseTimeout = 60 * time.Second
	// maxRSS bounds each command's peak resident memory.
	maxRSS = 256 << 20
)

// bins are the command binaries built from this tree.
type bins struct{ ckpt, ckptinspect string }

// buildBins builds ckpt and ckptinspect into a temporary directory.
func buildBins(t *testing.T) bins {
	t.Helper()
	dir := t.TempDir()
	goTool := testutil.RequireTool(t, "go")
	cmd := exec.Command(goTool, "build", "-tags="+testutil.BuildTags, "-o", dir+"/", "../../cmd/ckpt", "../../cmd/ckptinspect")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bins{ckpt: filepath.Join(dir, "ckpt"), ckptinspect: filepath.Join(dir, "ckptinspect")}
}

// result is one command's outcome.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
	maxRSS         int64 // bytes
}

// TestMain lets the test binary be the wrapper run measures commands
// through (wrapEnv set): a process exec'd straight from the test would
// report the test's own peak memory as its start (the kernel records the
// old address space's peak at exec), a grandchild of a fresh process
// does not.
func TestMain(m *testing.M) {
	if out := os.Getenv(wrapEnv); out != "" {
		os.Exit(wrap(out, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// wrapEnv names the file the wrapper writes the command's peak RSS to.
const wrapEnv = "CKPT_HOSTILE_RUSAGE"

// wrap runs argv with the wrapper's stdio, writes its peak RSS in bytes
// to out and returns its exit status.
func wrap(out string, argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		_ = os.WriteFile(out, []byte(strconv.FormatInt(ru.Maxrss<<10, 10)), 0o600)
	}
	return cmd.ProcessState.ExitCode()
}

// run runs argv within caseTimeout, through the wrapper, and checks its
// time and peak memory against the bounds.
func run(t *testing.T, argv ...string) result {
	t.Helper()
	return runStdin(t, "", argv...)
}

// runStdin is run with the file stdin ("": none) as the command's stdin.
func runStdin(t *testing.T, stdin string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rss := filepath.Join(t.TempDir(), "rss")
	cmd := exec.CommandContext(ctx, self, argv...)
	cmd.Env = append(os.Environ(), wrapEnv+"="+rss)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	err = cmd.Run()
	r := result{stdout: o.String(), stderr: e.String(), took: time.Since(start), code: -1}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %q: %v", argv, err)
	}
	if b, err := os.ReadFile(rss); err == nil {
		r.maxRSS, _ = strconv.ParseInt(string(b), 10, 64)
	}
	what := filepath.Base(argv[0]) + " " + argv[len(argv)-1]
	if ctx.Err() != nil {
		t.Errorf("%s took over %v (killed)", what, caseTimeout)
	}
	if r.maxRSS > maxRSS {
		t.Errorf("%s peaked at %d MiB, over %d MiB", what, r.maxRSS>>20, maxRSS>>20)
	}
	return r
}

// host is an engine root driven through the ckpt binary.
type host struct {
	bins      bins
	root, run string
}

func newHost(t *testing.T, b bins, dir string) *host {
	t.Helper()
	h := &host{bins: b, root: filepath.Join(dir, "root"), run: filepath.Join(dir, "run")}
	t.Cleanup(func() {
		for _, id := range h.containers(t) {
			h.ckpt(t, "rm", "-f", id)
		}
		h.ckpt(t, "image", "rm", "workload")
	})
	return h
}

// ckpt runs ckpt with h's roots.
func (h *host) ckpt(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, append([]string{h.bins.ckpt, "--root", h.root, "--runroot", h.run}, args...)...)
}

// ckptStdin runs ckpt with h's roots and the file stdin as its stdin.
func (h *host) ckptStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runStdin(t, stdin, append([]string{h.bins.ckpt, "--root", h.root, "--runroot", h.run}, args...)...)
}

// must runs ckpt and fails the test unless it succeeds.
func (h *host) must(t *testing.T, args ...string) string {
	t.Helper()
	r := h.ckpt(t, args...)
	if r.code != 0 {
		t.Fatalf("ckpt %q = exit %d\n%s", args, r.code, r.stderr)
	}
	return r.stdout
}

// removeAll removes h's containers and volumes (ckpt rm keeps volumes,
// as podman does).
func (h *host) removeAll(t *testing.T) {
	t.Helper()
	for _, id := range h.containers(t) {
		h.must(t, "rm", "-f", id)
	}
	st := &volumes.Store{Root: filepath.Join(h.root, "volumes")}
	vols, _ := st.List(context.Background())
	for _, v := range vols {
		if err := st.Remove(context.Background(), v.Name, true); err != nil {
			t.Error(err)
		}
	}
}

// containers lists h's container IDs.
func (h *host) containers(t *testing.T) []string {
	t.Helper()
	r := h.ckpt(t, "ps", "-a")
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	return ids
}

// checkClean checks that a refused import left nothing in h: no
// container, staging directory, volume, storage container, or mount below
// h's roots.
func (h *host) checkClean(t *testing.T) {
	t.Helper()
	if ids := h.containers(t); len(ids) > 0 {
		t.Errorf("containers left: %v", ids)
	}
	for _, d := range []string{filepath.Join(h.root, "import"), filepath.Join(h.root, "volumes"), filepath.Join(h.root, "containers")} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			t.Errorf("left in %s: %v", d, names(ents))
		}
	}
	if b, err := os.ReadFile(filepath.Join(h.root, "storage", "overlay-containers", "containers.json")); err == nil && strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("storage containers left: %s", b)
	}
	for _, m := range mountsBelow(t, h.root, h.run) {
		if !strings.HasPrefix(m, filepath.Join(h.root, "storage")) {
			t.Errorf("mount left: %s", m)
		}
	}
}

func names(ents []os.DirEntry) []string {
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

// mountsBelow lists the mount points below any of dirs.
func mountsBelow(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, m := range mountPoints(t) {
		for _, d := range dirs {
			if m == d || strings.HasPrefix(m, d+"/") {
				out = append(out, m)
			}
		}
	}
	return out
}

// mountPoints returns the mount points of /proc/self/mountinfo.
func mountPoints(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// sentinels are the host's state outside the engine's roots that no case
// may change.
type sentinels struct {
	canaryCgroup, canaryFile string
	dev                      map[string]string
	slash                    []string
	agents                   map[string]string
	mounts                   []string
	mntns                    []string
}

// hostMounts are the mount points not below a directory tests make
// (other packages' tests mount and unmount there while these run).
func hostMounts(t *testing.T) []string {
	var out []string
	for _, m := range mountPoints(t) {
		if strings.HasPrefix(m, os.TempDir()+"/") || strings.HasPrefix(m, "/run/ckpt-") || strings.HasPrefix(m, "/var/tmp/") {
			continue
		}
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

func listDir(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names(ents)
}

// devState describes each entry of the host's /dev by its type, device
// number and link target (a node replaced by another keeps its name).
func devState(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/dev")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		p := filepath.Join("/dev", e.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			continue // gone meanwhile
		}
		target, _ := os.Readlink(p)
		out[e.Name()] = fmt.Sprintf("mode %o dev %d:%d %s", st.Mode, st.Rdev>>8&0xfff, st.Rdev&0xff|st.Rdev>>12&0xfff00, target)
	}
	return out
}

// takeSentinels makes a canary cgroup in every cgroup v1 hierarchy's pids
// controller (a rollback that walks into the hierarchy removes empty
// cgroups) and a canary file, and records the rest.
func takeSentinels(t *testing.T) *sentinels {
	t.Helper()
	s := &sentinels{agents: map[string]string{}}
	s.canaryCgroup = filepath.Join("/sys/fs/cgroup/pids", fmt.Sprintf("ckpt-hostile-canary-%d", os.Getpid()))
	if err := os.Mkdir(s.canaryCgroup, 0o755); err != nil {
		testutil.Missing(t, "make a canary cgroup (cgroup v1 pids hierarchy): %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(s.canaryCgroup) })
	s.canaryFile = filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(s.canaryFile, []byte("canary"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.dev, s.slash = devState(t), listDir(t, "/")
	agents, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	for _, a := range agents {
		b, _ := os.ReadFile(a)
		s.agents[a] = string(b)
	}
	s.mounts = hostMounts(t)
	s.mntns, _ = filepath.Glob("/tmp/.criu.mntns.*")
	return s
}

// check fails t if anything recorded changed.
func (s *sentinels) check(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(s.canaryCgroup); err != nil {
		t.Errorf("canary cgroup: %v", err)
	}
	if b, err := os.ReadFile(s.canaryFile); err != nil || string(b) != "canary" {
		t.Errorf("canary file: %q, %v", b, err)
	}
	got := devState(t)
	for n, d := range got {
		if s.dev[n] != d {
			t.Errorf("/dev/%s is %s, was %q", n, d, s.dev[n])
		}
	}
	for n := range s.dev {
		if _, ok := got[n]; !ok {
			t.Errorf("/dev/%s is gone", n)
		}
	}
	if got := listDir(t, "/"); !slices.Equal(got, s.slash) {
		t.Errorf("/ changed: %v, was %v", got, s.slash)
	}
	for a, v := range s.agents {
		if b, _ := os.ReadFile(a); string(b) != v {
			t.Errorf("%s = %q, was %q", a, b, v)
		}
	}
	if got := hostMounts(t); !slices.Equal(got, s.mounts) {
		t.Errorf("host mounts changed:\n%v\nwas\n%v", got, s.mounts)
	}
}

// checkMntns fails t if a CRIU mount namespace directory made since the
// sentinels were taken is still there after a while: CRIU makes one per
// restore in /tmp and a failed restore may leave it (other tests' CRIUs
// make them too while they run, so only lasting ones count).
func (s *sentinels) checkMntns(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got, _ := filepath.Glob("/tmp/.criu.mntns.*")
		left = left[:0]
		for _, d := range got {
			if !slices.Contains(s.mntns, d) {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("CRIU's mount namespace directories left: %v", left)
}

// archive is a v1 archive read into memory: its manifest and members.
type archive struct {
	entries []entry
}

type entry struct {
	hdr  tar.Header
	data []byte
}

// readArchive reads an uncompressed archive.
func readArchive(t *testing.T, path string) *archive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &archive{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return a
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.entries = append(a.entries, entry{hdr: *h, data: b})
	}
}

// member returns the content of the named member.
func (a *archive) member(t *testing.T, name string) []byte {
	t.Helper()
	for _, e := range a.entries {
		if e.hdr.Name == name {
			return e.data
		}
	}
	t.Fatalf("no member %s", name)
	return nil
}

// memberNames returns the names of the members matching glob.
func (a *archive) memberNames(glob string) []string {
	var out []string
	for _, e := range a.entries {
		if ok, _ := filepath.Match(glob, e.hdr.Name); ok {
			out = append(out, e.hdr.Name)
		}
	}
	return out
}
