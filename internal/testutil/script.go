package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// scriptOutput runs scripts/SCRIPT, which makes (once) and prints the path
// of something a test needs (what), and returns that path, or "" after
// Missing when the script fails or prints no existing path.
func scriptOutput(t testing.TB, what, script string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "scripts", script)
	out, err := exec.Command("bash", path).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		Missing(t, "%s: scripts/%s: %s", what, script, msg)
		return ""
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		Missing(t, "%s: scripts/%s printed %q: %v", what, script, p, err)
		return ""
	}
	return p
}
