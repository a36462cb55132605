package fileio

import (
	"bytes"
	"testing"
)

// TestHugeBuffer checks HugeBuffer's buffers: the length asked for,
// zeroed, writable to the end (hugebuf_linux_test.go checks the
// alignment).
func TestHugeBuffer(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 8 << 20, 8<<20 + 4096} {
		b, free := HugeBuffer(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("HugeBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		if bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) {
			t.Fatalf("HugeBuffer(%d) is not zeroed", n)
		}
		b[0], b[n-1] = 1, 2
		free()
	}
}
