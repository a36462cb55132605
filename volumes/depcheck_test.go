package volumes

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// TestDependencies keeps volumes below engine and cmd
// (cmd → engine → {rootfs, volumes} → format): volumes imports only the
// standard library, format, rootfs, internal/fsutil and golang.org/x/sys,
// and nothing it depends on, however indirectly, is engine or a command.
// Test-only imports are not checked.
func TestDependencies(t *testing.T) {
	goBin := testutil.RequireTool(t, "go")
	for _, goos := range []string{"linux", "darwin"} {
		list := func(tmpl string) []string {
			cmd := exec.Command(goBin, "list", "-f", tmpl, ".")
			cmd.Env = append(cmd.Environ(), "GOOS="+goos)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("GOOS=%s go list -f %s = %v", goos, tmpl, err)
			}
			return strings.Fields(string(out))
		}
		for _, imp := range list(`{{join .Imports " "}}`) {
			switch {
			case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."): // standard library
			case imp == "github.com/ckpt/ckpt/format", imp == "github.com/ckpt/ckpt/rootfs":
			case imp == "golang.org/x/sys/unix": // renameat2, syncfs, flock
			case imp == "github.com/ckpt/ckpt/internal/fsutil": // removal that never crosses a mount
			default:
				t.Errorf("GOOS=%s: volumes imports %s", goos, imp)
			}
		}
		for _, dep := range list(`{{join .Deps " "}}`) {
			if dep == "github.com/ckpt/ckpt/engine" || strings.HasPrefix(dep, "github.com/ckpt/ckpt/cmd/") || dep == "os/exec" {
				t.Errorf("GOOS=%s: volumes depends on %s", goos, dep)
			}
		}
	}
}
