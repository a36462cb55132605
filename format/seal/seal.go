// Package seal writes and opens sealed checkpoint archives: a checkpoint
// archive (docs/FORMAT.md §1–§10), compressed as usual, then encrypted to
// SSH or age keys with age (filippo.io/age), behind one clear line that
// names the envelope. docs/FORMAT.md §11 is the normative description.
//
// Invariants:
//
//   - A sealed file is [Magic], then an age v1 file (its header: the
//     recipients' stanzas and the header's MAC; then the payload, the
//     encrypted archive, in authenticated chunks of 64 KiB). Nothing of
//     the archive, not even its manifest, is readable without a key.
//   - [ReadHeader] reads at most [MaxHeader] bytes and [MaxStanzas]
//     stanzas before anything is decrypted; a larger or malformed header
//     is [ErrEnvelope]. [Open] decrypts nothing before the header parsed
//     and one identity unwrapped the file key with the header's MAC
//     verified: a missing key is [ErrNoKey], a key of none of the
//     recipients [ErrWrongKey], naming the recipients.
//   - Every chunk of plaintext [Open]'s reader returns has been
//     authenticated; a truncated or altered payload is an error wrapping
//     [ErrCorrupt] at the chunk, never plaintext.
//   - [OpenAt] gives the same plaintext by random access: it checks the
//     header and key as Open does and authenticates the final chunk
//     (fixing the length) before it returns, then each ReadAt
//     authenticates every chunk it returns bytes of.
//   - The writer streams: [NewWriter] holds a few MiB in memory (the
//     slabs its goroutine encrypts) and writes nothing in clear but the
//     envelope header.
//   - After the age stream a trailer reserved for a signature may follow
//     (TrailerIntro, at most [MaxTrailer] bytes, then its length and a
//     footer magic): Open's reader strips it, unverified, into
//     [Header.Trailer], holding back the last 64 KiB of the stream until
//     its end to find it.
package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync/atomic"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"golang.org/x/crypto/ssh"
)

// Magic is the first line of a sealed archive (format.SealedMagic).
const Magic = format.SealedMagic

// ageIntro is the first line of an age v1 header.
const ageIntro = "age-encryption.org/v1\n"

// Bounds of the clear header, below age's own (2 MiB, 1,024 stanzas).
const (
	MaxHeader  = 64 << 10
	MaxStanzas = 64
)

// Errors of sealed archives, matched with errors.Is.
var (
	// ErrNoKey: the archive is sealed and no key was given.
	ErrNoKey = errors.New("the archive is sealed")
	// ErrWrongKey: none of the keys given is one the archive is sealed to.
	ErrWrongKey = errors.New("no key given opens the sealed archive")
	// ErrEnvelope: the clear header is malformed or over its bounds.
	ErrEnvelope = errors.New("malformed sealed archive header")
	// ErrCorrupt: the encrypted payload is truncated or was altered.
	ErrCorrupt = errors.New("sealed archive corrupt or altered")
	// ErrKey: a key file cannot be used.
	ErrKey = errors.New("unusable key")
	// ErrSignature: the archive's signature is malformed or does not
	// match it.
	ErrSignature = errors.New("bad signature")
	// ErrUnsigned: a signature is required (--trust-key) and the archive
	// has none.
	ErrUnsigned = errors.New("the archive is not signed")
	// ErrUntrusted: the archive is signed by a key not trusted.
	ErrUntrusted = errors.New("the archive is signed by a key not trusted")
)

// Stanza is one recipient stanza of the header: its type and arguments.
type Stanza struct {
	Type string
	Args []string
}

// String names the recipient as far as the stanza tells: SSH stanzas carry
// a 4-byte tag of the public key, X25519 stanzas nothing.
func (s Stanza) String() string {
	switch {
	case (s.Type == "ssh-ed25519" || s.Type == "ssh-rsa") && len(s.Args) > 0:
		return fmt.Sprintf("an %s key (tag %s)", s.Type, s.Args[0])
	case s.Type == "X25519":
		return "an age key (age1…)"
	case s.Type == "mlkem768x25519":
		return "a post-quantum age key (age1pq1…)"
	}
	return fmt.Sprintf("a %q recipient", s.Type)
}

