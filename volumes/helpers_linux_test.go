package volumes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

// requireUserXattrs skips (fails under CI=true) where dir's file system
// has no user.* extended attributes (tmpfs before Linux 6.6).
func requireUserXattrs(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, ".xattr-probe")
	must(t, os.WriteFile(p, nil, 0o644))
	defer os.Remove(p)
	if err := unix.Lsetxattr(p, "user.probe", []byte("1"), 0); err != nil {
		testutil.Missing(t, "user.* xattrs on %s: %v", dir, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p, body string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(body), mode))
	must(t, os.Chmod(p, mode))
}

// userXattr selects the extended attributes the tests compare: user.*.
func userXattr(name string) bool { return strings.HasPrefix(name, "user.") }

// entries lists the names in dir (nil if it does not exist).
func entries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
