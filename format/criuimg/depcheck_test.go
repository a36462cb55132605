package criuimg

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// allowedDeps are the only packages outside the standard library that
// criuimg may import: go-criu's generated table of CRIU magics (pure Go, no
// protobuf runtime), so the package and the format verifier above it stay
// free of protobuf and os/exec.
var allowedDeps = map[string]bool{
	"github.com/checkpoint-restore/go-criu/v8/magic": true,
}

func TestDependencies(t *testing.T) {
	goTool := testutil.RequireTool(t, "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/ckpt/ckpt/format/criuimg" && !allowedDeps[p] {
			t.Errorf("criuimg depends on %s, not in the allow-list", p)
		}
	}
	out, err = exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "os/exec" {
			t.Errorf("criuimg depends on %s", p)
		}
	}
}