// Header is the clear part of a sealed archive.
type Header struct {
	Stanzas []Stanza
	// Size is the header's length in bytes: Magic and the age header,
	// through its MAC line.
	Size int64
	// Trailer is the trailer reserved for a signature (TrailerIntro and
	// what follows, not verified), set once Open's reader reached its end;
	// nil without one.
	Trailer []byte
}

// Recipients names the recipients, for messages.
func (h *Header) Recipients() string {
	names := make([]string, len(h.Stanzas))
	for i, s := range h.Stanzas {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// IsSealed reports whether head, a file's first bytes (at least
// len(Magic)), begins a sealed archive, of any envelope version
// (format.SealedPrefix): Open names one it does not read.
func IsSealed(head []byte) bool { return bytes.HasPrefix(head, []byte(format.SealedPrefix)) }

// ReadHeader reads and checks the clear header from r, at most MaxHeader
// bytes, and returns it with its bytes. It does not check the MAC (that
// needs the file key): a header it accepts may still be refused by Open.
func ReadHeader(r io.Reader) (*Header, []byte, error) {
	h, raw, _, err := readHeader(r)
	return h, raw, err
}

// readHeader is ReadHeader that also returns the rest of r, the payload.
func readHeader(r io.Reader) (*Header, []byte, io.Reader, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxHeader), 4096)
	var raw []byte
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		raw = append(raw, l...)
		if err != nil {
			if len(raw) >= MaxHeader {
				return "", fmt.Errorf("%w: over %d bytes", ErrEnvelope, MaxHeader)
			}
			return "", fmt.Errorf("%w: truncated", ErrEnvelope)
		}
		return l, nil
	}
	if l, err := line(); err != nil || l != Magic {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), format.SealedPrefix); ok && err == nil && len(v) <= 16 {
			return nil, nil, nil, fmt.Errorf("%w: envelope version %q, which this ckpt does not read (it reads %q): open it with the ckpt that wrote it", ErrEnvelope, v, strings.TrimSpace(Magic))
		}
		return nil, nil, nil, fmt.Errorf("%w: the first line is not %q", ErrEnvelope, strings.TrimSpace(Magic))
	}
	if l, err := line(); err != nil || l != ageIntro {
		return nil, nil, nil, fmt.Errorf("%w: no age v1 header after the first line", ErrEnvelope)
	}
	h := &Header{}
	for {
		l, err := line()
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case strings.HasPrefix(l, "--- "):
			if len(h.Stanzas) == 0 {
				return nil, nil, nil, fmt.Errorf("%w: no recipient", ErrEnvelope)
			}
			h.Size = int64(len(raw))
			rest, _ := br.Peek(br.Buffered())
			return h, raw, io.MultiReader(bytes.NewReader(rest), r), nil
		case strings.HasPrefix(l, "-> "):
			if len(h.Stanzas) == MaxStanzas {
				return nil, nil, nil, fmt.Errorf("%w: more than %d recipients", ErrEnvelope, MaxStanzas)
			}
			f := strings.Fields(l[3:])
			if len(f) == 0 {
				return nil, nil, nil, fmt.Errorf("%w: a stanza without type", ErrEnvelope)
			}
			h.Stanzas = append(h.Stanzas, Stanza{Type: f[0], Args: f[1:]})
		case len(h.Stanzas) == 0:
			return nil, nil, nil, fmt.Errorf("%w: a line outside any stanza", ErrEnvelope)
		}
		// Other lines are stanza bodies, which age checks.
	}
}

// Writer seals an archive as it is written; Close ends the encryption
// (it does not close the underlying writer). Write copies into slabs that
// a goroutine of the Writer encrypts and writes, so that the encryption
// (ChaCha20-Poly1305, about a core's second per GB here) overlaps what
// the caller does between writes (compressing, hashing). Close, or Abort
// on a path that gives up, ends that goroutine.
type Writer struct {
	age io.WriteCloser
	// With a signer (NewSignedWriter): what was written is hashed into
	// sum, and Close appends the signature's trailer to out.
	signer ssh.Signer
	sum    hash.Hash
	out    io.Writer

	slab       []byte        // being filled by Write
	full, free chan []byte   // to and from the goroutine
	done       chan struct{} // closed when the goroutine ended
	failed     atomic.Pointer[error]
	aborted    atomic.Bool
	closed     bool
}

