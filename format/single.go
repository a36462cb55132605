package format

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"time"
)

// A Sizer is a Source that knows its content's length before it is read:
// FileSource and BytesSource are. Sources that are not (StreamSource) need
// a SetSum or a first reading pass.
type Sizer interface {
	Source
	Size() (int64, error)
}

type bytesSource []byte

func (b bytesSource) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
func (b bytesSource) Size() (int64, error)         { return int64(len(b)), nil }

type fileSource string

func (f fileSource) Open() (io.ReadCloser, error) { return openRegular(string(f)) }
func (f fileSource) Size() (int64, error) {
	fi, err := os.Lstat(string(f))
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, errors.New(string(f) + " is not a regular file")
	}
	return fi.Size(), nil
}

// File is where NewFileWriter writes: a sequential writer whose first byte
// is at offset 0 of what WriteAt addresses, e.g. a new *os.File.
type File interface {
	io.Writer
	io.WriterAt
}

// NewFileWriter returns a Writer to a new file f (see File), which lets
// Close read each member's content once: when every Source's size is
// known (Sizer, or SetSum) and the compression is zstd or none, Close
// writes a placeholder of the manifest's exact length, the members
// (digesting them as it copies them), then the manifest over the
// placeholder with f.WriteAt. Such a manifest frame is stored (raw zstd
// blocks), not compressed; the archive is otherwise as NewWriter's and as
// deterministic. Otherwise Close reads the members twice, as NewWriter's.
// f must not buffer: the placeholder is overwritten through WriteAt
// before Close returns.
func NewFileWriter(f File, header Manifest, opts *WriterOptions) *Writer {
	w := NewWriter(f, header, opts)
	w.at = f
	return w
}

// placeholderDigest has a real digest's length.
var placeholderDigest = Digest(digestPrefix + string(bytes.Repeat([]byte{'0'}, 2*sha256.Size)))

// sizeAll sets the size of every member without a sum from its Source,
// and reports whether all are known.
func (w *Writer) sizeAll() (bool, error) {
	for _, e := range w.entries {
		if e.summed {
			continue
		}
		s, ok := e.src.(Sizer)
		if !ok {
			return false, nil
		}
		n, err := s.Size()
		if err != nil {
			return false, &Error{Op: "write", Member: e.name, Err: err}
		}
		if n > MaxMemberSize {
			return false, &Error{Op: "write", Member: e.name, Err: errorf(ErrTooLarge, "member larger than %d bytes", int64(MaxMemberSize))}
		}
		e.sum = Sum{size: n, digest: placeholderDigest}
	}
	return true, nil
}

// writeSingle writes the archive reading each member once (see
// NewFileWriter); m is the manifest header, members not filled in.
func (w *Writer) writeSingle(m Manifest) error {
	members := func() ([]byte, error) {
		m.Members = make([]Member, len(w.entries))
		var total int64
		for i, e := range w.entries {
			m.Members[i] = Member{Name: e.name, Kind: KindOf(e.name), Size: e.sum.size, Digest: e.sum.digest}
			if MaxTotalSize-total < e.sum.size {
				return nil, &Error{Op: "write", Member: e.name, Err: errorf(ErrTooLarge, "members add up to more than %d bytes", int64(MaxTotalSize))}
			}
			total += e.sum.size
		}
		mb, err := m.Marshal()
		if err != nil {
			return nil, &Error{Op: "write", Member: ManifestName, Err: err}
		}
		if len(mb) > MaxManifestSize {
			return nil, &Error{Op: "write", Member: ManifestName, Err: errorf(ErrTooLarge, "manifest of %d bytes (limit %d)", len(mb), MaxManifestSize)}
		}
		return mb, nil
	}
	placeholder, err := members()
	if err != nil {
		return err
	}
	head, err := storedManifest(w.opts.Compression, placeholder, m.Created)
	if err != nil {
		return err
	}
	if _, err := w.w.Write(head); err != nil {
		return err
	}

	sw := &switchWriter{}
	if err := w.writeBody(tar.NewWriter(sw), sw, m.Created); err != nil {
		return err
	}

	mb, err := members()
	if err != nil {
		return err
	}
	if len(mb) != len(placeholder) {
		return &Error{Op: "write", Member: ManifestName, Err: errorf(ErrSourceChanged, "manifest length changed from %d to %d", len(placeholder), len(mb))}
	}
	if head, err = storedManifest(w.opts.Compression, mb, m.Created); err != nil {
		return err
	}
	if _, err := w.at.WriteAt(head, 0); err != nil {
		return err
	}
	w.result, w.digest = &m, DigestBytes(mb)
	return nil
}

// storedManifest returns the manifest's frame: the tar entry of mb, in a
// zstd frame of raw blocks (or bare, without compression), whose length
// depends on len(mb) alone.
func storedManifest(c Compression, mb []byte, mtime time.Time) ([]byte, error) {
	var t bytes.Buffer
	tw := tar.NewWriter(&t)
	if err := tw.WriteHeader(header(ManifestName, int64(len(mb)), mtime)); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mb); err != nil {
		return nil, err
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	if c == None {
		return t.Bytes(), nil
	}
	return rawZstdFrame(t.Bytes()), nil
}

// rawZstdFrame returns a zstd frame holding b in raw (stored) blocks:
// single segment, a 4-byte content size, no checksum (RFC 8878 3.1.1).
func rawZstdFrame(b []byte) []byte {
	out := make([]byte, 0, 9+len(b)+3*(len(b)/(128<<10)+1))
	out = append(out, 0x28, 0xb5, 0x2f, 0xfd, 0x2<<6|1<<5)
	out = append(out, byte(len(b)), byte(len(b)>>8), byte(len(b)>>16), byte(len(b)>>24))
	return appendRawBlocks(out, b, 128<<10)
}
