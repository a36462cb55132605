package format

import (
	"bytes"
	"io"
	"sync"
)

// frameSize is how many uncompressed bytes of the tar stream after the
// manifest a Writer puts in each compression frame (zstd frame, gzip
// member); the last frame holds the rest. The frames are compressed
// independently, so a Writer compresses them in parallel (and a reader
// could decompress them in parallel). Where the stream is cut depends on
// nothing but this size, so the output does not depend on
// WriterOptions.Concurrency, and a body that fits in one frame is
// compressed exactly as one stream. 4 MiB compresses as well as one stream
// does (within 0.01% on CRIU pages) and as fast as smaller frames; a
// Writer holds up to Concurrency+2 frames and their compressed copies.
const frameSize = 4 << 20

// frameWriter compresses what is written to it in frames of frameSize
// bytes, up to n at a time, and writes them to w in order. It is used by
// one goroutine; the compression runs in n others.
type frameWriter struct {
	w     io.Writer
	c     Compression
	level int

	fill     *frameJob   // the frame being filled
	inflight []*frameJob // compressing, oldest first; at most n+1
	free     []*frameJob // done with, for reuse
	jobs     chan *frameJob
	workers  sync.WaitGroup
	n        int
	// err is the first error; every later call returns it.
	err error
}

type frameJob struct {
	in   []byte
	out  bytes.Buffer
	err  error
	done chan struct{}
}

func newFrameWriter(w io.Writer, c Compression, level, n int) *frameWriter {
	f := &frameWriter{w: w, c: c, level: level, n: max(1, n), jobs: make(chan *frameJob)}
	for range f.n {
		f.workers.Go(f.work)
	}
	return f
}

// work compresses frames with an encoder of its own.
func (f *frameWriter) work() {
	var enc frameEncoder
	for j := range f.jobs {
		j.out.Reset()
		if enc == nil {
			enc, j.err = newFrameEncoder(f.c, f.level)
		}
		if j.err == nil {
			j.err = enc.encode(&j.out, j.in)
		}
		close(j.done)
	}
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n := 0
	for len(p) > 0 {
		if f.fill == nil {
			if f.fill, f.err = f.job(); f.err != nil {
				return n, f.err
			}
		}
		k := copy(f.fill.in[len(f.fill.in):frameSize], p)
		f.fill.in = f.fill.in[:len(f.fill.in)+k]
		n += k
		p = p[k:]
		if len(f.fill.in) == frameSize {
			f.dispatch()
		}
	}
	return n, nil
}

// job returns an empty job, writing out the oldest frame first when n+1
// are in flight (n compressing, one waiting for a worker).
func (f *frameWriter) job() (*frameJob, error) {
	if len(f.inflight) > f.n {
		if err := f.writeOldest(); err != nil {
			return nil, err
		}
	}
	if k := len(f.free); k > 0 {
		j := f.free[k-1]
		f.free = f.free[:k-1]
		j.in, j.err, j.done = j.in[:0], nil, make(chan struct{})
		return j, nil
	}
	return &frameJob{in: make([]byte, 0, frameSize), done: make(chan struct{})}, nil
}

func (f *frameWriter) dispatch() {
	j := f.fill
	f.fill = nil
	f.inflight = append(f.inflight, j)
	f.jobs <- j
}

func (f *frameWriter) writeOldest() error {
	j := f.inflight[0]
	<-j.done
	f.inflight = f.inflight[1:]
	if j.err != nil {
		return j.err
	}
	if _, err := f.w.Write(j.out.Bytes()); err != nil {
		return err
	}
	f.free = append(f.free, j)
	return nil
}

// Close compresses and writes what is left, and stops the workers. It
// does not close w.
func (f *frameWriter) Close() error {
	if f.err == nil && f.fill != nil {
		f.dispatch()
	}
	close(f.jobs)
	for f.err == nil && len(f.inflight) > 0 {
		f.err = f.writeOldest()
	}
	f.workers.Wait()
	if f.err != nil {
		return f.err
	}
	f.err = ErrWriteAfterClose
	return nil
}

// frameEncoder compresses one frame at a time.
type frameEncoder interface {
	encode(w io.Writer, p []byte) error
}

func newFrameEncoder(c Compression, level int) (frameEncoder, error) {
	enc, err := newEncoder(c, io.Discard, level, 1)
	if err != nil {
		return nil, err
	}
	r, ok := enc.(resetter)
	if !ok {
		return nil, errorf(ErrCompression, "%s cannot be cut in frames", c)
	}
	return resetEncoder{r}, nil
}

type resetter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// resetEncoder writes a frame with a streaming encoder, the same bytes as
// a streaming encoder given the whole frame would.
type resetEncoder struct{ r resetter }

func (e resetEncoder) encode(w io.Writer, p []byte) error {
	e.r.Reset(w)
	if _, err := e.r.Write(p); err != nil {
		return err
	}
	return e.r.Close()
}
