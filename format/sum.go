package format

import (
	"crypto/sha256"
	"hash"
	"hash/crc32"
)

// Sum is what a Writer needs to know of a member's content before writing
// it: its size, sha256 digest and CRC-32C. A Summer computes it; the zero
// Sum is the sum of no bytes only once a Summer says so, so get one from
// [Summer.Sum].
type Sum struct {
	size   int64
	digest Digest
	crc    uint32
}

// Size returns the content's length in bytes.
func (s Sum) Size() int64 { return s.size }

// Digest returns the content's sha256 digest.
func (s Sum) Digest() Digest { return s.digest }

// Summer computes the Sum of the bytes written to it. A caller that sees a
// member's bytes anyway, e.g. while another program writes the file, can
// sum them there and give the result to [Writer.SetSum], so that Close
// reads that member once instead of twice. A Summer is not safe for
// concurrent use.
type Summer struct {
	n   int64
	sha hash.Hash
	crc uint32
}

// NewSummer returns a Summer of no bytes yet.
func NewSummer() *Summer { return &Summer{sha: sha256.New()} }

// Write adds p to the content summed. It never fails.
func (s *Summer) Write(p []byte) (int, error) {
	s.sha.Write(p)
	s.crc = crc32.Update(s.crc, crcTable, p)
	s.n += int64(len(p))
	return len(p), nil
}

// Sum returns the sum of the bytes written so far.
func (s *Summer) Sum() Sum {
	return Sum{size: s.n, digest: digestOf(s.sha), crc: s.crc}
}
