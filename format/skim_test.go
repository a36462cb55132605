package format_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/klauspost/compress/zstd"
)

// skimTar is a podman-shaped legacy tar: the metadata first, a big pages
// image (bigSize bytes of 0xAA, not a multiple of the block size), then a
// few small members, one in a directory.
func skimTar(t *testing.T, bigSize int) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add(format.ConfigName, []byte(`{"name":"c"}`))
	add(format.SpecName, []byte(`{"annotations":{"io.container.manager":"libpod"}}`))
	if err := tw.WriteHeader(&tar.Header{Name: "checkpoint/", Mode: 0o700, Typeflag: tar.TypeDir}); err != nil {
		t.Fatal(err)
	}
	add("checkpoint/pages-1.img", bytes.Repeat([]byte{0xAA}, bigSize))
	add("checkpoint/pstree.img", []byte("pstree"))
	add(format.RootfsDiffName, make([]byte, 2048))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// countingSeeker counts the bytes read from a bytes.Reader, seeks apart.
type countingSeeker struct {
	*bytes.Reader
	read int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	c.read += int64(n)
	return n, err
}

// skimAll lists the archive in r with Skim, reading config.dump only, and
// returns the synthesized manifest.
func skimAll(t *testing.T, r io.Reader) *format.Manifest {
	t.Helper()
	zr, err := format.NewReader(r, &format.ReaderOptions{Skim: true})
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		switch h.Name {
		case format.ConfigName:
			if b, err := io.ReadAll(zr); err != nil || string(b) != `{"name":"c"}` {
				t.Fatalf("read %s = %q, %v", h.Name, b, err)
			}
		case format.RootfsDiffName:
			// Read part of it: the rest is skipped from where reading stopped.
			if _, err := io.ReadFull(zr, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return zr.Manifest()
}

// TestSkimSeeks lists an uncompressed legacy archive with Skim from a
// seekable source: the 8 MiB pages image is passed over by seeking (a few
// KiB read in all), every member is listed with its header size, and only
// the member read has a digest.
func TestSkimSeeks(t *testing.T) {
	const big = 8<<20 + 7
	raw := skimTar(t, big)
	src := &countingSeeker{Reader: bytes.NewReader(raw)}
	m := skimAll(t, src)
	if src.read > 16<<10 {
		t.Errorf("Skim read %d bytes of a %d-byte archive, want at most 16 KiB (headers and config.dump)", src.read, len(raw))
	}
	want := map[string]int64{format.ConfigName: 12, format.SpecName: 49, "checkpoint/pages-1.img": big, "checkpoint/pstree.img": 6, format.RootfsDiffName: 2048}
	if len(m.Members) != len(want) {
		t.Errorf("manifest lists %d members, want %d: %+v", len(m.Members), len(want), m.Members)
	}
	for _, e := range m.Members {
		if e.Size != want[e.Name] {
			t.Errorf("%s: size %d, want %d", e.Name, e.Size, want[e.Name])
		}
		if hashed := e.Digest != ""; hashed != (e.Name == format.ConfigName) {
			t.Errorf("%s: digest %q; only what was read (config.dump) is hashed", e.Name, e.Digest)
		}
	}
	// The same archive without Skim: every member hashed, the same sizes.
	zr, err := format.NewReader(bytes.NewReader(raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for {
		if _, err := zr.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range zr.Manifest().Members {
		if e.Size != want[e.Name] || e.Digest == "" {
			t.Errorf("without Skim: %s size %d digest %q", e.Name, e.Size, e.Digest)
		}
	}
}

// TestSkimCompressed lists a zstd legacy archive with Skim: the sizes come
// from the headers, what is not read is not hashed.
func TestSkimCompressed(t *testing.T) {
	raw := skimTar(t, 1<<20)
	var z bytes.Buffer
	zw, err := zstd.NewWriter(&z)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(raw)
	zw.Close()
	m := skimAll(t, bytes.NewReader(z.Bytes()))
	if e := m.Member("checkpoint/pages-1.img"); e == nil || e.Size != 1<<20 || e.Digest != "" {
		t.Errorf("pages-1.img in the manifest: %+v, want size 1 MiB and no digest", e)
	}
	if e := m.Member(format.ConfigName); e == nil || e.Digest == "" {
		t.Errorf("config.dump in the manifest: %+v, want its digest (it was read)", e)
	}
}

// TestSkimTruncated: seeking past a member does not hide a truncation,
// at a header boundary (no end blocks) or inside the member skipped.
func TestSkimTruncated(t *testing.T) {
	raw := skimTar(t, 1<<20)
	// The end of pages-1.img's content and padding: where pstree.img's
	// header starts.
	at := bytes.Index(raw, []byte("checkpoint/pstree.img"))
	for name, n := range map[string]int{"at a header": at, "inside pages-1.img": at - 4096, "end blocks cut": len(raw) - 1024 - 512} {
		t.Run(name, func(t *testing.T) {
			zr, err := format.NewReader(bytes.NewReader(raw[:n]), &format.ReaderOptions{Skim: true})
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			for {
				_, err = zr.Next()
				if err != nil {
					break
				}
			}
			if !errors.Is(err, format.ErrFormat) || !strings.Contains(err.Error(), "truncated") {
				t.Errorf("Next() at the end = %v, want a truncated archive", err)
			}
		})
	}
}

// TestSkimV1 reads a v1 archive with Skim as without it: a damaged member
// nobody reads still fails its digest check.
func TestSkimV1(t *testing.T) {
	var b bytes.Buffer
	w := format.NewWriter(&b, format.Manifest{Engine: format.Engine{Name: "ckpt"}}, &format.WriterOptions{Compression: format.None, Concurrency: 1})
	if err := w.AddBytes("checkpoint/pages-1.img", bytes.Repeat([]byte("page"), 4096)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	i := bytes.Index(raw, []byte("pagepage"))
	raw[i] ^= 1
	err := skimArchive(&countingSeeker{Reader: bytes.NewReader(raw)}, &format.ReaderOptions{Skim: true})
	if !errors.Is(err, format.ErrChecksum) {
		t.Errorf("Skim of a v1 archive with a damaged member = %v, want ErrChecksum", err)
	}
}
