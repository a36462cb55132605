package engine

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestStoppedOwnCgroupOnly: the refusal of a stopped process reads only
// the container's own cgroup. A stopped process of the host (in this
// process' cgroup, which no container record names) is not the
// container's: the check must not refuse its checkpoint.
func TestStoppedOwnCgroupOnly(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := procStat(cmd.Process.Pid, 3); err == nil && st == "T" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep did not stop")
		}
	}
	for _, cg := range []string{"", "/", "/ckpt-0123/abcd"} {
		c := &Container{Name: "c", PID: cmd.Process.Pid, CgroupsPath: cg}
		if err := checkNoStopped(c); err != nil {
			t.Errorf("CgroupsPath %q: %v, want nil (the stopped process is not in the container's cgroup)", cg, err)
		}
	}
}
