package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Podman is the peer podman a test runs: Path, with PolicyFlag to pass to
// commands that check signatures (podman refuses to import without a
// policy file).
type Podman struct {
	Path       string
	PolicyFlag string
}

// RequirePodman returns podman on PATH or, where it is not installed, the
// release's podman unpacked into a private directory by
// scripts/peer-podman.sh (nothing is installed on the system). A
// missing podman fails the test under CI=true (Missing).
func RequirePodman(t testing.TB) Podman {
	t.Helper()
	if p, err := exec.LookPath("podman"); err == nil {
		return Podman{Path: p, PolicyFlag: "--signature-policy=/etc/containers/policy.json"}
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "peer-podman.sh")
	out, err := exec.Command("bash", script).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		Missing(t, "podman: not on PATH, and scripts/peer-podman.sh could not unpack it: %s", msg)
		return Podman{}
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "podman")); err != nil {
		Missing(t, "podman: scripts/peer-podman.sh printed %q: %v", dir, err)
		return Podman{}
	}
	return Podman{Path: filepath.Join(dir, "podman"), PolicyFlag: "--signature-policy=" + filepath.Join(dir, "policy.json")}
}
