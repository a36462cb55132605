package format

import (
	"bytes"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt/ckpt/internal/fileio"
)

// frameSize is how many uncompressed bytes of the tar stream after the
// manifest a Writer puts in each compression frame (zstd frame, gzip
// member); the last frame holds the rest. The frames are compressed
// independently, so a Writer compresses them in parallel (and a reader
// could decompress them in parallel). Where the stream is cut depends on
// nothing but this size, so the output does not depend on
// WriterOptions.Concurrency, and a body that fits in one frame is
// compressed exactly as one stream. At 8 MiB a frame restarts the
// compressor's history seldom enough that the archive is about as small
// as one stream's (1 GiB of the bench's pages: 0.001% larger; 4 MiB
// frames cost twice that), and a Writer holds up to Concurrency+3 frames
// and the compressed copies of those not stored, and a lookahead
// (lookahead.go) one more and at most lookaheadBudget of compressed ones.
const frameSize = 8 << 20

// frameWriter compresses what is written to it in frames of frameSize
// bytes, up to n at a time, and writes them to w in order. It is used by
// one goroutine; the compression runs in n others.
type frameWriter struct {
	w     io.Writer
	codec *codec
	level int

	fill     *frameJob   // the frame being filled
	inflight []*frameJob // compressing, oldest first; at most n+1
	free     []*frameJob // done with, for reuse
	jobs     chan *frameJob
	workers  sync.WaitGroup
	n        int
	closed   bool
	taken    int64    // bytes of tar stream taken so far
	frees    []func() // free the frame buffers (fileio.HugeBuffer), at Close
	// err is the first error; every later call returns it.
	err error
}

type frameJob struct {
	in     []byte
	out    []byte // in compressed, unless stored
	stored bool   // in is written by the codec's writeStored
	// inserted is a frame compressed elsewhere (insert), whose buffers
	// are not the frameWriter's to reuse.
	inserted bool
	err      error
	done     chan struct{}
}

func newFrameWriter(w io.Writer, c *codec, level, n int) *frameWriter {
	f := &frameWriter{w: w, codec: c, level: level, n: max(1, n), jobs: make(chan *frameJob)}
	for range f.n {
		f.workers.Go(f.work)
	}
	return f
}

// work compresses frames with an encoder of its own.
func (f *frameWriter) work() {
	var enc *frameEncoder
	for j := range f.jobs {
		if enc == nil {
			enc, j.err = newFrameEncoder(f.codec, f.level)
		}
		if j.err == nil {
			j.err = enc.encode(j)
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
		f.taken += int64(k)
		p = p[k:]
		if len(f.fill.in) == frameSize {
			if f.dispatch(); f.err != nil {
				return n, f.err
			}
		}
	}
	return n, nil
}

// fillFrom writes the next n bytes of tar stream from r at off, read
// straight into the frame buffers, and returns their CRC-32C. A short read
// is io.ErrUnexpectedEOF, and leaves the frameWriter unusable.
func (f *frameWriter) fillFrom(r io.ReaderAt, off, n int64) (uint32, error) {
	var crc uint32
	for n > 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.fill == nil {
			if f.fill, f.err = f.job(); f.err != nil {
				return 0, f.err
			}
		}
		in := f.fill.in
		k := int(min(n, int64(frameSize-len(in))))
		b := in[len(in) : len(in)+k]
		got, err := r.ReadAt(b, off)
		if got < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			f.err = err
			return 0, err
		}
		crc = crc32.Update(crc, crcTable, b)
		f.fill.in = in[:len(in)+k]
		f.taken += int64(k)
		off, n = off+int64(k), n-int64(k)
		if len(f.fill.in) == frameSize {
			if f.dispatch(); f.err != nil {
				return 0, f.err
			}
		}
	}
	return crc, nil
}

// newJob returns a frame buffer (j.in, frameSize bytes) to be filled
// with the next frameSize bytes of tar stream, elsewhere, and handed over
// with commitJob. Like Write it may first write out the oldest frame.
func (f *frameWriter) newJob() (*frameJob, error) {
	if f.err != nil {
		return nil, f.err
	}
	var j *frameJob
	if j, f.err = f.job(); f.err != nil {
		return nil, f.err
	}
	j.in = j.in[:frameSize]
	return j, nil
}

// commitJob compresses j, from newJob and now full, as the next frame.
// The stream must be at a frame boundary.
func (f *frameWriter) commitJob(j *frameJob) error {
	if f.err != nil {
		return f.err
	}
	if !f.atBoundary() {
		return errorf(ErrCompression, "frame committed off a frame boundary")
	}
	f.fill = j
	f.taken += frameSize
	f.dispatch()
	return f.err
}

// atBoundary reports whether the stream is at a frame boundary, with no
// frame being filled.
func (f *frameWriter) atBoundary() bool {
	return f.taken%frameSize == 0 && (f.fill == nil || len(f.fill.in) == 0)
}

// insert writes, as the next frame, out: frameSize bytes of tar stream
// that a frameEncoder compressed elsewhere (not stored). The stream must
// be at a frame boundary.
func (f *frameWriter) insert(out []byte) error {
	if f.err != nil {
		return f.err
	}
	if !f.atBoundary() {
		return errorf(ErrCompression, "frame inserted off a frame boundary")
	}
	if len(f.inflight) > f.n {
		if f.err = f.writeOldest(); f.err != nil {
			return f.err
		}
	}
	j := &frameJob{out: out, inserted: true, done: make(chan struct{})}
	close(j.done)
	f.inflight = append(f.inflight, j)
	f.taken += frameSize
	f.err = f.writeReady()
	return f.err
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
	b, free := fileio.HugeBuffer(frameSize)
	f.frees = append(f.frees, free)
	return &frameJob{in: b[:0], done: make(chan struct{})}, nil
}

