package fuzz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
)

// Finding kinds of sealed archives.
const (
	// KindUnnamed: a mutated sealed archive refused with an error that
	// wraps none of format/seal's named errors.
	KindUnnamed = "unnamed"
	// KindAccepted: a mutated envelope that opened and extracted.
	KindAccepted = "accepted"
)

// findingError is an Exec error of a kind other than KindEscape.
type findingError struct{ kind, detail string }

func (e *findingError) Error() string { return e.kind + ": " + e.detail }

// sealKeys are the keys a run seals its sealed inputs to and opens them
// with: an age X25519 identity, made per run.
type sealKeys struct {
	ids []age.Identity
	to  []age.Recipient
}

func newSealKeys() (*sealKeys, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	return &sealKeys{ids: []age.Identity{id}, to: []age.Recipient{id.Recipient()}}, nil
}

// sealBytes seals plain to k.
func (k *sealKeys) sealBytes(plain []byte) []byte {
	var buf bytes.Buffer
	w, err := seal.NewWriter(&buf, k.to)
	if err == nil {
		_, err = w.Write(plain)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		panic(err) // writing to memory with a valid recipient
	}
	return buf.Bytes()
}

// sealedLayout locates the parts of a sealed archive: the clear line ends
// at len(seal.Magic), the stanzas lie between it and mac (the start of
// the "--- " line), the payload from payload to end, and a trailer (if
// any) from end.
type sealedLayout struct {
	mac, payload, end int
}

func layoutOf(b []byte) sealedLayout {
	l := sealedLayout{end: len(b)}
	if i := bytes.Index(b, []byte("\n--- ")); i >= 0 {
		l.mac = i + 1
		if j := bytes.IndexByte(b[l.mac:], '\n'); j >= 0 {
			l.payload = l.mac + j + 1
		}
	}
	if l.payload == 0 {
		l.mac, l.payload = len(b), len(b)
	}
	return l
}

// A SealedMutation changes a sealed archive's bytes so that it must be
// refused: by seal.Open or seal.OpenAt with a named error, or, for a
// payload, by the extraction at the altered chunk with seal.ErrCorrupt.
type SealedMutation struct {
	Name  string
	Apply func(r *rand.Rand, b []byte, l sealedLayout) []byte
}

// SealedMutations are the envelope mutations MutateSealed picks from.
var SealedMutations = []SealedMutation{
	{"sealed-clear-line", mutClearLine},
	{"sealed-stanza", mutStanza},
	{"sealed-header-mac", mutHeaderMAC},
	{"sealed-truncate", mutSealedTruncate},
	{"sealed-flip-payload", mutFlipPayload},
	{"sealed-trailer", mutTrailer},
}

// flip flips one bit of b[at].
func flip(r *rand.Rand, b []byte, at int) []byte {
	b[at] ^= byte(1 << r.IntN(8))
	return b
}

func mutClearLine(r *rand.Rand, b []byte, _ sealedLayout) []byte {
	switch r.IntN(3) {
	case 0:
		return flip(r, b, r.IntN(len(seal.Magic)))
	case 1: // another envelope version
		return append([]byte(strings.Replace(seal.Magic, "/v1", []string{"/v2", "/v0", "/v10", ""}[r.IntN(4)], 1)), b[len(seal.Magic):]...)
	default: // a line before it, or none
		if r.IntN(2) == 0 {
			return append([]byte("\n"), b...)
		}
		return b[len(seal.Magic):]
	}
}

func mutStanza(r *rand.Rand, b []byte, l sealedLayout) []byte {
	start := len(seal.Magic) + len("age-encryption.org/v1\n")
	if l.mac <= start {
		return flip(r, b, r.IntN(len(b)))
	}
	stanzas := b[start:l.mac]
	var out []byte
	switch r.IntN(5) {
	case 0: // a flipped byte of a stanza
		return flip(r, b, start+r.IntN(len(stanzas)))
	case 1: // the stanza twice
		out = append(append(bytes.Clone(stanzas), stanzas...), b[l.mac:]...)
	case 2: // more stanzas than allowed
		out = append(bytes.Repeat(stanzas, seal.MaxStanzas+1), b[l.mac:]...)
	case 3: // another recipient type
		out = append(bytes.Replace(bytes.Clone(stanzas), []byte("-> X25519"), []byte([]string{"-> ssh-ed25519 AAAA", "-> scrypt", "-> ", "->X25519", "-> X25519 " + strings.Repeat("A", 70<<10)}[r.IntN(5)]), 1), b[l.mac:]...)
	default: // no stanza
		out = bytes.Clone(b[l.mac:])
	}
	return append(bytes.Clone(b[:start]), out...)
}

