package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreHint checks the advice for CRIU's refusal of an open file
// whose size changed after the checkpoint, and none for other failures.
func TestRestoreHint(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "restore.log")
	if err := os.WriteFile(log, []byte("(00.051234)      1: Error (criu/files-reg.c:2122): File data/counter has bad size 12 (expect 11)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if h := restoreHint(log); !strings.Contains(h, "changed size after the checkpoint") {
		t.Errorf("restoreHint(bad size) = %q", h)
	}
	if err := os.WriteFile(log, []byte("(00.01) Error (criu/cr-restore.c:1): something else\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if h := restoreHint(log); h != "" {
		t.Errorf("restoreHint(other) = %q, want none", h)
	}
	if h := restoreHint(filepath.Join(dir, "missing")); h != "" {
		t.Errorf("restoreHint(no log) = %q, want none", h)
	}
}
