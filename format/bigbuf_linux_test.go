package format

import "testing"

// TestBigBufAligned checks that bigBuf's buffers start on a huge-page
// boundary, where the kernel can back them with huge pages.
func TestBigBufAligned(t *testing.T) {
	t.Parallel()
	for _, n := range []int{4096, frameSize, frameSize + 12345} {
		b, free := bigBuf(n)
		if r := uintptrOf(b) % hugePage; r != 0 {
			t.Errorf("bigBuf(%d) starts %d bytes past a huge-page boundary", n, r)
		}
		free()
	}
}
