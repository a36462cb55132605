package engine

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the import direction (cmd → engine → the
// libraries → format): engine may use the libraries below it but never
// a command, and of go-criu only the v8 packages it needs (v7's protos
// predate CRIU 4).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/ckpt/ckpt/cmd/"):
			t.Errorf("engine imports command package %s", dep)
		case strings.HasPrefix(dep, "github.com/checkpoint-restore/go-criu/") && !strings.HasPrefix(dep, "github.com/checkpoint-restore/go-criu/v8"):
			t.Errorf("engine imports %s; use go-criu v8", dep)
		}
	}
}
