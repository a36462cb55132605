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
	return peerPodman(t, "peer-podman.sh")
}

// RequirePodman5 returns podman 5 (the reference peer the project's podman
// archives come from): podman on PATH if it is version 5, else Debian 13's
// unpacked into a private directory by scripts/peer-podman5.sh. A missing
// podman 5 fails the test under CI=true (Missing).
func RequirePodman5(t testing.TB) Podman {
	t.Helper()
	if p, err := exec.LookPath("podman"); err == nil {
		out, _ := exec.Command(p, "--version").Output()
		if strings.HasPrefix(strings.TrimPrefix(strings.TrimSpace(string(out)), "podman version "), "5.") {
			return Podman{Path: p, PolicyFlag: "--signature-policy=/etc/containers/policy.json"}
		}
	}
	return peerPodman(t, "peer-podman5.sh")
}

// peerPodman runs scripts/SCRIPT, which prints the directory of a private
// podman, and returns that podman.
func peerPodman(t testing.TB, script string) Podman {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "scripts", script)
	out, err := exec.Command("bash", path).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		Missing(t, "podman: not on PATH, and scripts/%s could not unpack it: %s", script, msg)
		return Podman{}
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "podman")); err != nil {
		Missing(t, "podman: scripts/%s printed %q: %v", script, dir, err)
		return Podman{}
	}
	return Podman{Path: filepath.Join(dir, "podman"), PolicyFlag: "--signature-policy=" + filepath.Join(dir, "policy.json")}
}
