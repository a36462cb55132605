package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directBufSize is the size of each of a directWriter's two buffers, and
// directAlign the alignment O_DIRECT needs of file offsets, lengths and
// memory (the largest logical block size in use).
const (
	directBufSize = 4 << 20
	directAlign   = 4096
)

// directWriter writes the archive to its file with O_DIRECT, from two
// aligned buffers: one fills while the other is written. The archive then
// takes no page cache: on the machine measured (bench/RESULTS.md), pages
// the guest had not used lately cost ~3 s per GiB on first touch, and
// 0.5 GB of archive through the page cache cost 1–2 s of system time
// where O_DIRECT cost 0.2 s. The fsync after it has only metadata left.
//
// Its file must be new and written from offset 0. Finish writes the last
// buffer, padded to directAlign, and truncates the file to what was
// written. WriteAt (the manifest over its reservation) goes through the
// page cache for what was already written and into the buffer for the
// rest. A file system that refuses O_DIRECT makes it fall back to plain
// writes.
type directWriter struct {
	f        *os.File
	fd       int // O_DIRECT descriptor of f's file
	ctx      context.Context
	progress func(int64)

	bufs    [2][]byte
	cur     int   // the buffer being filled
	fill    int   // bytes in it
	off     int64 // file offset of its first byte
	pending chan error
	busy    bool // the other buffer is being written
	plain   bool // O_DIRECT was refused: pwrite through f
	n       int64
	err     error
}

// newDirectWriter opens f's file again with O_DIRECT. It fails where the
// file system does not support O_DIRECT; the caller then writes through
// the page cache.
func newDirectWriter(ctx context.Context, f *os.File, progress func(int64)) (*directWriter, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := &directWriter{f: f, fd: fd, ctx: ctx, progress: progress, pending: make(chan error, 1)}
	for i := range d.bufs {
		b, err := unix.Mmap(-1, 0, directBufSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			d.release()
			return nil, err
		}
		d.bufs[i] = b
	}
	return d, nil
}

func (d *directWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		k := copy(d.bufs[d.cur][d.fill:], p)
		d.fill += k
		n += k
		p = p[k:]
		if d.fill == directBufSize {
			if d.err = d.flush(directBufSize); d.err != nil {
				return n, d.err
			}
		}
	}
	d.n += int64(n)
	if d.progress != nil {
		d.progress(d.n)
	}
	return n, nil
}

// flush starts writing the first n bytes of the current buffer (n a
// multiple of directAlign) and switches to the other buffer, once that
// one's write is done.
func (d *directWriter) flush(n int) error {
	if err := d.wait(); err != nil {
		return err
	}
	b, off := d.bufs[d.cur][:n], d.off
	d.busy = true
	go func() { d.pending <- d.pwrite(b, off) }()
	d.off += int64(n)
	d.cur ^= 1
	d.fill = 0
	return nil
}

func (d *directWriter) pwrite(b []byte, off int64) error {
	for len(b) > 0 {
		var k int
		var err error
		if d.plain {
			k, err = d.f.WriteAt(b, off)
		} else {
			k, err = unix.Pwrite(d.fd, b, off)
			if errors.Is(err, unix.EINVAL) && off == 0 {
				// The file system took the open, not the write.
				d.plain = true
				continue
			}
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: d.f.Name(), Err: err}
		}
		b, off = b[k:], off+int64(k)
	}
	return nil
}

// wait waits for the other buffer's write.
func (d *directWriter) wait() error {
	if !d.busy {
		return nil
	}
	d.busy = false
	return <-d.pending
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
	if err := d.wait(); err != nil {
		d.err = err
		return 0, err
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
	if d.err = d.flush(size); d.err == nil {
		d.err = d.wait()
	}
	if d.err == nil {
		d.err = d.f.Truncate(d.n)
	}
	return d.err
}

// release waits for a write still running and frees the buffers and the
// descriptor.
func (d *directWriter) release() {
	_ = d.wait()
	for i, b := range d.bufs {
		if b != nil {
			_ = unix.Munmap(b)
			d.bufs[i] = nil
		}
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
	for range directReadAhead {
		b, err := unix.Mmap(-1, 0, directBufSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			d.close()
			return nil, err
		}
		d.bufs = append(d.bufs, b)
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
	for _, b := range d.bufs {
		_ = unix.Munmap(b)
	}
	d.bufs = nil
	_ = unix.Close(d.fd)
}
