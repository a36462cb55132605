package inspect

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the dependency direction: inspect may use format
// and go-criu's image types, never the engine, rootfs, volumes or a
// command.
func TestDependencies(t *testing.T) {
	for _, pkg := range []string{".", "../cmd/ckptinspect", "../fuzz"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range []string{"github.com/ckpt/ckpt/engine", "github.com/ckpt/ckpt/rootfs", "github.com/ckpt/ckpt/volumes", "github.com/ckpt/ckpt/cmd/ckpt"} {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
			if pkg == "../fuzz" && strings.HasPrefix(dep, "github.com/ckpt/ckpt/inspect") {
				t.Errorf("fuzz depends on %s: fuzz -> format only", dep)
			}
		}
	}
}
