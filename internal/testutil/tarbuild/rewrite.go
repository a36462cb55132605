package tarbuild

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// RewriteZstd returns the zstd-compressed tar at path (a legacy archive,
// such as podman's) with the content of member name replaced by edit of
// it, every other member as it was, compressed with zstd again. It fails
// t if path has no such member.
func RewriteZstd(t testing.TB, path, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(testutil.OpenZstd(t, path)), tar.NewWriter(&out)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			b, found = edit(b), true
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatalf("%s has no member %s", path, name)
	}
	return Zstd(out.Bytes())
}
