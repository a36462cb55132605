package testutil

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Buildah runs the peer buildah with a store of its own (vfs, so it
// mounts nothing) under Dir.
type Buildah struct {
	// Path is the buildah wrapper; Policy a policy.json accepting
	// anything, for --signature-policy.
	Path, Policy string
	// Dir holds the store (root, runroot); Root is its graph root.
	Dir, Root string
}

// RequireBuildah returns the release's buildah unpacked into a private
// directory by scripts/peer-buildah.sh (nothing is installed on the
// system), with its store in a temporary directory of t. A missing
// buildah fails the test under CI=true (Missing).
func RequireBuildah(t testing.TB) *Buildah {
	t.Helper()
	RequireRoot(t)
	dir := scriptOutput(t, "buildah", "peer-buildah.sh")
	if dir == "" {
		return nil
	}
	d := t.TempDir()
	return &Buildah{Path: filepath.Join(dir, "buildah"), Policy: filepath.Join(dir, "policy.json"), Dir: d, Root: filepath.Join(d, "root")}
}

// Run runs buildah args with the test's store and returns its output
// without the trailing newline; a failure fails the test.
func (b *Buildah) Run(t testing.TB, args ...string) string {
	t.Helper()
	all := append([]string{"--root", b.Root, "--runroot", filepath.Join(b.Dir, "run"), "--storage-driver", "vfs"}, args...)
	out, err := exec.Command(b.Path, all...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("buildah %s: %s", strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(string(out))
}
