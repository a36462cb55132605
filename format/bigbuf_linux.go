package format

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on the architectures
// ckpt runs on.
const hugePage = 2 << 20

// bigBuf returns n zeroed bytes outside the Go heap, backed by transparent
// huge pages where the kernel has them for madvise(2) (Debian's default),
// and the function that frees them; nothing may use the bytes after it.
// A frame buffer (8 MiB) of the heap is touched first by the read that
// fills it: 2048 page faults. On the machine measured (bench/RESULTS.md,
// a VM) an 8 MiB read from the page cache into a new heap buffer took
// 1.6–50 ms, typically ~6 ms, and 1.3–2.5 ms into a new buffer of huge
// pages (6 tries each); at the start of an archive's write, with both
// cores busy, the first frames' reads took 18–36 ms. Where the mapping
// fails it falls back to the heap.
func bigBuf(n int) ([]byte, func()) {
	m, err := syscall.Mmap(-1, 0, n+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), func() {}
	}
	// The first huge-page boundary in m; the kernel only puts huge pages
	// on aligned 2 MiB of a mapping.
	var skip int
	if rem := int(uintptrOf(m) % hugePage); rem != 0 {
		skip = hugePage - rem
	}
	b := m[skip : skip+n : skip+n]
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	return b, func() { _ = syscall.Munmap(m) }
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
