package engine

import (
	"bufio"
	"errors"
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
func checkSealed(path string, ids []age.Identity) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // the extraction names the problem
	}
	defer f.Close()
	_, _, err = unsealed(f, ids)
	return err
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

// unsealAhead is unseal for the extraction: a sealed archive is
// decrypted a MiB ahead in a goroutine of its own, so that decryption
// overlaps the decompression, hashing and writing the reader does. stop
// ends the goroutine; call it once done with the reader.
func unsealAhead(r io.Reader, ids []age.Identity) (_ io.Reader, stop func(), _ error) {
	pr, sealed, err := unsealed(r, ids)
	if err != nil || !sealed {
		return pr, func() {}, err
	}
	rp, wp := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.CopyBuffer(wp, pr, make([]byte, 1<<20))
		wp.CloseWithError(err)
	}()
	return rp, func() {
		rp.CloseWithError(errors.New("extraction ended"))
		<-done
	}, nil
}
