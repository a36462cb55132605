package format

import "sync/atomic"

// pipeline runs fn on buffers in a goroutine of its own, in the order they
// are sent, so that the caller fills the next buffer meanwhile: hashing
// (and writing) one buffer while the next is read or decompressed puts a
// second core to work. At most nbuf buffers of size bytes exist.
type pipeline struct {
	fn     func([]byte) error
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	nbuf   int
	size   int
	made   int
	failed atomic.Bool
	// err is fn's first error; after it, buffers are passed over. Read it
	// only after done is closed.
	err error
}

// pipelineBuffers and pipelineBufferSize are the pipelines' defaults:
// enough to keep both sides busy, little memory.
const (
	pipelineBuffers    = 3
	pipelineBufferSize = 1 << 20
)

func newPipeline(nbuf, size int, fn func([]byte) error) *pipeline {
	p := &pipeline{fn: fn, full: make(chan []byte, nbuf), free: make(chan []byte, nbuf), done: make(chan struct{}), nbuf: nbuf, size: size}
	go p.run()
	return p
}

func (p *pipeline) run() {
	defer close(p.done)
	for b := range p.full {
		if p.err == nil {
			if p.err = p.fn(b); p.err != nil {
				p.failed.Store(true)
			}
		}
		p.free <- b
	}
}

// buffer returns an empty buffer of the pipeline's size, waiting for one
// to come back when all are in use.
func (p *pipeline) buffer() []byte {
	select {
	case b := <-p.free:
		return b[:p.size]
	default:
	}
	if p.made < p.nbuf {
		p.made++
		return make([]byte, p.size)
	}
	return (<-p.free)[:p.size]
}

// send hands b to fn; b must come from buffer and is not to be touched
// again. It reports false once fn has failed (close returns the error).
func (p *pipeline) send(b []byte) bool {
	p.full <- b
	return !p.failed.Load()
}

// close waits for fn to be done with every buffer sent and returns its
// first error. The pipeline cannot be used after.
func (p *pipeline) close() error {
	close(p.full)
	<-p.done
	return p.err
}
