package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directBufSize is the size of each of a directWriter's and a
// directReader's buffers, directWriteBuffers how many a directWriter fills
// ahead of the disk (fewer left the writer waiting on it: 0.96 s instead
// of 0.84 s for 1 GiB of images with two), and directAlign the alignment
// O_DIRECT needs of file offsets, lengths and memory (the largest logical
// block size in use).
const (
	directBufSize      = 4 << 20
	directWriteBuffers = 4
	directWriteDepth   = 2
	directAlign        = 4096
)

// directWriter writes the archive to its file with O_DIRECT, from aligned
// buffers, directWriteDepth of them written at a time while the next ones
// fill. The archive then takes no page cache: on the machine measured
// (bench/RESULTS.md), pages the guest had not used lately cost ~3 s per
// GiB on first touch: writing the 0.54 GB archive of 1 GiB of images
// took 0.4–2.4 s of system time through the page cache and 0.15–0.35 s
// with O_DIRECT. The fsync after it has only metadata left. Two writes
// at a time rather than one: `write_archive` 0.50–0.66 s (median 0.55)
// against 0.53–0.70 s (0.58), 6 alternating exports of 1 GiB each; the
// disk then has the next write while the goroutine that finished one
// waits for a core.
//
// Its file must be new and written from offset 0. Finish writes the last
// buffer, padded to directAlign, and truncates the file to what was
// written. WriteAt (the manifest over its reservation) goes through the
// page cache for what was already handed to the disk and into the buffer
// for the rest. A file system that takes the O_DIRECT open but refuses
// the first write makes it fall back to plain writes.
type directWriter struct {
	f        *os.File
	fd       int // O_DIRECT descriptor of f's file
	ctx      context.Context
	progress func(int64)

	bufs  [][]byte
	unmap func() // frees bufs
	cur   int    // the buffer being filled
	fill  int    // bytes in it
	off   int64  // file offset of its first byte
	queue chan directWrite
	free  chan int
	done  chan struct{} // the writing goroutine ended
	werr  atomic.Pointer[error]
	n     int64
	err   error
	// released: the queue is closed.
	released bool
}

// directWrite is a buffer to write, or with ack set a barrier: the
// writing goroutine sends its first error (or nil) once every write
// queued before it is done.
type directWrite struct {
	buf, n int
	off    int64
	ack    chan error
}

// hugePage is the size of a transparent huge page on the architectures
// ckpt runs on.
const hugePage = 2 << 20

// directBuffers maps k buffers of directBufSize, aligned to a huge page
// and backed by transparent huge pages where the kernel has them for
// madvise(2) (Debian's default), and returns them with the function that
// unmaps them. The first write into a buffer of small pages takes a page
// fault per 4 KiB: on the machine measured (a VM, bench/RESULTS.md) an
// 8 MiB read into new memory took 1.6–50 ms, typically ~6 ms, against
// 1.3–2.5 ms with huge pages (format's bigBuf, which frame buffers use,
// does the same).
func directBuffers(k int) ([][]byte, func(), error) {
	m, err := unix.Mmap(-1, 0, k*directBufSize+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	skip := 0
	if rem := int(uintptr(unsafe.Pointer(&m[0])) % hugePage); rem != 0 {
		skip = hugePage - rem
	}
	all := m[skip : skip+k*directBufSize]
	_ = unix.Madvise(all, unix.MADV_HUGEPAGE)
	bufs := make([][]byte, k)
	for i := range bufs {
		bufs[i] = all[i*directBufSize : (i+1)*directBufSize : (i+1)*directBufSize]
	}
	return bufs, func() { _ = unix.Munmap(m) }, nil
}

// newDirectWriter opens f's file again with O_DIRECT. It fails where the
// file system does not support O_DIRECT; the caller then writes through
// the page cache.
func newDirectWriter(ctx context.Context, f *os.File, progress func(int64)) (*directWriter, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &directWriter{f: f, fd: fd, ctx: ctx, progress: progress,
		queue: make(chan directWrite, directWriteBuffers), free: make(chan int, directWriteBuffers), done: make(chan struct{})}
	if d.bufs, d.unmap, err = directBuffers(directWriteBuffers); err != nil {
		close(d.done)
		d.release()
		return nil, err
	}
	for i := 1; i < directWriteBuffers; i++ {
		d.free <- i
	}
	go d.writer(d.queue)
	return d, nil
}

// writer writes the queued buffers and hands them back: the first alone
// (it finds out whether the file system takes O_DIRECT writes), then up
// to directWriteDepth at a time, so that the disk has the next write
// while the goroutine that finished one waits for a core.
func (d *directWriter) writer(queue <-chan directWrite) {
	defer close(d.done)
	var (
		wg     sync.WaitGroup
		sem    = make(chan struct{}, directWriteDepth)
		plain  bool
		probed bool
	)
	for w := range queue {
		if w.ack != nil {
			wg.Wait()
			var err error
			if e := d.werr.Load(); e != nil {
				err = *e
			}
			w.ack <- err
			continue
		}
		if !probed {
			probed = true
			plain = d.write(w, false)
			d.free <- w.buf
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			d.write(w, plain)
			d.free <- w.buf
			<-sem
		})
	}
	wg.Wait()
}

