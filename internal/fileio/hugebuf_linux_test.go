package fileio

import "testing"

// TestHugeBufferAligned checks that HugeBuffer's and HugeBuffers'
// buffers start on a huge-page boundary, where the kernel can back them
// with huge pages, and that HugeBuffers' are apart and of the size asked.
func TestHugeBufferAligned(t *testing.T) {
	t.Parallel()
	for _, n := range []int{4096, 8 << 20, 8<<20 + 12345} {
		b, free := HugeBuffer(n)
		if r := uintptrOf(b) % hugePage; r != 0 {
			t.Errorf("HugeBuffer(%d) starts %d bytes past a huge-page boundary", n, r)
		}
		free()
	}
	bufs, free, err := HugeBuffers(3, directBufSize)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	for i, b := range bufs {
		if len(b) != directBufSize || cap(b) != directBufSize {
			t.Errorf("buffer %d: len %d cap %d", i, len(b), cap(b))
		}
		if r := uintptrOf(b) % directAlign; r != 0 {
			t.Errorf("buffer %d starts %d bytes past an O_DIRECT alignment", i, r)
		}
		b[0], b[len(b)-1] = 1, 2
	}
	if r := uintptrOf(bufs[0]) % hugePage; r != 0 {
		t.Errorf("HugeBuffers starts %d bytes past a huge-page boundary", r)
	}
}
