package rootfs

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// TestDependencies keeps rootfs below engine and cmd: it imports only the
// standard library, golang.org/x/sys (openat2, *at system calls, xattrs)
// and format (the shared limits and the deleted.files reader), with what
// format imports (its own depcheck_test.go keeps that list short). Test-only
// imports are not checked.
func TestDependencies(t *testing.T) {
	goBin := testutil.RequireTool(t, "go")
	for _, goos := range []string{"linux", "darwin"} {
		cmd := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GOOS=%s go list -deps = %v", goos, err)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			switch {
			case dep == "github.com/ckpt/ckpt/rootfs", dep == "github.com/ckpt/ckpt/format":
			case strings.HasPrefix(dep, "golang.org/x/sys/"):
			case dep == "github.com/ckpt/ckpt/format/criuimg", dep == "github.com/checkpoint-restore/go-criu/v8/magic",
				dep == "github.com/ckpt/ckpt/internal/fileio",
				dep == "github.com/klauspost/compress", strings.HasPrefix(dep, "github.com/klauspost/compress/"):
				// format's own dependencies
			default:
				t.Errorf("GOOS=%s: rootfs depends on %s", goos, dep)
			}
		}
	}
}
