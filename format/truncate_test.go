package format_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// cutPoints returns where to cut an archive of n bytes (archive/tar's
// TestReadTruncation): an uncompressed one at every block boundary and the
// bytes either side of it, and at every byte of its first blocks (header
// and manifest) and last blocks (the end blocks); a compressed one at every
// byte of its first KiB (the manifest's frame), then at a prime stride,
// and at every byte of its last 64 (the final checksums). Every cut is a
// strict prefix. testing.Short thins the byte-by-byte stretches further.
func cutPoints(n int, c format.Compression) []int {
	const head = 2048
	// Big archives cost a full read per cut near their end: their
	// byte-by-byte stretches are sampled at a prime stride.
	stride, prime := 1, 61
	if n > 16<<10 {
		stride, prime = 13, 157
	}
	if testing.Short() {
		stride *= 5
	}
	var cuts []int
	for i := 0; i < n; i++ {
		var cut bool
		if c == format.None {
			r := i % tarbuild.BlockSize
			cut = r == 0 || (r == 1 || r == tarbuild.BlockSize-1 || i < head || i >= n-3*tarbuild.BlockSize) && i%stride == 0
		} else {
			cut = i%prime == 0 || (i < head/2 || i >= n-64) && i%stride == 0
		}
		if cut {
			cuts = append(cuts, i)
		}
	}
	return cuts
}

// extractCuts is how many cuts of each golden the truncation test also
// extracts: extraction costs file system calls (a file created and removed
// per member), so it samples the cuts evenly rather than taking them all.
const extractCuts = 64

// TestReadTruncation cuts every golden archive short and requires a clean
// error from NewReader+read-all, Verify and Extract: no panic, no hang, no
// success, and nothing extracted.
func TestReadTruncation(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.ckpt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c := format.None
			switch {
			case strings.Contains(file, ".zstd."):
				c = format.Zstd
			case strings.Contains(file, ".gzip."):
				c = format.Gzip
			}
			if err := readArchive(bytes.NewReader(b), nil); err != nil {
				t.Fatalf("read whole %s = %v", file, err)
			}
			s := newStage(t)
			opts := &format.ReaderOptions{Concurrency: 1}
			cuts := cutPoints(len(b), c)
			every := max(1, len(cuts)/extractCuts)
			for k, n := range cuts {
				cut := b[:n]
				withTimeout(t, "truncated read", func() {
					err := readArchive(bytes.NewReader(cut), opts)
					if !errors.Is(err, format.ErrFormat) && !errors.Is(err, format.ErrCompression) {
						t.Errorf("read of %d of %d bytes = %v, want ErrFormat or ErrCompression", n, len(b), err)
					}
					rep, err := format.Verify(bytes.NewReader(cut), &format.VerifyOptions{Reader: *opts})
					if err != nil || rep.Err() == nil {
						t.Errorf("Verify of %d of %d bytes = %v, %v, want a problem", n, len(b), rep.Err(), err)
					}
					if k%every != 0 {
						return
					}
					_, err = format.Extract(context.Background(), bytes.NewReader(cut), s.dir, &format.ExtractOptions{Reader: *opts})
					if err == nil {
						t.Errorf("Extract of %d of %d bytes = nil, want error", n, len(b))
					}
				})
				if ents, _ := os.ReadDir(s.dir); len(ents) != 0 {
					t.Fatalf("Extract of %d of %d bytes left %d entries", n, len(b), len(ents))
				}
				if t.Failed() {
					return
				}
			}
			s.check(t, true)
		})
	}
}
