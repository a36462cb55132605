package fileio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextReader: reads pass through until the context is done, then
// fail with its error.
func TestContextReader(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	r := ContextReader(ctx, strings.NewReader("abcdef"))
	b := make([]byte, 3)
	if n, err := r.Read(b); n != 3 || err != nil || string(b) != "abc" {
		t.Fatalf("Read = %d %q, %v", n, b[:n], err)
	}
	cancel()
	if n, err := r.Read(b); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel = %d, %v, want context.Canceled", n, err)
	}
}

// TestReadBounded: a file up to the limit is read whole; a larger one, a
// directory or a missing file is an error of its kind.
func TestReadBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadBounded(name, 5); err != nil || string(b) != "12345" {
		t.Errorf("ReadBounded(5 bytes, 5) = %q, %v", b, err)
	}
	if _, err := ReadBounded(name, 4); !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadBounded(5 bytes, 4) = %v, want ErrTooLarge", err)
	} else if want := "read " + name + ": 5 bytes, more than 4"; err.Error() != want {
		t.Errorf("ReadBounded(5 bytes, 4) = %q, want %q", err, want)
	}
	if _, err := ReadBounded(dir, 4); !errors.Is(err, ErrNotRegular) || errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadBounded(directory) = %v, want ErrNotRegular", err)
	}
	if _, err := ReadBounded(filepath.Join(dir, "missing"), 4); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadBounded(missing) = %v, want ErrNotExist", err)
	}
}

// TestReadTail: the last n bytes of a longer file, a shorter file whole.
func TestReadTail(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(name, []byte("line 1\nline 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int64]string{7: "line 2\n", 100: "line 1\nline 2\n", 0: ""} {
		if b, err := ReadTail(name, n); err != nil || string(b) != want {
			t.Errorf("ReadTail(%d) = %q, %v, want %q", n, b, err, want)
		}
	}
	if _, err := ReadTail(filepath.Join(t.TempDir(), "none"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadTail(missing) = %v, want ErrNotExist", err)
	}
}
