package criuimg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// tmpfsImage gzips a tar of hs (regular files get size bytes of "x").
func tmpfsImage(t *testing.T, hs ...*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, h := range hs {
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCheckTmpfs(t *testing.T) {
	dir := &tar.Header{Name: "./", Typeflag: tar.TypeDir}
	char := func(name string, maj, min int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeChar, Devmajor: maj, Devminor: min}
	}
	link := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
	}
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 3} }
	real, err := os.ReadFile("testdata/ckpt-dev.tar.gz.img")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		img     []byte
		wantErr error
		wantIn  string
	}{
		// /dev of a container ckpt ran (runc's devices, links into /proc).
		{name: "ckpt's /dev", img: real},
		{name: "podman's /dev", img: podmanMember(t, "checkpoint/tmpfs-dev-44.tar.gz.img")},
		{name: "files, links, a hard link", img: tmpfsImage(t, dir, reg("./a"), link("./fd", "/proc/self/fd"), link("./up", "../../.."),
			&tar.Header{Name: "./b", Typeflag: tar.TypeLink, Linkname: "./a"}, char("./null", 1, 3))},
		{name: "a link replaced by a directory", img: tmpfsImage(t, link("./d", "/etc"), &tar.Header{Name: "./d/", Typeflag: tar.TypeDir}, reg("./d/f")), wantErr: ErrImage, wantIn: "replaces a symbolic link"},
		{name: "/dev/mem", img: tmpfsImage(t, dir, char("./mem", 1, 1)), wantErr: ErrImage, wantIn: "(1:1)"},
		{name: "a block device", img: tmpfsImage(t, &tar.Header{Name: "./sda", Typeflag: tar.TypeBlock, Devmajor: 8}), wantErr: ErrImage},
		{name: "a FIFO", img: tmpfsImage(t, &tar.Header{Name: "./p", Typeflag: tar.TypeFifo}), wantErr: ErrImage},
		{name: "dot-dot", img: tmpfsImage(t, reg("./../etc/x")), wantErr: ErrImage, wantIn: "leaves the mount"},
		{name: "absolute", img: tmpfsImage(t, reg("/etc/x")), wantErr: ErrImage, wantIn: "leaves the mount"},
		{name: "below a link", img: tmpfsImage(t, link("./x", "/etc"), reg("./x/shadow")), wantErr: ErrImage, wantIn: `below the symbolic link "x"`},
		{name: "deep below a link", img: tmpfsImage(t, link("./x", "/"), reg("./x/etc/y/z")), wantErr: ErrImage},
		{name: "hard link to nothing earlier", img: tmpfsImage(t, &tar.Header{Name: "./b", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}), wantErr: ErrImage},
		{name: "not gzip", img: []byte("plain"), wantErr: ErrImage},
		{name: "cut short", img: real[:len(real)-20], wantErr: ErrImage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTmpfs("tmpfs-dev-43.tar.gz.img", bytes.NewReader(tc.img), nil)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckTmpfs() = %v, want %v", err, tc.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), tc.wantIn) || !strings.HasPrefix(err.Error(), "tmpfs-dev-43.tar.gz.img")) {
				t.Errorf("CheckTmpfs() = %q, want it to name the file and contain %q", err, tc.wantIn)
			}
		})
	}
}

func TestCheckTmpfsLimits(t *testing.T) {
	hs := make([]*tar.Header, MaxTmpfsEntries+1)
	for i := range hs {
		hs[i] = &tar.Header{Name: "./d/", Typeflag: tar.TypeDir}
	}
	if err := CheckTmpfs("tmpfs-dev-1.tar.gz.img", bytes.NewReader(tmpfsImage(t, hs...)), nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("CheckTmpfs(%d entries) = %v, want ErrTooLarge", len(hs), err)
	}
	c := &capReader{r: strings.NewReader("abcdef"), n: 4}
	if b, err := io.ReadAll(c); !errors.Is(err, ErrTooLarge) || string(b) != "abcd" {
		t.Errorf("capReader over its cap = %q, %v, want abcd and ErrTooLarge", b, err)
	}
	c = &capReader{r: strings.NewReader("abcd"), n: 4}
	if b, err := io.ReadAll(c); err != nil || string(b) != "abcd" {
		t.Errorf("capReader at its cap = %q, %v", b, err)
	}
}

// podmanMember reads a member of the podman archive in the top-level
// testdata.
func podmanMember(t *testing.T, name string) []byte {
	t.Helper()
	return tarbuild.Member(t, "../../testdata/podman/counter.tar", name)
}