func mutHeaderMAC(r *rand.Rand, b []byte, l sealedLayout) []byte {
	if l.payload-l.mac < 6 {
		return flip(r, b, r.IntN(len(b)))
	}
	if r.IntN(4) == 0 { // the MAC line cut or lengthened
		line := []string{"---\n", "--- \n", "--- AAAA\n", "--- " + strings.Repeat("A", 44) + "\n"}[r.IntN(4)]
		return append(append(bytes.Clone(b[:l.mac]), line...), b[l.payload:]...)
	}
	return flip(r, b, l.mac+4+r.IntN(l.payload-l.mac-5))
}

// chunkEnc is the size of an encrypted age chunk (64 KiB and its tag);
// the payload begins with a 16-byte nonce.
const chunkEnc = 64<<10 + 16

func mutSealedTruncate(r *rand.Rand, b []byte, l sealedLayout) []byte {
	n := l.end - l.payload
	cuts := []int{l.payload - 1, l.payload, l.payload + 8, l.payload + 16, l.end - 1, l.end - 17}
	for k := 1; 16+k*chunkEnc < n; k++ {
		// At a chunk's end (the last one left unmarked final), or one
		// byte into the next.
		cuts = append(cuts, l.payload+16+k*chunkEnc, l.payload+16+k*chunkEnc+1)
	}
	at := cuts[r.IntN(len(cuts))]
	if r.IntN(3) == 0 {
		at = l.payload + r.IntN(max(n, 1))
	}
	return b[:min(max(at, 0), l.end-1)]
}

func mutFlipPayload(r *rand.Rand, b []byte, l sealedLayout) []byte {
	n := l.end - l.payload
	if n <= 0 {
		return flip(r, b, r.IntN(len(b)))
	}
	switch r.IntN(4) {
	case 0: // the nonce
		return flip(r, b, l.payload+r.IntN(min(16, n)))
	case 1: // a chunk's tag
		return flip(r, b, l.end-1-r.IntN(min(16, n)))
	case 2: // two chunks swapped
		if n > 16+2*chunkEnc {
			c := bytes.Clone(b[l.payload+16 : l.payload+16+chunkEnc])
			copy(b[l.payload+16:], b[l.payload+16+chunkEnc:l.payload+16+2*chunkEnc])
			copy(b[l.payload+16+chunkEnc:], c)
			return b
		}
	}
	for k := 0; k < 1+r.IntN(3); k++ {
		b = flip(r, b, l.payload+r.IntN(n))
	}
	return b
}

// mutTrailer appends a trailer reserved for a signature that is not well
// formed (seal.AppendTrailer's format broken): age then sees bytes after
// its final chunk. A well-formed forged one is MutateSealed's, refused by
// TrailerCheck.
func mutTrailer(r *rand.Rand, b []byte, _ sealedLayout) []byte {
	t := seal.AppendTrailer(nil, []byte("forged signature"))
	switch r.IntN(4) {
	case 0: // the intro broken
		t[r.IntN(len(seal.TrailerIntro))] ^= 0x20
	case 1: // a length beyond the trailer
		t[len(t)-16] = 0x7f
	case 2: // the footer's magic broken
		t[len(t)-1-r.IntN(8)] ^= 0x20
	default: // junk instead
		t = []byte("junk after the age stream")
	}
	return append(b, t...)
}

// TrailerCheck, if set, checks the signature trailer of a sealed archive
// that opened (h.Trailer; the whole file in data). The fuzzer then also
// forges well-formed trailers, which it must refuse with a named error.
// It is restore's check: a trailer's signature is verified over the file
// (seal.VerifyFile, which refuses a forged one with seal.ErrSignature).
var TrailerCheck = func(h *seal.Header, data []byte) error {
	if h == nil || h.Trailer == nil {
		return nil
	}
	_, err := seal.VerifyFile(bytes.NewReader(data), int64(len(data)), nil)
	return err
}

