package incremental

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package engine-independent: of this module it
// may import only format and what format imports (internal/fileio); never
// engine, cmd, inspect, rootfs or volumes (the engine imports this
// package).
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/ckpt/ckpt/"
	for _, p := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(p, module)
		switch {
		case !ours, rest == "incremental":
		case rest == "format", strings.HasPrefix(rest, "format/"), rest == "internal/fileio":
		default:
			t.Errorf("incremental depends on %s", p)
		}
	}
}