// write writes w, through the page cache if plain, and reports whether
// later writes must be plain: the file system took the O_DIRECT open but
// refuses the first write. Its error, the first, is in werr; after one it
// writes nothing.
func (d *directWriter) write(w directWrite, plain bool) bool {
	b, off := d.bufs[w.buf][:w.n], w.off
	for d.werr.Load() == nil && len(b) > 0 {
		var k int
		var err error
		if plain {
			k, err = d.f.WriteAt(b, off)
		} else if k, err = unix.Pwrite(d.fd, b, off); errors.Is(err, unix.EINVAL) && off == 0 {
			plain = true
			continue
		}
		if err != nil {
			first := error(&os.PathError{Op: "write", Path: d.f.Name(), Err: err})
			d.werr.CompareAndSwap(nil, &first)
			break
		}
		b, off = b[k:], off+int64(k)
	}
	return plain
}

func (d *directWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	if e := d.werr.Load(); e != nil {
		d.err = *e
		return 0, d.err
	}
	n := 0
	for len(p) > 0 {
		k := copy(d.bufs[d.cur][d.fill:], p)
		d.fill += k
		n += k
		p = p[k:]
		if d.fill == directBufSize {
			d.flush(directBufSize)
		}
	}
	d.n += int64(n)
	if d.progress != nil {
		d.progress(d.n)
	}
	return n, nil
}

// flush queues the first n bytes of the current buffer (n a multiple of
// directAlign) and takes a free one, waiting for one if need be.
func (d *directWriter) flush(n int) {
	d.queue <- directWrite{buf: d.cur, n: n, off: d.off}
	d.off += int64(n)
	d.cur, d.fill = <-d.free, 0
}

// barrier waits until every queued buffer is written and returns the
// first write error.
func (d *directWriter) barrier() error {
	ack := make(chan error)
	d.queue <- directWrite{ack: ack}
	return <-ack
}

// WriteAt writes p at off, within what was written.
func (d *directWriter) WriteAt(p []byte, off int64) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	if off < 0 || off+int64(len(p)) > d.n {
		return 0, fmt.Errorf("write at %d: beyond the %d bytes written", off, d.n)
	}
	if d.err = d.barrier(); d.err != nil {
		return 0, d.err
	}
	n := 0
	if off < d.off {
		k := int(min(int64(len(p)), d.off-off))
		if _, err := d.f.WriteAt(p[:k], off); err != nil {
			return 0, err
		}
		n, p, off = k, p[k:], off+int64(k)
	}
	if len(p) > 0 {
		n += copy(d.bufs[d.cur][off-d.off:d.fill], p)
	}
	return n, nil
}

