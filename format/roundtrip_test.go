package format

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testCreated = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func testHeader() Manifest {
	return Manifest{
		Created:   testCreated,
		Engine:    Engine{Name: "ckpt", Version: "test"},
		Container: Container{Name: "c1", ID: "0123456789abcdef", Image: "counter", ImageID: "sha256:aa"},
		Host:      Host{Kernel: "6.18", Arch: "amd64", CRIUVersion: "4.1.1"},
	}
}

// writeTest writes an archive of members (name -> content) and returns it.
func writeTest(t testing.TB, c Compression, members map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, testHeader(), &WriterOptions{Compression: c})
	for name, content := range members {
		if err := w.AddBytes(name, []byte(content)); err != nil {
			t.Fatalf("AddBytes(%q) = %v", name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return buf.Bytes()
}

// readAll reads every member and returns name -> content.
func readAll(t testing.TB, b []byte) (map[string]string, *Reader, error) {
	t.Helper()
	zr, err := NewReader(bytes.NewReader(b), nil)
	if err != nil {
		return nil, nil, err
	}
	defer zr.Close()
	got := map[string]string{}
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return got, zr, nil
		}
		if err != nil {
			return got, zr, err
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return got, zr, err
		}
		got[h.Name] = string(data)
	}
}

var sampleMembers = map[string]string{
	ConfigName:                 `{"id":"0123"}`,
	SpecName:                   `{"ociVersion":"1.2.0"}`,
	"checkpoint/inventory.img": "inventory",
	"checkpoint/pages-1.img":   strings.Repeat("\x00page", 4096),
	RootfsDiffName:             "",
	"volumes/data.tar":         "volume",
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []Compression{Zstd, Gzip, None} {
		t.Run(string(c), func(t *testing.T) {
			b := writeTest(t, c, sampleMembers)
			got, zr, err := readAll(t, b)
			if err != nil {
				t.Fatalf("read = %v", err)
			}
			if zr.Legacy() || zr.Compression() != c {
				t.Errorf("Legacy() = %v, Compression() = %v, want false, %v", zr.Legacy(), zr.Compression(), c)
			}
			if len(got) != len(sampleMembers) {
				t.Errorf("read %d members, want %d", len(got), len(sampleMembers))
			}
			for k, v := range sampleMembers {
				if got[k] != v {
					t.Errorf("member %q = %q, want %q", k, truncate(got[k], 20), truncate(v, 20))
				}
			}
			// Deterministic: the same inputs give the same bytes.
			if b2 := writeTest(t, c, sampleMembers); !bytes.Equal(b, b2) {
				t.Errorf("second write differs from the first")
			}
			m, d, err := ReadManifest(bytes.NewReader(b))
			if err != nil || d != zr.ManifestDigest() || len(m.Members) != len(sampleMembers) {
				t.Errorf("ReadManifest() = %v, %v, %v", m, d, err)
			}
		})
	}
}

// TestExtract extracts sampleMembers without its stand-in CRIU images,
// which are no image set (Extract checks them as Verify does: below).
func TestExtract(t *testing.T) {
	plain := map[string]string{}
	for k, v := range sampleMembers {
		if !strings.HasPrefix(k, CheckpointDir+"/") {
			plain[k] = v
		}
	}
	b := writeTest(t, Zstd, plain)
	dir := t.TempDir()
	if _, err := Extract(context.Background(), bytes.NewReader(b), dir, nil); err != nil {
		t.Fatalf("Extract() = %v", err)
	}
	for k, v := range plain {
		data, err := os.ReadFile(filepath.Join(dir, k))
		if err != nil || string(data) != v {
			t.Errorf("extracted %s = %q, %v", k, truncate(string(data), 20), err)
		}
	}
	// A corrupted archive leaves the directory empty.
	nb := writeTest(t, None, sampleMembers)
	i := bytes.LastIndex(nb, []byte("volume"))
	nb[i] ^= 1
	dir2 := t.TempDir()
	_, err := Extract(context.Background(), bytes.NewReader(nb), dir2, nil)
	if !errors.Is(err, ErrChecksum) {
		t.Errorf("Extract(corrupt) = %v, want ErrChecksum", err)
	}
	if ents, _ := os.ReadDir(dir2); len(ents) != 0 {
		t.Errorf("Extract(corrupt) left %d entries", len(ents))
	}
	// The stand-in images are refused, as Verify refuses them.
	dir3 := t.TempDir()
	_, err = Extract(context.Background(), bytes.NewReader(writeTest(t, None, sampleMembers)), dir3, nil)
	if !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), "checkpoint/inventory.img") {
		t.Errorf("Extract(stand-in images) = %v, want ErrImage naming checkpoint/inventory.img", err)
	}
	if ents, _ := os.ReadDir(dir3); len(ents) != 0 {
		t.Errorf("Extract(stand-in images) left %d entries", len(ents))
	}
}
