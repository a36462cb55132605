package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// RequireBusybox returns the path of a root filesystem tar holding
// Debian's static busybox with every applet linked (sh, nc, sleep, ...),
// made and cached by scripts/busybox-rootfs.sh (nothing is installed on
// the system). A failed download fails the test under CI=true (Missing).
func RequireBusybox(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "busybox-rootfs.sh")
	out, err := exec.Command("bash", script).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		Missing(t, "busybox root filesystem: scripts/busybox-rootfs.sh: %s", msg)
		return ""
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		Missing(t, "busybox root filesystem: scripts/busybox-rootfs.sh printed %q: %v", path, err)
		return ""
	}
	return path
}
