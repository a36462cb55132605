package testutil

import (
	"os/exec"
	"path/filepath"
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
	dir := scriptOutput(t, "podman (not on PATH)", script)
	if dir == "" {
		return Podman{}
	}
	return Podman{Path: filepath.Join(dir, "podman"), PolicyFlag: "--signature-policy=" + filepath.Join(dir, "policy.json")}
}
