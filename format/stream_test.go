package format_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// writeStreamed writes the members of golden source src, and extra as a
// pages image streamed in parts, into a streamed archive.
func writeStreamed(t *testing.T, c format.Compression, src string, extra []byte) ([]byte, *format.Manifest) {
	t.Helper()
	g, err := readGoldenSrc(src)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sw, err := format.NewStreamWriter(&out, g.header, &format.WriterOptions{Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		// Pages first, as CRIU writes them, in several parts.
		if err := sw.AddStream("checkpoint/pages-99.img", bytes.NewReader(extra)); err != nil {
			t.Fatal(err)
		}
	}
	names := slices.Sorted(mapKeys(g.members))
	slices.Reverse(names) // any order
	for _, n := range names {
		if err := sw.AddBytes(n, g.members[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	m, _ := sw.Manifest()
	return out.Bytes(), m
}

// TestStreamRoundTrip writes a streamed (v2) archive in one pass, members
// out of name order and a pages image in parts, and reads it back: Verify
// finds no problem and the manifest's members are the index's; Extract
// joins the parts; a changed byte in a part, a cut before the index and
// a member the index does not list are refused.
func TestStreamRoundTrip(t *testing.T) {
	pages := make([]byte, 2*format.PartSize+12345)
	rand.Read(pages)
	for _, c := range []format.Compression{format.Zstd, format.None} {
		t.Run(string(c), func(t *testing.T) {
			b, m := writeStreamed(t, c, "criu", nil)
			rep, err := format.Verify(bytes.NewReader(b), nil)
			if err != nil || rep.Err() != nil {
				t.Fatalf("Verify = %v, %v", err, rep.Err())
			}
			if rep.Manifest.Version != format.StreamVersion || len(rep.Manifest.Members) != len(m.Members) || len(m.Members) == 0 {
				t.Fatalf("manifest version %d, %d members, want %d members", rep.Manifest.Version, len(rep.Manifest.Members), len(m.Members))
			}
			if _, err := format.NewStreamWriter(io.Discard, format.Manifest{Engine: format.Engine{Name: "x"}}, &format.WriterOptions{Compression: format.Gzip}); !errors.Is(err, format.ErrFormat) {
				t.Errorf("gzip stream: %v, want ErrFormat", err)
			}

			checkIndexAt(t, b, m)

			// Parts, read with the Reader alone (the images are not a set).
			b, m = writeStreamed(t, c, "minimal", pages)
			checkIndexAt(t, b, m)
			got, parts := readStreamed(t, b)
			if !bytes.Equal(got["checkpoint/pages-99.img"], pages) || parts != 3 {
				t.Fatalf("pages read back %d bytes in %d parts, want %d in 3", len(got["checkpoint/pages-99.img"]), parts, len(pages))
			}
			dir := t.TempDir()
			_, err = format.Extract(context.Background(), bytes.NewReader(b), dir, nil)
			if err == nil || !strings.Contains(err.Error(), "inventory.img") {
				t.Fatalf("Extract of a pages image alone: %v, want the image set's problem", err)
			}
			if c != format.None {
				return
			}
			// Plain tar: change a byte of the second part.
			bad := slices.Clone(b)
			i := bytes.Index(bad, pages[format.PartSize+100:format.PartSize+164])
			bad[i] ^= 1
			if _, _, err := readStreamedErr(bad); !errors.Is(err, format.ErrChecksum) {
				t.Errorf("a changed byte in a part: %v, want ErrChecksum", err)
			}
			// The index names another manifest, or another digest.
			k := bytes.LastIndex(b, []byte(`"manifest": "sha256:`)) + len(`"manifest": "sha256:`)
			for _, at := range []int{k, bytes.LastIndex(b, []byte(`"digest": "sha256:`)) + len(`"digest": "sha256:`)} {
				bad := slices.Clone(b)
				bad[at] = '0' // another hex digit
				if b[at] == '0' {
					bad[at] = '1'
				}
				if _, _, err := readStreamedErr(bad); !errors.Is(err, format.ErrChecksum) {
					t.Errorf("index edited at %d: %v, want ErrChecksum", at, err)
				}
			}
			// Cut before the index frame, with end blocks after it.
			j := bytes.LastIndex(b, []byte(format.IndexName))
			cut := append(slices.Clone(b[:j]), make([]byte, 1024)...) // j: the index entry's header
			if _, _, err := readStreamedErr(cut); !errors.Is(err, format.ErrFormat) {
				t.Errorf("no index: %v, want ErrFormat", err)
			}
		})
	}
}

func readStreamed(t *testing.T, b []byte) (map[string][]byte, int) {
	t.Helper()
	got, parts, err := readStreamedErr(b)
	if err != nil {
		t.Fatal(err)
	}
	return got, parts
}

func readStreamedErr(b []byte) (map[string][]byte, int, error) {
	zr, err := format.NewReader(bytes.NewReader(b), nil)
	if err != nil {
		return nil, 0, err
	}
	defer zr.Close()
	got, parts := map[string][]byte{}, 0
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return got, parts, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if h.Name == "checkpoint/pages-99.img" {
			parts++
		}
		d, err := io.ReadAll(zr)
		if err != nil {
			return nil, 0, err
		}
		got[h.Name] = append(got[h.Name], d...)
	}
}

// checkIndexAt checks that ReadManifest and ReadIndexAt give the members
// of the streamed archive b (want) reading under 1 MiB of it.
func checkIndexAt(t *testing.T, b []byte, want *format.Manifest) {
	t.Helper()
	cr := &countingReaderAt{r: bytes.NewReader(b)}
	m, d, err := format.ReadManifest(io.NewSectionReader(cr, 0, int64(len(b))))
	if err != nil {
		t.Fatal(err)
	}
	got, err := format.ReadIndexAt(cr, int64(len(b)), m, d)
	if err != nil {
		t.Fatalf("ReadIndexAt: %v", err)
	}
	if !slices.Equal(got.Members, want.Members) || cr.n.Load() >= 1<<20 {
		t.Errorf("ReadIndexAt read %d bytes, %d members, want under 1 MiB and %d members", cr.n.Load(), len(got.Members), len(want.Members))
	}
	if _, err := format.ReadIndexAt(cr, int64(len(b))-100, m, d); err == nil {
		t.Errorf("ReadIndexAt of a cut archive found an index")
	}
}
