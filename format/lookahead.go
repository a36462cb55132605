package format

import (
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ckpt/ckpt/internal/fileio"
)

// A member of a zstd archive read from a file, whose sum is known (SetSum,
// SetSumFunc), is written in two streams of work (Writer.copyFramed): in
// order, each whole frame of it is read straight into a frame buffer (no
// copy through archive/tar), its CRC-32C taken, and handed to the
// compressing goroutines, the frames going out in order; meanwhile a
// lookahead goroutine compresses frames further on, reading them itself,
// and the in-order pass puts those in place without reading them
// (frameWriter.insert). A frame that looks incompressible (the probe's
// samples, read alone) is left to the in-order pass, which stores it: the
// disk, not the CPU, sets the pace there, and the lookahead uses the CPU
// left idle. The frames are the same bytes either way (the same encoder,
// the same input), and the member's CRC-32C, checked against its Sum as
// before, is the frames' CRCs combined.
//
// The lookahead starts once the in-order pass has handed over its first
// frames (lookaheadFrom): started with the member, it took CPU that the
// first frames' reads needed while the disk waited for them.

// lookaheadMin is the fewest whole frames a member needs for a lookahead,
// and lookaheadFrom the frame the in-order pass reached when it starts it:
// until then the CPU goes to the first frames, and so the disk starts
// sooner.
const (
	lookaheadMin  = 4
	lookaheadFrom = 2
)

// lookaheadBudget bounds the compressed frames a lookahead keeps, and
// lookaheadAhead how many frames it runs ahead of the in-order pass.
const (
	lookaheadBudget = 64 << 20
	lookaheadAhead  = 64
)

type lookahead struct {
	src    io.ReaderAt
	first  int64 // source offset of frame 0
	frames int
	codec  *codec
	level  int

	mu        sync.Mutex
	cond      *sync.Cond
	reached   int // the in-order pass took the frames before this one
	working   int // the frame being compressed, or -1
	processed int // the lookahead is past the frames before this one
	results   map[int]*lookaheadFrame
	kept      int
	stopped   bool
	done      chan struct{}
}

type lookaheadFrame struct {
	out []byte // nil: stored, left to the in-order pass
	crc uint32
}

// startLookahead compresses, ahead of the in-order pass, frames of
// frameSize bytes of src, the k-th at offset first+k*frameSize, for k in
// (from, frames): the in-order pass reached frame from.
func startLookahead(src io.ReaderAt, first int64, frames, from int, c *codec, level int) *lookahead {
	l := &lookahead{src: src, first: first, frames: frames, codec: c, level: level, working: -1, reached: from,
		results: map[int]*lookaheadFrame{}, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run()
	return l
}

func (l *lookahead) run() {
	defer close(l.done)
	defer func() {
		l.mu.Lock()
		l.processed = l.frames
		l.cond.Broadcast()
		l.mu.Unlock()
	}()
	se, err := newFrameEncoder(l.codec, l.level)
	if err != nil {
		return // the in-order pass does every frame
	}
	in, free := fileio.HugeBuffer(frameSize)
	defer free()
	j := &frameJob{in: in}
	sample := make([]byte, probeSamples*probeSample)
	k := 1
	for {
		l.mu.Lock()
		for !l.stopped && k < l.frames && (k-l.reached >= lookaheadAhead || l.kept >= lookaheadBudget) {
			l.cond.Wait()
		}
		k = max(k, l.reached+1)
		if l.stopped || k >= l.frames {
			l.mu.Unlock()
			return
		}
		l.working = k
		l.mu.Unlock()

		r := l.frame(se, j, sample, k)
		l.mu.Lock()
		l.working, l.processed = -1, k+1
		if r != nil {
			l.results[k] = r
			l.kept += len(r.out)
		}
		l.cond.Broadcast()
		l.mu.Unlock()
		k++
	}
}

// frame compresses frame k, or returns a result without output if it
// looks incompressible, or nil if it cannot be read.
func (l *lookahead) frame(se *frameEncoder, j *frameJob, sample []byte, k int) *lookaheadFrame {
	off := l.first + int64(k)*frameSize
	// The probe's samples first: an incompressible frame is not read.
	for i := range probeSamples {
		at := int64(frameSize-probeSample) * int64(i) / (probeSamples - 1)
		if _, err := l.src.ReadAt(sample[i*probeSample:(i+1)*probeSample], off+at); err != nil {
			return nil
		}
	}
	if se.incompressibleSamples(sample) {
		return &lookaheadFrame{}
	}
	if _, err := l.src.ReadAt(j.in[:frameSize], off); err != nil {
		return nil
	}
	crc := crc32.Update(0, crcTable, j.in[:frameSize])
	j.in = j.in[:frameSize]
	if err := se.encode(j); err != nil || j.stored {
		return &lookaheadFrame{}
	}
	return &lookaheadFrame{out: append([]byte(nil), j.out...), crc: crc}
}

// take tells the lookahead that the in-order pass reached frame k and
// returns it compressed, waiting if it is being compressed; nil if it is
// not (the in-order pass does it).
func (l *lookahead) take(k int) *lookaheadFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reached = k
	l.cond.Broadcast()
	for l.working == k || lookaheadFirst.Load() && k > 0 && l.processed <= k && !l.stopped {
		l.cond.Wait()
	}
	r := l.results[k]
	delete(l.results, k)
	if r == nil || r.out == nil {
		return nil
	}
	l.kept -= len(r.out)
	return r
}

// lookaheadFirst makes the in-order pass wait for the lookahead at every
// frame, so that tests see it insert frames; lookaheadInserts counts the
// frames inserted.
var (
	lookaheadFirst   atomic.Bool
	lookaheadInserts atomic.Int64
)

// stop ends the lookahead and waits for it.
func (l *lookahead) stop() {
	l.mu.Lock()
	l.stopped = true
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.done
}

// crc32Combine returns the CRC-32C of A followed by B from crcA, crcB and
// B's length (zlib's crc32_combine, over the Castagnoli polynomial).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32
	odd[0] = 0x82f63b78 // Castagnoli, reversed
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four
	for {
		gf2Square(&even, &odd)
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		if lenB >>= 1; lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		if lenB >>= 1; lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range 32 {
		square[n] = gf2Times(mat, mat[n])
	}
}
