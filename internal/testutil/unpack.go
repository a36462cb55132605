package testutil

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// OpenZstd returns the decompressed content of the zstd file; the file
// and the decoder are closed when t ends.
func OpenZstd(t testing.TB, file string) io.Reader {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zr.Close)
	return zr
}

// UnzstdFile decompresses the zstd file src into the file dst.
func UnzstdFile(t testing.TB, src, dst string) {
	t.Helper()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, OpenZstd(t, src)); err != nil {
		t.Fatal(err)
	}
}

// UnpackZstdTar unpacks the zstd-compressed tar file (a fixture of the
// repository: its regular files and directories only, each kept below
// dir) into dir and returns dir.
func UnpackZstdTar(t testing.TB, file, dir string) string {
	t.Helper()
	tr := tar.NewReader(OpenZstd(t, file))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
		default:
			t.Fatalf("%s: %s is not a file or directory", file, h.Name)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
