package fileio

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on the architectures
// ckpt runs on.
const hugePage = 2 << 20

// HugeBuffer returns n zeroed bytes outside the Go heap, backed by
// transparent huge pages where the kernel has them for madvise(2)
// (Debian's default), and the function that frees them; nothing may use
// the bytes after it. A buffer of small pages takes a page fault per
// 4 KiB on its first write, which a read that fills a new 8 MiB frame
// buffer pays 2048 times. Where the mapping fails it falls back to the
// heap.
func HugeBuffer(n int) ([]byte, func()) {
	b, free, err := hugeMap(n)
	if err != nil {
		return make([]byte, n), func() {}
	}
	return b, free
}

// HugeBuffers returns k buffers of size bytes each, as HugeBuffer's
// (aligned to a huge page, size apart), and the function that frees them
// all. It fails where the mapping fails: O_DIRECT needs memory aligned to
// the logical block size, which the heap does not promise.
func HugeBuffers(k, size int) ([][]byte, func(), error) {
	all, free, err := hugeMap(k * size)
	if err != nil {
		return nil, nil, err
	}
	bufs := make([][]byte, k)
	for i := range bufs {
		bufs[i] = all[i*size : (i+1)*size : (i+1)*size]
	}
	return bufs, free, nil
}

// hugeMap maps n bytes starting on a huge-page boundary (the kernel only
// puts huge pages on aligned 2 MiB of a mapping) and advises huge pages.
func hugeMap(n int) ([]byte, func(), error) {
	m, err := syscall.Mmap(-1, 0, n+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	var skip int
	if rem := int(uintptrOf(m) % hugePage); rem != 0 {
		skip = hugePage - rem
	}
	b := m[skip : skip+n : skip+n]
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	return b, func() { _ = syscall.Munmap(m) }, nil
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
