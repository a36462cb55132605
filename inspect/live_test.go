package inspect

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
)

// counterBinary returns the workload binary, building it if needed.
func counterBinary(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(repoTestdata, "workloads"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin", "counter")
	if _, err := os.Stat(bin); err != nil {
		if out, err := exec.Command("make", "-C", dir, "bin/counter").CombinedOutput(); err != nil {
			testutil.Missing(t, "build workload (make -C testdata/workloads): %v\n%s", err, out)
		}
	}
	return bin
}

// liveCounter starts the counter workload in its own session with the
// given flags; it is killed at the end of the test.
func liveCounter(t *testing.T, args ...string) int {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	cmd := exec.Command(counterBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	time.Sleep(300 * time.Millisecond)
	return cmd.Process.Pid
}

// dumpArchive dumps pid with `criu dump --leave-running` and writes a ckpt
// archive of the images with format.NewWriter.
func dumpArchive(t *testing.T, pid int, name string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	imgs := filepath.Join(dir, "images")
	if err := os.Mkdir(imgs, 0o700); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"dump", "-t", fmt.Sprint(pid), "-D", imgs, "--leave-running", "-o", "dump.log"}, extra...)
	if out, err := exec.Command("criu", args...).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(imgs, "dump.log"))
		t.Fatalf("criu %s: %v\n%s\n%s", strings.Join(args, " "), err, out, tail(log, 2000))
	}
	os.Remove(filepath.Join(imgs, "dump.log"))
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := format.NewWriter(f, format.Manifest{Created: time.Now().UTC().Truncate(time.Second), Engine: format.Engine{Name: "ckpt"},
		Container: format.Container{Name: "counter", ID: fmt.Sprint(pid)}}, nil)
	if err := w.AddDir(format.CheckpointDir, imgs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The verifier is the oracle of every archive written.
	if r, err := Verify(context.Background(), p, nil); err != nil || !r.OK() {
		t.Fatalf("Verify(%s) = %+v, %v", name, r, err)
	}
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestLiveDiffCounter checkpoints the counter workload twice, a few
// seconds apart, and checks that diff finds the pages whose contents
// changed (the counter's) while the process tree stays the same.
func TestLiveDiffCounter(t *testing.T) {
	pid := liveCounter(t, "-file", "", "-interval", "50ms")
	a := dumpArchive(t, pid, "a.ckpt")
	time.Sleep(2 * time.Second)
	b := dumpArchive(t, pid, "b.ckpt")
	ctx := context.Background()
	d, err := DiffArchives(ctx, a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	WriteDiff(&out, d)
	t.Logf("diff:\n%s", out.String())
	if d.Identical {
		t.Fatalf("DiffArchives() = identical, want changes")
	}
	if len(d.Processes) == 0 || d.Processes[0].PID != uint32(pid) || d.Processes[0].Change == Added || d.Processes[0].Change == Removed {
		t.Errorf("processes = %+v, want [%d] in both", d.Processes, pid)
	}
	if d.MemoryTotal.ChangedPages == 0 || d.MemoryTotal.ChangedBytes == 0 {
		t.Fatalf("memory total = %+v, want changed pages", d.MemoryTotal)
	}
	// The counter's value: both archives hold "counter N" strings the
	// workload formatted, and at least one page changed in a writable
	// anonymous or heap mapping.
	found := false
	for _, m := range d.Memory {
		if m.ChangedPages > 0 && (strings.HasPrefix(m.Mapping, "[") || strings.Contains(m.Mapping, "counter")) {
			found = true
		}
	}
	if !found {
		t.Errorf("memory changes = %+v, want a changed page in the workload's memory", d.Memory)
	}
	checkCounterPages(t, d, b)
	// A diff of an archive with itself is identical.
	same, err := DiffArchives(ctx, a, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !same.Identical || same.MemoryTotal.ChangedPages != 0 {
		t.Errorf("DiffArchives(a, a) = %+v, want identical", same)
	}
	// The command line comes from the process's memory.
	o := InspectOptions{Cmd: true}
	in, err := Inspect(ctx, a, &o)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Processes) != 1 || len(in.Processes[0].Cmdline) < 3 || in.Processes[0].Cmdline[1] != "-file" {
		t.Errorf("Inspect(--ps-tree-cmd) processes = %+v, want the counter's argv", in.Processes)
	}
}

// TestLiveSocketsAgainstCrit dumps the counter with an established TCP
// connection and compares the sockets with go-criu's crit's view of the
// images.
func TestLiveSocketsAgainstCrit(t *testing.T) {
	pid := liveCounter(t, "-file", "", "-tcp", "-interval", "50ms")
	a := dumpArchive(t, pid, "tcp.ckpt", "--tcp-established")
	checkAgainstCrit(t, a, true)
	ld, err := Load(context.Background(), a, &LoadOptions{Images: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	sks, err := ld.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	var est int
	for _, s := range sks[uint32(pid)] {
		if s.Proto == "TCP" && s.State == "ESTABLISHED" {
			est++
		}
	}
	if est != 2 {
		t.Errorf("sockets = %+v, want 2 established TCP sockets (server and client ends)", sks)
	}
}