// Pipelining of the Writer: writeSlabs slabs of writeSlab bytes.
const (
	writeSlab  = 1 << 20
	writeSlabs = 4
)

// NewWriter writes Magic and the age header for rs to w and returns a
// Writer whose plaintext is encrypted to w.
func NewWriter(w io.Writer, rs []age.Recipient) (*Writer, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: no recipient", ErrKey)
	}
	if len(rs) > MaxStanzas {
		return nil, fmt.Errorf("%w: more than %d recipients", ErrKey, MaxStanzas)
	}
	if _, err := io.WriteString(w, Magic); err != nil {
		return nil, err
	}
	aw, err := age.Encrypt(w, rs...)
	if err != nil {
		return nil, err
	}
	sw := &Writer{age: aw, full: make(chan []byte, writeSlabs), free: make(chan []byte, writeSlabs),
		done: make(chan struct{})}
	for range writeSlabs - 1 {
		sw.free <- make([]byte, 0, writeSlab)
	}
	sw.slab = make([]byte, 0, writeSlab)
	go sw.seal()
	return sw, nil
}

// seal encrypts the slabs handed over until full closes; after an error
// or Abort it only returns them.
func (w *Writer) seal() {
	defer close(w.done)
	for b := range w.full {
		if w.failed.Load() == nil && !w.aborted.Load() {
			if _, err := w.age.Write(b); err != nil {
				w.failed.Store(&err)
			}
		}
		w.free <- b[:0] // room for every slab: never blocks
	}
}

// err is the goroutine's first error, or nil.
func (w *Writer) err() error {
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("seal: write after close")
	}
	n := 0
	for len(p) > 0 {
		if err := w.err(); err != nil {
			return n, err
		}
		c := copy(w.slab[len(w.slab):cap(w.slab)], p)
		w.slab = w.slab[:len(w.slab)+c]
		p, n = p[c:], n+c
		if len(w.slab) == cap(w.slab) {
			w.full <- w.slab
			w.slab = <-w.free
		}
	}
	return n, nil
}

// Abort ends the Writer's goroutine without ending the encryption, for a
// write that is given up: what was not yet encrypted is dropped. It does
// not wait for a write of the goroutine to the underlying writer (a
// stalled pipe); after Close it does nothing.
func (w *Writer) Abort() {
	if !w.closed {
		w.closed = true
		w.aborted.Store(true)
		close(w.full)
	}
}

// Close writes the last chunk and, for a signed archive, the trailer with
// the signature.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("seal: already closed")
	}
	w.closed = true
	if len(w.slab) > 0 {
		w.full <- w.slab
	}
	close(w.full)
	<-w.done
	if err := w.err(); err != nil {
		return err
	}
	if err := w.age.Close(); err != nil {
		return err
	}
	if w.signer == nil {
		return nil
	}
	sig, err := signDigest(w.signer, "sha256", w.sum.Sum(nil))
	if err != nil {
		return err
	}
	_, err = w.out.Write(AppendTrailer(nil, sig))
	return err
}

// Open reads the header from r and unwraps the file key with one of ids,
// and returns the authenticated plaintext. Errors: ErrEnvelope,
// ErrNoKey (ids empty), ErrWrongKey; the reader's, ErrCorrupt.
func Open(r io.Reader, ids []age.Identity) (io.Reader, *Header, error) {
	h, raw, rest, err := readHeader(r)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, h, fmt.Errorf("%w for %s: give its key with --decrypt-key", ErrNoKey, h.Recipients())
	}
	tr := newTrailerReader(rest)
	pr, err := age.Decrypt(io.MultiReader(bytes.NewReader(raw[len(Magic):]), tr), ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, h, fmt.Errorf("%w: it is sealed for %s", ErrWrongKey, h.Recipients())
		}
		return nil, h, fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	return &corruptReader{r: pr, t: tr, h: h}, h, nil
}

// corruptReader marks age's payload errors (a chunk that does not
// authenticate, a truncated stream) as ErrCorrupt.
// At the end it sets the header's Trailer.
type corruptReader struct {
	r io.Reader
	t *trailerReader
	h *Header
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.h.Trailer = c.t.trailer
	} else if err != nil {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return n, err
}
