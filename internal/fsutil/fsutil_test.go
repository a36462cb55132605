package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"one", "two, longer"} {
		if err := WriteFileAtomic(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Errorf("ReadFile() = %q, %v; want %q", got, err, content)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1 (no temporary files left)", len(ents))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Errorf("WriteFileAtomic(missing dir) succeeded")
	}
}

func TestTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(p, "checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(p, "restore")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("second TryLock() = %v, want ErrLocked naming pid and purpose", err)
	}
	l.Unlock()
	l.Unlock() // idempotent
	l2, err := TryLock(p, "restore")
	if err != nil {
		t.Fatalf("TryLock() after Unlock = %v", err)
	}
	l2.Unlock()
	w, err := WaitLock(p, "create")
	if err != nil {
		t.Fatal(err)
	}
	w.Unlock()
}