// dispatch hands the frame being filled to the compressing goroutines,
// then writes out the frames done (writeReady); an error is in f.err.
func (f *frameWriter) dispatch() {
	j := f.fill
	f.fill = nil
	f.inflight = append(f.inflight, j)
	f.jobs <- j
	f.err = f.writeReady()
}

// writeReady writes out the oldest frames that are done, without waiting
// for any: the file's writes start with the first frame, not when a
// buffer is needed again.
func (f *frameWriter) writeReady() error {
	for len(f.inflight) > 0 {
		select {
		case <-f.inflight[0].done:
		default:
			return nil
		}
		if err := f.writeOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (f *frameWriter) writeOldest() error {
	j := f.inflight[0]
	<-j.done
	f.inflight = f.inflight[1:]
	if j.err != nil {
		return j.err
	}
	if j.stored {
		if err := f.codec.writeStored(f.w, j.in); err != nil {
			return err
		}
	} else if _, err := f.w.Write(j.out); err != nil {
		return err
	}
	if !j.inserted {
		f.free = append(f.free, j)
	}
	return nil
}

// Close compresses and writes what is left, and stops the workers. It
// does not close w.
func (f *frameWriter) Close() error {
	if f.closed {
		return f.err
	}
	f.closed = true
	if f.err == nil && f.fill != nil && len(f.fill.in) > 0 {
		f.dispatch()
	}
	close(f.jobs)
	for f.err == nil && len(f.inflight) > 0 {
		f.err = f.writeOldest()
	}
	f.workers.Wait()
	for _, free := range f.frees {
		free()
	}
	f.frees = nil
	if f.err != nil {
		return f.err
	}
	f.err = ErrWriteAfterClose
	return nil
}

// frameEncoder compresses one frame at a time with a codec's writer
// (comp), or stores it when probe says it would not compress: j.stored
// set, for the codec's writeStored to write (zstd raw blocks), or a frame
// of its storer (store: a gzip member of stored deflate blocks). Storing
// costs a copy; compressing random bytes costs several, and gains nothing
// (zstd stores such blocks anyway). A frame is the same bytes as a
// streaming encoder given the whole frame would write.
type frameEncoder struct {
	comp, store frameCompressor
	// stores: the codec stores frames (writeStored or a storer), so the
	// probe runs.
	stores bool
	// probe is zstd's fastest level whatever the codec: a measure of
	// whether the frame compresses, not its compression.
	probe    *zstd.Encoder
	sample   []byte
	probeOut []byte
}

func newFrameEncoder(c *codec, level int) (*frameEncoder, error) {
	if c.newWriter == nil {
		return nil, errorf(ErrCompression, "%s cannot be cut in frames", c.name)
	}
	comp, err := c.newWriter(io.Discard, level)
	if err != nil {
		return nil, err
	}
	f := &frameEncoder{comp: comp, stores: c.writeStored != nil || c.newStorer != nil}
	if c.newStorer != nil {
		if f.store, err = c.newStorer(); err != nil {
			return nil, err
		}
	}
	if f.probe, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)); err != nil {
		return nil, err
	}
	return f, nil
}

const (
	// probeSamples samples of probeSample bytes each, spread evenly over
	// a frame, are what the probe compresses.
	probeSamples = 16
	probeSample  = 4 << 10
	// probeMin is the smallest frame the probe looks at; smaller ones
	// are compressed.
	probeMin = 4 * probeSamples * probeSample
)

func (e *frameEncoder) encode(j *frameJob) error {
	r := e.comp
	j.stored = false
	if e.stores && e.incompressible(j.in) {
		if e.store == nil {
			j.stored = true
			return nil
		}
		r = e.store
	}
	var err error
	j.out, err = writeFrame(r, j.out[:0], j.in)
	return err
}

// incompressible reports whether p looks as if it would not compress:
// probeSamples samples spread evenly over it, compressed together at
// zstd's fastest level, shrink by less than 1%. Only data that is random
// throughout passes (encrypted or compressed content, random bytes); a
// frame of which a sixteenth or more compresses fails it.
func (e *frameEncoder) incompressible(p []byte) bool {
	if len(p) < probeMin {
		return false
	}
	s := e.sample[:0]
	for i := range probeSamples {
		off := (len(p) - probeSample) * i / (probeSamples - 1)
		s = append(s, p[off:off+probeSample]...)
	}
	e.sample = s
	return e.incompressibleSamples(s)
}

// incompressibleSamples is incompressible given the samples.
func (e *frameEncoder) incompressibleSamples(s []byte) bool {
	e.probeOut = e.probe.EncodeAll(s, e.probeOut[:0])
	return len(e.probeOut) >= len(s)-len(s)/100
}

// writeFrame writes p as one frame with r, appending it to dst.
func writeFrame(r frameCompressor, dst, p []byte) ([]byte, error) {
	if cap(dst) == 0 {
		// Room for p compressed or stored, so that the buffer does not
		// grow.
		dst = make([]byte, 0, len(p)+len(p)/64+1024)
	}
	b := bytes.NewBuffer(dst)
	r.Reset(b)
	if _, err := r.Write(p); err != nil {
		return dst, err
	}
	if err := r.Close(); err != nil {
		return dst, err
	}
	return b.Bytes(), nil
}
