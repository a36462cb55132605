// Package archtest reads and rewrites checkpoint archives for tests: the
// members of an archive as a map, and a valid v1 archive (fresh sizes and
// digests) from such a map, so that a test can change what a member holds
// and still get past the digests. It is a test helper, not API.
package archtest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sort"
	"testing"

	"github.com/ckpt/ckpt/format"
)

// Members reads every member of the archive at path (v1 or legacy) and
// returns its manifest and the members' contents by name.
func Members(t testing.TB, path string) (*format.Manifest, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := format.NewReader(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return zr.Manifest(), out
		}
		if err != nil {
			t.Fatal(err)
		}
		if out[h.Name], err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
}

// Write returns members as a v1 archive with man's header (its member
// list is made anew): every digest matches, whatever the members hold.
func Write(t testing.TB, man *format.Manifest, members map[string][]byte, c format.Compression) []byte {
	t.Helper()
	hdr := *man
	hdr.Members = nil
	var buf bytes.Buffer
	w := format.NewWriter(&buf, hdr, &format.WriterOptions{Compression: c})
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := w.AddBytes(n, members[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
