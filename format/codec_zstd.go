package format

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// Zstd is the default compression: zstd frames.
const Zstd Compression = "zstd"

// zstdCodec is the default compression. Its reader caps the decoder's
// window and memory and refuses skippable frames but the manifest's
// padding (zstdFrames); its frames that would not compress are written
// as raw blocks straight from the frame buffer.
var zstdCodec = &codec{
	name:  Zstd,
	magic: []byte{0x28, 0xb5, 0x2f, 0xfd},
	newReader: func(r io.Reader, concurrency int) (io.ReadCloser, error) {
		zf := &zstdFrames{r: r}
		d, err := zstd.NewReader(zf,
			zstd.WithDecoderConcurrency(concurrency),
			zstd.WithDecoderMaxWindow(MaxDecoderWindow),
			zstd.WithDecoderMaxMemory(MaxDecoderMemory),
			zstd.WithDecoderLowmem(concurrency == 1))
		if err != nil {
			return nil, errorf(ErrCompression, "zstd: %v", err)
		}
		return &decodeErrReader{r: d, close: func() error { d.Close(); return nil }, cause: func() error { return zf.err }}, nil
	},
	newWriter: func(w io.Writer, level int) (frameCompressor, error) {
		lvl := zstd.SpeedDefault
		if level != 0 {
			lvl = zstd.EncoderLevelFromZstd(level)
		}
		return zstd.NewWriter(w, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	},
	writeStored: writeRawZstdFrame,
	pad:         appendZstdPad,
	minPad:      8,
	fitLevels:   []int{1, 3, 7, 11},
}

// zstdFrames passes a zstd stream through to the decoder, following its
// frame and block headers, and fails on a skippable frame: the decoder
// skips those silently, so bytes that no digest covers could ride along
// before, between or after the archive's frames. The one exception is the
// manifest's padding (FORMAT.md rule 3): right after the first frame, one
// skippable frame of magic 0x184D2A50 and at most MaxManifestPad zero
// bytes. Anything else it does not understand it passes on for the
// decoder to reject.
type zstdFrames struct {
	r        io.Reader
	off      int64  // stream offset of the next byte
	skip     int64  // block content (or checksum) bytes still to pass
	hdr      []byte // header bytes gathered so far
	state    int
	fhdRest  int   // frame header bytes after the descriptor
	checksum bool  // the current frame ends with a checksum
	frames   int   // frames begun so far
	padded   bool  // the manifest's padding was seen
	padAt    int64 // where it begins
	zeros    int64
	err      error
}

const (
	zfMagic   = iota // gathering a frame's 4 magic bytes
	zfFHD            // its frame header descriptor
	zfFHDRest        // the rest of its frame header
	zfBlock          // a 3-byte block header
	zfPadSize        // the 4-byte size of the manifest's padding
	zfZeros          // its content
	zfPass           // not understood: pass everything on
)

func (z *zstdFrames) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	n, err := z.r.Read(p)
	if serr := z.scan(p[:n]); serr != nil {
		z.err = serr
		return n, serr
	}
	return n, err
}

func (z *zstdFrames) need() int {
	switch z.state {
	case zfMagic:
		return 4
	case zfFHD:
		return 1
	case zfFHDRest:
		return z.fhdRest
	case zfPadSize:
		return 4
	}
	return 3
}

