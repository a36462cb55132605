package fileio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// directBufSize is the size of each of a DirectWriter's and a
// directReader's buffers, directWriteBuffers how many a DirectWriter
// fills ahead of the disk (with fewer the writer waits on it),
// directWriteDepth how many it writes at a time, and directAlign the
// alignment O_DIRECT needs of file offsets, lengths and memory (the
// largest logical block size in use).
const (
	directBufSize      = 4 << 20
	directWriteBuffers = 4
	directWriteDepth   = 2
	directAlign        = 4096
)

// DirectWriter writes a new file with O_DIRECT, from aligned buffers,
// directWriteDepth of them written at a time while the next ones fill,
// so that what it writes takes no page cache (pages the system has not
// used lately are dear to fault in), and the fsync after it has only
// metadata left. Two writes at a time rather than one give the disk the
// next write while the goroutine that finished one waits for a core.
//
// Its file must be new and written from offset 0. Finish writes the last
// buffer, padded to directAlign, and truncates the file to what was
// written. WriteAt (an archive's manifest over its reservation) goes
// through the page cache for what was already handed to the disk and
// into the buffer for the rest. A file system that takes the O_DIRECT
// open but refuses the first write makes it fall back to plain writes.
type DirectWriter struct {
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

// NewDirectWriter opens f's file again with O_DIRECT; progress, if not
// nil, is told the bytes written so far after each Write, and ctx stops
// the writes. It fails where the file system does not support O_DIRECT;
// the caller then writes through the page cache. Release frees what it
// holds.
func NewDirectWriter(ctx context.Context, f *os.File, progress func(int64)) (*DirectWriter, error) {
	fd, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), syscall.O_WRONLY|syscall.O_DIRECT|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &DirectWriter{f: f, fd: fd, ctx: ctx, progress: progress,
		queue: make(chan directWrite, directWriteBuffers), free: make(chan int, directWriteBuffers), done: make(chan struct{})}
	if d.bufs, d.unmap, err = HugeBuffers(directWriteBuffers, directBufSize); err != nil {
		close(d.done)
		d.Release()
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
// to directWriteDepth at a time.
func (d *DirectWriter) writer(queue <-chan directWrite) {
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
func (d *DirectWriter) write(w directWrite, plain bool) bool {
	b, off := d.bufs[w.buf][:w.n], w.off
	for d.werr.Load() == nil && len(b) > 0 {
		var k int
		var err error
		if plain {
			k, err = d.f.WriteAt(b, off)
		} else if k, err = syscall.Pwrite(d.fd, b, off); errors.Is(err, syscall.EINVAL) && off == 0 {
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

// Write appends p to the file.
func (d *DirectWriter) Write(p []byte) (int, error) {
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

// Written returns the bytes written so far.
func (d *DirectWriter) Written() int64 { return d.n }

// flush queues the first n bytes of the current buffer (n a multiple of
// directAlign) and takes a free one, waiting for one if need be.
func (d *DirectWriter) flush(n int) {
	d.queue <- directWrite{buf: d.cur, n: n, off: d.off}
	d.off += int64(n)
	d.cur, d.fill = <-d.free, 0
}

// barrier waits until every queued buffer is written and returns the
// first write error.
func (d *DirectWriter) barrier() error {
	ack := make(chan error)
	d.queue <- directWrite{ack: ack}
	return <-ack
}

// WriteAt writes p at off, within what was written.
func (d *DirectWriter) WriteAt(p []byte, off int64) (int, error) {
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
func (d *DirectWriter) Finish() error {
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

// Release waits for the writes still queued and frees the buffers and
// the descriptor. It does not close f.
func (d *DirectWriter) Release() {
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
		_ = syscall.Close(d.fd)
		d.fd = -1
	}
}

// directReader reads a file with O_DIRECT, directReadAhead buffers of
// directBufSize ahead of its reader, so that a file not in the page
// cache is read without filling it: the pages its reader needs next are
// then the only new ones (see DirectWriter for why that matters).
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

// NewSequentialReader returns a reader of f's content (size bytes) from
// offset 0, and the function that releases it: with O_DIRECT when less
// than half of the file's pages are in the page cache, else f itself
// (reading cached pages costs a copy and nothing more).
func NewSequentialReader(f *os.File, size int64) (io.Reader, func()) {
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
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 1
	}
	defer syscall.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 1
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return float64(n) / float64(len(vec))
}

func newDirectReader(f *os.File) (*directReader, error) {
	fd, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), syscall.O_RDONLY|syscall.O_DIRECT|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &directReader{fd: fd, chunks: make(chan directChunk, directReadAhead), free: make(chan []byte, directReadAhead),
		stop: make(chan struct{}), done: make(chan struct{})}
	if d.bufs, d.unmap, err = HugeBuffers(directReadAhead, directBufSize); err != nil {
		syscall.Close(fd)
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
		n, err := d.fill(b, off)
		off += int64(n)
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

// fill reads the file from off into b, up to its end; io.EOF if it
// reached the end of the file.
func (d *directReader) fill(b []byte, off int64) (int, error) {
	n := 0
	var err error
	for n < len(b) {
		var k int
		k, err = syscall.Pread(d.fd, b[n:], off+int64(n))
		if errors.Is(err, syscall.EINTR) {
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
	if err == nil && n < len(b) {
		err = io.EOF
	}
	return n, err
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
	_ = syscall.Close(d.fd)
}
