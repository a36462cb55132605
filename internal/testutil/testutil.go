// Package testutil holds the test prerequisites every package shares.
//
// The rule it enforces: tests that need root, CRIU or runc run in CI
// (CI=true, as root, after `make deps`) and there they must run — a missing
// prerequisite fails the test instead of skipping it silently. Outside CI
// they skip with the reason, so `go test ./...` works for anyone.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// BuildTags are the build tags ckpt is built with (the Makefile's
// GOFLAGS): no btrfs driver and containers/image's Go OpenPGP, which keep
// cgo-only C libraries (libbtrfs, libgpgme) out. Tests that run `go build`
// pass them.
const BuildTags = "exclude_graphdriver_btrfs,containers_image_openpgp"

// Missing fails t under CI=true and skips it otherwise, with the reason.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("prerequisite missing (CI=true, not skipping): "+format, args...)
		return
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// RequireRoot requires root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}

// RequireTool requires the command name on PATH and returns its path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not on PATH (run `make deps`)", name)
	}
	return p
}