func (z *zstdFrames) scan(b []byte) error {
	for len(b) > 0 {
		if z.state == zfPass {
			return nil
		}
		if z.state == zfZeros {
			k := min(int64(len(b)), z.zeros)
			if !allZero(b[:k]) {
				return errorf(ErrCompression, "skippable zstd frame at byte %d: data outside the archive (the manifest's padding holds zeros only)", z.padAt)
			}
			z.zeros -= k
			z.off += k
			b = b[k:]
			if z.zeros == 0 {
				z.state = zfMagic
			}
			continue
		}
		if z.skip > 0 {
			k := min(int64(len(b)), z.skip)
			z.skip -= k
			z.off += k
			b = b[k:]
			continue
		}
		need := z.need()
		k := min(need-len(z.hdr), len(b))
		z.hdr = append(z.hdr, b[:k]...)
		z.off += int64(k)
		b = b[k:]
		if len(z.hdr) < need {
			return nil
		}
		h := z.hdr
		z.hdr = z.hdr[:0]
		switch z.state {
		case zfMagic:
			m := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16 | uint32(h[3])<<24
			switch {
			case m == 0x184d2a50 && z.frames == 1 && !z.padded:
				z.state, z.padded, z.padAt = zfPadSize, true, z.off-4
			case m&0xfffffff0 == 0x184d2a50:
				return errorf(ErrCompression, "skippable zstd frame at byte %d: data outside the archive", z.off-4)
			case m == 0xfd2fb528:
				z.state = zfFHD
				z.frames++
			default:
				z.state = zfPass
			}
		case zfFHD:
			fhd := h[0]
			single := fhd&0x20 != 0
			z.checksum = fhd&0x04 != 0
			n := [4]int{0, 1, 2, 4}[fhd&3] + [4]int{0, 2, 4, 8}[fhd>>6]
			if !single {
				n++ // window descriptor
			} else if fhd>>6 == 0 {
				n++ // one-byte content size
			}
			z.fhdRest, z.state = n, zfBlock
			if n > 0 {
				z.state = zfFHDRest
			}
		case zfFHDRest:
			z.state = zfBlock
		case zfPadSize:
			n := int64(h[0]) | int64(h[1])<<8 | int64(h[2])<<16 | int64(h[3])<<24
			if n > MaxManifestPad {
				return errorf(ErrCompression, "skippable zstd frame at byte %d: %d bytes, more than the manifest's padding may have (%d)", z.padAt, n, MaxManifestPad)
			}
			z.zeros, z.state = n, zfZeros
			if n == 0 {
				z.state = zfMagic
			}
		case zfBlock:
			bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
			switch (bh >> 1) & 3 {
			case 1: // RLE: one byte
				z.skip = 1
			case 3: // reserved: the decoder rejects it
				z.state = zfPass
				continue
			default:
				z.skip = int64(bh >> 3)
			}
			if bh&1 != 0 { // last block
				if z.checksum {
					z.skip += 4
				}
				z.state = zfMagic
			}
		}
	}
	return nil
}

// writeRawZstdFrame writes a zstd frame holding b in raw (stored) blocks
// of 128 KiB, straight from b: a 4-byte content size, a 128 KiB window
// (so a decoder needs no more history than one block), no checksum (RFC
// 8878 3.1.1). b must be shorter than 4 GiB.
func writeRawZstdFrame(w io.Writer, b []byte) error {
	const maxBlock = 128 << 10
	// Frame header descriptor 0x80: a 4-byte content size, not single
	// segment, no checksum; window descriptor 0x38: 2^(10+7) bytes.
	hdr := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x38, byte(len(b)), byte(len(b) >> 8), byte(len(b) >> 16), byte(len(b) >> 24)}
	for {
		n := min(len(b), maxBlock)
		bh := uint32(n) << 3 // Raw_Block
		if n == len(b) {
			bh |= 1 // Last_Block
		}
		hdr = append(hdr, byte(bh), byte(bh>>8), byte(bh>>16))
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		hdr, b = hdr[:0], b[n:]
		if len(b) == 0 {
			return nil
		}
	}
}

// appendZstdPad appends a zstd skippable frame of n-8 zero bytes (nothing
// if n is 0): the padding of the manifest's frame that zstdFrames accepts.
func appendZstdPad(b []byte, n int) []byte {
	if n == 0 {
		return b
	}
	size := n - 8
	b = append(b, 0x50, 0x2a, 0x4d, 0x18, byte(size), byte(size>>8), byte(size>>16), byte(size>>24))
	return append(b, make([]byte, size)...)
}
