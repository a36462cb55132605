package format_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/archtest"
)

// smallArchive returns a v1 archive of one member, uncompressed.
func smallArchive(t *testing.T) []byte {
	t.Helper()
	man := &format.Manifest{Engine: format.Engine{Name: "ckpt"}}
	return archtest.Write(t, man, map[string][]byte{format.ConfigName: []byte("{}")}, format.None)
}

// TestTrailingPadding: FORMAT.md §8 allows at most MaxTrailingPadding zero
// bytes after the tar stream's end blocks.
func TestTrailingPadding(t *testing.T) {
	a := smallArchive(t)
	if err := readArchive(bytes.NewReader(append(bytes.Clone(a), make([]byte, format.MaxTrailingPadding)...)), nil); err != nil {
		t.Errorf("archive + %d zero bytes: %v, want no error", format.MaxTrailingPadding, err)
	}
	err := readArchive(bytes.NewReader(append(bytes.Clone(a), make([]byte, format.MaxTrailingPadding+512)...)), nil)
	if !errors.Is(err, format.ErrFormat) || !strings.Contains(err.Error(), "padding") {
		t.Errorf("archive + %d zero bytes: %v, want ErrFormat naming the padding", format.MaxTrailingPadding+512, err)
	}
	rep, err := format.Verify(bytes.NewReader(append(bytes.Clone(a), make([]byte, format.MaxTrailingPadding+512)...)), nil)
	if err != nil || !errors.Is(rep.Err(), format.ErrFormat) {
		t.Errorf("Verify(archive + too much padding) = %v, %v, want a problem", rep.Err(), err)
	}
}

// TestZstdWindow: FORMAT.md §8 caps a zstd frame's window at
// MaxDecoderWindow, which bounds the decoder's memory: a frame that asks
// for a larger window is refused before it is decoded.
func TestZstdWindow(t *testing.T) {
	tarStream := smallArchive(t)
	// The encoder shrinks the window to what the content needs; the
	// frame header's window descriptor (RFC 8878 3.1.1.1.2, the byte
	// after the frame header descriptor) then says 2^log bytes instead.
	frame := func(log int) []byte {
		var b bytes.Buffer
		w, err := zstd.NewWriter(&b, zstd.WithSingleSegment(false))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(tarStream); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f := b.Bytes()
		if f[4]&0x20 != 0 {
			t.Fatal("a single-segment frame has no window descriptor")
		}
		f[5] = byte(log-10) << 3
		var h zstd.Header
		if err := h.Decode(f); err != nil || h.WindowSize != 1<<log {
			t.Fatalf("frame header %+v, %v: want a window of %d bytes", h, err, 1<<log)
		}
		return f
	}
	const maxLog = 25 // format.MaxDecoderWindow
	if format.MaxDecoderWindow != 1<<maxLog {
		t.Fatalf("MaxDecoderWindow = %d, want %d", format.MaxDecoderWindow, 1<<maxLog)
	}
	if err := readArchive(bytes.NewReader(frame(maxLog)), nil); err != nil {
		t.Errorf("a frame with a %d-byte window: %v", 1<<maxLog, err)
	}
	if err := readArchive(bytes.NewReader(frame(maxLog+1)), nil); !errors.Is(err, format.ErrCompression) {
		t.Errorf("a frame with a %d-byte window: %v, want ErrCompression", 1<<(maxLog+1), err)
	}
}

// TestZstdDecoderMemory: FORMAT.md §8 bounds a reader's zstd decoder at
// MaxDecoderMemory; the window cap is what holds it there. A frame that
// uses its whole window (a member whose second half repeats its first,
// MaxDecoderWindow apart) is decoded with fewer allocations than that.
func TestZstdDecoderMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB")
	}
	half := make([]byte, format.MaxDecoderWindow)
	for i := range half {
		half[i] = byte(i*7919 + i>>13)
	}
	man := &format.Manifest{Engine: format.Engine{Name: "ckpt"}}
	tarStream := archtest.Write(t, man, map[string][]byte{format.ConfigName: []byte("{}"),
		format.RootfsDiffName: append(bytes.Clone(half), half...)}, format.None)
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, zstd.WithWindowSize(format.MaxDecoderWindow), zstd.WithSingleSegment(false),
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(tarStream); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Len() > len(half)*3/2 {
		t.Fatalf("the frame is %d bytes for %d: its second half was not found in the window", b.Len(), 2*len(half))
	}
	var err2 error
	n := allocated(func() { err2 = readArchive(bytes.NewReader(b.Bytes()), nil) })
	t.Logf("decoding a frame with a %d MiB window allocated %d MiB", format.MaxDecoderWindow>>20, n>>20)
	if err2 != nil || n > format.MaxDecoderMemory {
		t.Errorf("reading the archive = %v after allocating %d bytes, want nil within %d", err2, n, format.MaxDecoderMemory)
	}
}