// MutateSealed returns a sealed archive made from seed and the names of
// the mutations applied, and whether it must be refused: either the seed
// structurally mutated (Mutate), then sealed correctly to k (the inner
// archive's checks apply, through the envelope), or the seed sealed,
// then its envelope mutated (it must be refused with a named error).
func MutateSealed(r *rand.Rand, seed *Seed, k *sealKeys) (_ []byte, name string, refuse bool) {
	if r.IntN(3) == 0 {
		in, name := Mutate(r, seed)
		return k.sealBytes(in), "sealed-inner+" + name, false
	}
	s := seed.clone()
	first, rest := s.tarBytes()
	b := k.sealBytes(encode(s.Compression, first, rest))
	if TrailerCheck != nil && r.IntN(6) == 0 {
		return seal.AppendTrailer(b, []byte("forged signature")), "sealed-trailer-forged", true
	}
	m := SealedMutations[r.IntN(len(SealedMutations))]
	return m.Apply(r, b, layoutOf(b)), m.Name, true
}

// SealedErrors are the named errors a mutated sealed archive may be
// refused with (a signature check adds its own).
var SealedErrors = []error{seal.ErrEnvelope, seal.ErrNoKey, seal.ErrWrongKey, seal.ErrCorrupt, seal.ErrSignature}

// namedSeal reports whether err wraps one of SealedErrors.
func namedSeal(err error) bool {
	for _, e := range SealedErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ExecSealed runs data, a sealed archive, as an import does (seal.Open
// with ids, then Extract into the sandbox) and as show does (seal.OpenAt,
// the whole plaintext read through it). It returns an error for an
// escape, and, if refuse, for an envelope that either way of opening
// lets through to the plaintext's end, or refuses with an error outside
// SealedErrors (the inner archive's own checks are not the envelope's).
func ExecSealed(ctx context.Context, data []byte, ids []age.Identity, sb *Sandbox, refuse bool) error {
	if err := extractSealed(ctx, data, ids, sb); err != nil {
		return err
	}
	if !refuse {
		return nil
	}
	for _, e := range []struct {
		path string
		err  error
	}{{"seal.Open", readOpen(data, ids)}, {"seal.OpenAt", readAt(data, ids)}} {
		switch {
		case e.err == nil:
			return &findingError{KindAccepted, e.path + " accepted a mutated sealed archive"}
		case !namedSeal(e.err):
			return &findingError{KindUnnamed, fmt.Sprintf("%s: %v", e.path, e.err)}
		}
	}
	return nil
}

// extractSealed extracts data, opened with ids, into a new directory of
// the sandbox, and returns an escape.
func extractSealed(ctx context.Context, data []byte, ids []age.Identity, sb *Sandbox) error {
	pr, _, err := seal.Open(bytes.NewReader(data), ids)
	if err != nil {
		return nil
	}
	sb.n++
	dir := filepath.Join(sb.Dir, "target", fmt.Sprint(sb.n))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("create target: %w", err)
	}
	defer os.RemoveAll(dir)
	if zr, err := format.Extract(ctx, pr, dir, &format.ExtractOptions{Reader: format.ReaderOptions{Concurrency: 1}}); err == nil {
		zr.Close()
	}
	return sb.check()
}

// readOpen opens data with seal.Open and reads its whole plaintext.
func readOpen(data []byte, ids []age.Identity) error {
	pr, h, err := seal.Open(bytes.NewReader(data), ids)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return err
	}
	if TrailerCheck != nil {
		return TrailerCheck(h, data)
	}
	return nil
}

// readAt opens data with seal.OpenAt and reads its whole plaintext.
func readAt(data []byte, ids []age.Identity) error {
	ra, n, h, err := seal.OpenAt(bytes.NewReader(data), int64(len(data)), ids)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, io.NewSectionReader(ra, 0, n)); err != nil {
		return err
	}
	if TrailerCheck != nil {
		return TrailerCheck(h, data)
	}
	return nil
}
