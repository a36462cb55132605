package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// OpenAt opens the sealed archive r of size bytes for random access: it
// reads the header and unwraps the file key with one of ids (checking the
// header's MAC), finds a trailer at the end (set in [Header.Trailer],
// unverified), and authenticates the final chunk, which fixes the
// plaintext's size. It returns the plaintext as a ReaderAt and its size.
// Each ReadAt reads and authenticates only the 64 KiB chunks it covers
// (age's chunks have a counter nonce, so each opens alone): reading a
// v1 archive's manifest or a streamed archive's index costs a few chunks
// whatever the archive's size. Errors are Open's: ErrEnvelope, ErrNoKey,
// ErrWrongKey, and ErrCorrupt from OpenAt or any ReadAt.
func OpenAt(r io.ReaderAt, size int64, ids []age.Identity) (io.ReaderAt, int64, *Header, error) {
	h, raw, err := ReadHeader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, 0, nil, err
	}
	if len(ids) == 0 {
		return nil, 0, h, fmt.Errorf("%w for %s: give its key with --decrypt-key", ErrNoKey, h.Recipients())
	}
	key, err := age.DecryptHeader(raw[len(Magic):], ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, 0, h, fmt.Errorf("%w: it is sealed for %s", ErrWrongKey, h.Recipients())
		}
		return nil, 0, h, fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	end, trailer, err := trailerAt(r, size)
	if err != nil {
		return nil, 0, h, err
	}
	h.Trailer = trailer
	off := int64(len(Magic))
	pr, n, err := age.DecryptReaderAt(io.NewSectionReader(r, off, end-off), end-off, age.NewInjectedFileKeyIdentity(key))
	if err != nil {
		// The header opened above: what fails is the payload.
		return nil, 0, h, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return corruptReaderAt{pr}, n, h, nil
}

// trailerAt returns where the age stream of the sealed file r of size
// bytes ends, and its trailer if a well-formed one follows it (as
// trailerReader.cut decides).
func trailerAt(r io.ReaderAt, size int64) (int64, []byte, error) {
	if size < int64(footerLen) {
		return size, nil, nil
	}
	foot := make([]byte, footerLen)
	if _, err := r.ReadAt(foot, size-int64(footerLen)); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, err
	}
	if string(foot[8:]) != footerMagic {
		return size, nil, nil
	}
	n := binary.BigEndian.Uint64(foot)
	if n < uint64(len(TrailerIntro)) || n > MaxTrailer || n > uint64(size)-uint64(footerLen) {
		return size, nil, nil
	}
	at := size - int64(footerLen) - int64(n)
	t := make([]byte, n)
	if _, err := r.ReadAt(t, at); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, err
	}
	if !bytes.HasPrefix(t, []byte(TrailerIntro)) {
		return size, nil, nil
	}
	return at, t, nil
}

// corruptReaderAt marks age's chunk errors as ErrCorrupt.
type corruptReaderAt struct{ r io.ReaderAt }

func (c corruptReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return n, err
}
