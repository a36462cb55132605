package fileio

import (
	"errors"
	"testing"
)

// TestReadBoundedUnderstated: a regular file whose size understates its
// content (procfs says 0 bytes) is read no further than the limit and
// one byte, and refused.
func TestReadBoundedUnderstated(t *testing.T) {
	t.Parallel()
	b, err := ReadBounded("/proc/self/status", 16)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadBounded(/proc/self/status, 16) = %d bytes, %v, want ErrTooLarge", len(b), err)
	}
	if want := "read /proc/self/status: more than 16 bytes"; err.Error() != want {
		t.Errorf("ReadBounded(/proc/self/status, 16) = %q, want %q", err, want)
	}
}
