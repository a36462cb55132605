package engine

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format/seal"
)

// checkSealed refuses a sealed archive at path that none of ids opens,
// before an import makes anything: without a key (seal.ErrNoKey), with
// keys of none of its recipients (seal.ErrWrongKey, naming them), or
// with a malformed header (seal.ErrEnvelope). An archive whose header
// opens but whose payload is altered fails later, in the extraction,
// whose staging is removed.
//
// A signature (rule 37) is checked over the whole file first: with
// trust, an archive that is not sealed and signed by one of its keys is
// refused (seal.ErrUnsigned, seal.ErrUntrusted); a signature that does
// not match is seal.ErrSignature, with or without trust. It returns the
// checked signature, or nil.
func checkSealed(path string, ids []age.Identity, trust seal.Trust) (*seal.Signed, error) {
	f, err := os.Open(path)
	if err != nil {
		if len(trust) > 0 {
			return nil, fmt.Errorf("%w: %w", seal.ErrUnsigned, err)
		}
		return nil, nil // the extraction names the problem
	}
	defer f.Close()
	head := make([]byte, len(seal.Magic))
	_, _ = io.ReadFull(f, head)
	if !seal.IsSealed(head) {
		if len(trust) > 0 {
			return nil, fmt.Errorf("%w: it is not sealed, so it carries no signature, and --trust-key requires one", seal.ErrUnsigned)
		}
		return nil, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	signed, err := seal.VerifyFile(f, fi.Size(), trust)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	_, _, err = unsealed(f, ids)
	return signed, err
}

// newSealer returns the writer that seals an export to o.SealTo, signed
// with o.SignKey if set.
func newSealer(w io.Writer, o *ExportOptions) (*seal.Writer, error) {
	if o.SignKey != nil {
		return seal.NewSignedWriter(w, o.SealTo, o.SignKey)
	}
	return seal.NewWriter(w, o.SealTo)
}

// unseal returns r, or, if r begins a sealed archive, its plaintext
// opened with ids.
func unseal(r io.Reader, ids []age.Identity) (io.Reader, error) {
	pr, _, err := unsealed(r, ids)
	return pr, err
}

// unsealed is unseal that also says whether r was sealed.
func unsealed(r io.Reader, ids []age.Identity) (io.Reader, bool, error) {
	// Small: once the peeked bytes are read, large reads bypass it.
	br := bufio.NewReaderSize(r, 64)
	head, _ := br.Peek(len(seal.Magic))
	if !seal.IsSealed(head) {
		return br, false, nil
	}
	pr, _, err := seal.Open(br, ids)
	return pr, true, err
}

// Read-ahead of a sealed import: aheadSlabs buffers of aheadSlab bytes.
const (
	aheadSlab  = 1 << 20
	aheadSlabs = 4
)

// unsealAhead is unseal for the extraction: a sealed archive is
// decrypted up to aheadSlabs MiB ahead in a goroutine of its own, so that
// decryption overlaps the decompression, hashing and writing the reader
// does, and the two meet once per MiB, not at every read. stop ends the
// goroutine; call it once done with the reader.
func unsealAhead(r io.Reader, ids []age.Identity) (_ io.Reader, stop func(), _ error) {
	pr, sealed, err := unsealed(r, ids)
	if err != nil || !sealed {
		return pr, func() {}, err
	}
	a := &aheadReader{full: make(chan []byte, aheadSlabs), free: make(chan []byte, aheadSlabs),
		stop: make(chan struct{}), done: make(chan struct{})}
	for range aheadSlabs {
		a.free <- make([]byte, aheadSlab)
	}
	go a.fill(pr)
	return a, func() {
		close(a.stop)
		<-a.done
	}, nil
}

// aheadReader reads the slabs its fill goroutine decrypted, in order.
type aheadReader struct {
	full, free chan []byte
	cur, slab  []byte // what is left of the slab being read, and the slab
	err        error  // fill's last error (io.EOF at the end), set before full closes
	stop, done chan struct{}
}

// fill reads r into free slabs and hands them over full, until r ends,
// fails or stop closes.
func (a *aheadReader) fill(r io.Reader) {
	defer close(a.done)
	for {
		var b []byte
		select {
		case b = <-a.free:
		case <-a.stop:
			return
		}
		n, err := io.ReadFull(r, b)
		if n > 0 {
			select {
			case a.full <- b[:n]:
			case <-a.stop:
				return
			}
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				// ReadFull's own, unwrapped: r ended within the slab
				// (r's own errors come wrapped in seal.ErrCorrupt).
				err = io.EOF
			}
			a.err = err
			close(a.full)
			return
		}
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	if len(a.cur) == 0 {
		if a.slab != nil {
			a.free <- a.slab[:cap(a.slab)] // room for every slab: never blocks
			a.slab = nil
		}
		b, ok := <-a.full
		if !ok {
			return 0, a.err
		}
		a.cur, a.slab = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}
