package format

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// pipeline passes buffers through stages, each a function run in a
// goroutine of its own, in the order the buffers are sent: the caller
// fills the next buffer while one stage hashes a buffer and the next
// writes the one before, which puts every core to work. At most nbuf
// buffers of pipelineBufferSize bytes are in use; they come from a pool
// shared by all pipelines, so a pipeline per member costs no allocation.
type pipeline struct {
	stages []*stage
	free   chan []byte
	nbuf   int
	made   int
	failed atomic.Bool
}

var bufferPool = sync.Pool{New: func() any { return new([pipelineBufferSize]byte) }}

type stage struct {
	fn   func([]byte) error
	in   chan []byte
	done chan struct{}
	// err is fn's first error; after it, fn is not called again. Read it
	// only after done is closed.
	err error
}

// pipelineBuffers and pipelineBufferSize are the pipelines' defaults:
// enough to keep every stage busy when another one stalls for a moment (a
// frame to hand over, a disk write), which 4 were not (the hashing stage
// waited); 16 MiB of memory per pipeline.
const (
	pipelineBuffers    = 16
	pipelineBufferSize = 1 << 20
)

func newPipeline(nbuf int, fns ...func([]byte) error) *pipeline {
	p := &pipeline{free: make(chan []byte, nbuf), nbuf: nbuf}
	for _, fn := range fns {
		p.stages = append(p.stages, &stage{fn: fn, in: make(chan []byte, nbuf), done: make(chan struct{})})
	}
	for i, s := range p.stages {
		out := p.free
		if i+1 < len(p.stages) {
			out = p.stages[i+1].in
		}
		go p.run(s, out, i+1 < len(p.stages))
	}
	return p
}

func (p *pipeline) run(s *stage, out chan []byte, closeOut bool) {
	defer close(s.done)
	for b := range s.in {
		if s.err == nil {
			if s.err = s.fn(b); s.err != nil {
				p.failed.Store(true)
			}
		}
		out <- b
	}
	if closeOut {
		close(out)
	}
}

// buffer returns a buffer of pipelineBufferSize bytes, waiting for one to
// come back when all are in use.
func (p *pipeline) buffer() []byte {
	select {
	case b := <-p.free:
		return b[:pipelineBufferSize]
	default:
	}
	if p.made < p.nbuf {
		p.made++
		return bufferPool.Get().(*[pipelineBufferSize]byte)[:]
	}
	return (<-p.free)[:pipelineBufferSize]
}

// send hands b to the first stage; b must come from buffer and is not to
// be touched again. It reports false once a stage has failed (close
// returns the error).
func (p *pipeline) send(b []byte) bool {
	p.stages[0].in <- b
	return !p.failed.Load()
}

// close waits for every stage to be done with every buffer sent and
// returns the first stage's error, if any, else the second's, and so on.
// The pipeline cannot be used after.
func (p *pipeline) close() error {
	close(p.stages[0].in)
	for _, s := range p.stages {
		<-s.done
	}
	for range p.made {
		bufferPool.Put((*[pipelineBufferSize]byte)((<-p.free)[:pipelineBufferSize]))
	}
	for _, s := range p.stages {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// pump reads r, at most limit bytes, into the pipeline's buffers, calls
// each (if not nil) on every buffer before sending it on, and closes the
// pipeline. It returns how many bytes it read and r's error, or else the
// error of a stage. It stops early when a stage fails.
func (p *pipeline) pump(r io.Reader, limit int64, each func([]byte)) (int64, error) {
	var n int64
	for n < limit {
		b := p.buffer()
		b = b[:min(int64(len(b)), limit-n)]
		k, err := readFull(r, b)
		if each != nil {
			each(b[:k])
		}
		n += int64(k)
		ok := p.send(b[:k])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.close()
			return n, err
		}
		if !ok {
			break
		}
	}
	return n, p.close()
}

// readFull reads into b until it is full or r fails, and returns r's
// error as is (io.EOF too, unlike io.ReadFull).
func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
