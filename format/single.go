package format

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
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
// reserves room for the manifest's frame, writes the members (digesting
// them as it copies them), then the manifest's frame over the reservation
// with f.WriteAt. The manifest's length is known before its digests are;
// the length of its compressed frame is not, so the reservation is the
// largest frame of a few stand-in manifests with random digests, plus a
// margin, and a zstd skippable frame of zeros fills what the real frame
// leaves of it (FORMAT.md rule 3). The archive is otherwise as NewWriter's
// and as deterministic. Otherwise Close reads the members twice, as
// NewWriter's.
// f must not buffer: the reservation is overwritten through WriteAt
// before Close returns.
func NewFileWriter(f File, header Manifest, opts *WriterOptions) *Writer {
	w := NewWriter(f, header, opts)
	w.at = f
	return w
}

// placeholderDigest has a real digest's length.
var placeholderDigest = Digest(digestPrefix + string(bytes.Repeat([]byte{'0'}, 2*sha256.Size)))

// standInDigest is a random-looking digest of a real one's length for the
// member name, different for each try: what a manifest's compressed
// length is estimated with.
func standInDigest(name string, try int) Digest {
	return DigestBytes(append([]byte{byte(try)}, name...))
}

const (
	// standIns is how many stand-in manifests the reservation is the
	// largest frame of.
	standIns = 3
	// MaxManifestPad is the largest zstd skippable frame that may pad the
	// manifest's frame (FORMAT.md rule 3).
	MaxManifestPad = 64 << 10
)

// manifestMargin is what the manifest's reservation adds to the largest
// stand-in frame of n bytes: the frames of random digests vary by about
// 1% (48 bytes over 20,000 draws for a 2.8 KB frame of 34 digests).
func manifestMargin(n int) int { return 32 + n/32 }

// sizeAll sets the size of every member without a sum from its Source,
// and reports whether all are known.
func (w *Writer) sizeAll() (bool, error) {
	for _, e := range w.entries {
		if e.summed || e.later != nil {
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
	// The reservation: the largest frame of the stand-ins, and a margin.
	var head []byte
	var mlen int
	for try := range standIns {
		mb, err := w.manifestBytes(&m, func(e *entry) Digest {
			if e.summed {
				return e.sum.digest
			}
			return standInDigest(e.name, try)
		})
		if err != nil {
			return err
		}
		f, err := manifestFrame(w.codec, w.opts.Level, mb, m.Created)
		if err != nil {
			return err
		}
		if len(f) > len(head) {
			head = f
		}
		mlen = len(mb)
	}
	reserved := len(head)
	if w.codec.pad != nil {
		reserved += manifestMargin(reserved)
		head = w.codec.pad(head, reserved-len(head))
	}
	if _, err := w.w.Write(head); err != nil {
		return err
	}

	sw := &switchWriter{}
	if err := w.writeBody(tar.NewWriter(sw), sw, m.Created); err != nil {
		return err
	}

	mb, err := w.manifestBytes(&m, func(e *entry) Digest { return e.sum.digest })
	if err != nil {
		return err
	}
	if len(mb) != mlen {
		return &Error{Op: "write", Member: ManifestName, Err: errorf(ErrSourceChanged, "manifest length changed from %d to %d", mlen, len(mb))}
	}
	if head, err = fitManifest(w.codec, w.opts.Level, mb, m.Created, reserved); err != nil {
		return err
	}
	if _, err := w.at.WriteAt(head, 0); err != nil {
		return err
	}
	w.result, w.digest = &m, DigestBytes(mb)
	return nil
}

// manifestFrame returns the manifest's frame: the tar entry of mb,
// compressed as NewWriter compresses it (bare without compression).
func manifestFrame(c *codec, level int, mb []byte, mtime time.Time) ([]byte, error) {
	return memberFrame(c, level, ManifestName, mb, mtime, false)
}

// memberFrame returns one member's frame: its tar entry, and with end the
// archive's end blocks, compressed as one frame (bare without
// compression).
func memberFrame(c *codec, level int, name string, data []byte, mtime time.Time, end bool) ([]byte, error) {
	var out bytes.Buffer
	var enc io.WriteCloser = nopWriteCloser{&out}
	if c.newWriter != nil {
		var err error
		if enc, err = c.newWriter(&out, level); err != nil {
			return nil, err
		}
	}
	tw := tar.NewWriter(enc)
	if err := tw.WriteHeader(header(name, int64(len(data)), mtime)); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	finish := tw.Flush
	if end {
		finish = tw.Close
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// fitManifest returns the manifest's frame padded to exactly reserved
// bytes: compressed at level, or if that leaves no room or room for no
// padding (under c.minPad bytes), at another of c's levels.
func fitManifest(c *codec, level int, mb []byte, mtime time.Time, reserved int) ([]byte, error) {
	levels := append([]int{level}, c.fitLevels...)
	var sizes []int
	for _, l := range levels {
		f, err := manifestFrame(c, l, mb, mtime)
		if err != nil {
			return nil, err
		}
		if pad := reserved - len(f); pad == 0 {
			return f, nil
		} else if c.pad != nil && pad >= c.minPad {
			return c.pad(f, pad), nil
		}
		sizes = append(sizes, len(f))
	}
	return nil, &Error{Op: "write", Member: ManifestName, Err: fmt.Errorf("the manifest's frame (%v bytes at %s levels %v) does not fit the %d bytes reserved for it: write the archive again with NewWriter", sizes, c.name, levels, reserved)}
}
