package testutil

import (
	"testing"
)

// RequireBusybox returns the path of a root filesystem tar holding
// Debian's static busybox with every applet linked (sh, nc, sleep, ...),
// made and cached by scripts/busybox-rootfs.sh (nothing is installed on
// the system). A failed download fails the test under CI=true (Missing).
func RequireBusybox(t testing.TB) string {
	t.Helper()
	return scriptOutput(t, "busybox root filesystem", "busybox-rootfs.sh")
}