// Finish writes what is left and truncates the file to the bytes
// written. It does not sync.
func (d *directWriter) Finish() error {
	if d.err != nil {
		return d.err
	}
	size := (d.fill + directAlign - 1) &^ (directAlign - 1)
	clear(d.bufs[d.cur][d.fill:size])
	d.flush(size)
	if d.err = d.barrier(); d.err == nil {
		d.err = d.f.Truncate(d.n)
	}
	return d.err
}

// release waits for the writes still queued and frees the buffers and
// the descriptor.
func (d *directWriter) release() {
	if !d.released {
		d.released = true
		close(d.queue)
	}
	<-d.done
	d.bufs = nil
	if d.unmap != nil {
		d.unmap()
		d.unmap = nil
	}
	if d.fd >= 0 {
		_ = unix.Close(d.fd)
		d.fd = -1
	}
}

// directReader reads a file with O_DIRECT, directReadAhead buffers of
// directBufSize ahead of its reader, so that an archive not in the page
// cache is read without filling it: the pages its extraction and CRIU
// need are then the only new ones (see directWriter for why that
// matters).
type directReader struct {
	fd     int
	chunks chan directChunk
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	bufs   [][]byte
	unmap  func() // frees bufs
	cur    directChunk
	pos    int
	err    error
}

type directChunk struct {
	b   []byte // the buffer, its data first
	n   int
	err error
}

const directReadAhead = 3

// openArchiveReader returns a reader of f's content from offset 0: with
// O_DIRECT when less than half of the file's pages are in the page cache,
// else f itself (reading cached pages costs a copy and nothing more).
func openArchiveReader(f *os.File, size int64) (io.Reader, func()) {
	if size < directBufSize || cachedFraction(f, size) >= 0.5 {
		return f, func() {}
	}
	d, err := newDirectReader(f)
	if err != nil {
		return f, func() {}
	}
	return d, d.close
}

// cachedFraction returns the fraction of f's pages in the page cache
// (mincore over a mapping that is never touched); 1 if it cannot tell.
func cachedFraction(f *os.File, size int64) float64 {
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 1
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 1
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return float64(n) / float64(len(vec))
}

func newDirectReader(f *os.File) (*directReader, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &directReader{fd: fd, chunks: make(chan directChunk, directReadAhead), free: make(chan []byte, directReadAhead),
		stop: make(chan struct{}), done: make(chan struct{})}
	if d.bufs, d.unmap, err = directBuffers(directReadAhead); err != nil {
		unix.Close(fd)
		return nil, err
	}
	for _, b := range d.bufs {
		d.free <- b
	}
	go d.readAhead()
	return d, nil
}

// readAhead fills free buffers in file order until the end of the file,
// an error, or close.
func (d *directReader) readAhead() {
	defer close(d.done)
	var off int64
	for {
		var b []byte
		select {
		case b = <-d.free:
		case <-d.stop:
			return
		}
		n := 0
		var err error
		for n < len(b) {
			var k int
			k, err = unix.Pread(d.fd, b[n:], off+int64(n))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || k == 0 {
				break
			}
			n += k
			if n%directAlign != 0 {
				break // the end of the file
			}
		}
		off += int64(n)
		if err == nil && n < len(b) {
			err = io.EOF
		}
		select {
		case d.chunks <- directChunk{b: b, n: n, err: err}:
		case <-d.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (d *directReader) Read(p []byte) (int, error) {
	for d.pos == d.cur.n {
		if d.err != nil {
			return 0, d.err
		}
		if d.cur.b != nil {
			d.free <- d.cur.b
		}
		d.cur, d.pos = <-d.chunks, 0
		if d.cur.err != nil {
			d.err = d.cur.err
			if !errors.Is(d.err, io.EOF) {
				d.err = &os.PathError{Op: "read", Path: "archive", Err: d.err}
			}
		}
	}
	n := copy(p, d.cur.b[d.pos:d.cur.n])
	d.pos += n
	return n, nil
}

func (d *directReader) close() {
	close(d.stop)
	<-d.done
	d.bufs = nil
	d.unmap()
	_ = unix.Close(d.fd)
}
