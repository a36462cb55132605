package inspect

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readBytes returns this process's rchar: the bytes its read system calls
// returned so far.
func readBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no rchar:\n%s", b)
	return 0
}

// TestShowLegacyUncompressedSeeks shows an uncompressed podman archive
// with a 64 MiB pages image: every size is there, read from the tar
// headers, and show reads less than 1 MiB of the file (it seeks from
// header to header). Not parallel: rchar counts the whole process.
func TestShowLegacyUncompressedSeeks(t *testing.T) {
	const pages = 64 << 20
	raw, ckptSize := podmanTar(t, pages)
	p := filepath.Join(t.TempDir(), "big.tar")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	raw = nil
	before := readBytes(t)
	s, err := Show(context.Background(), p, nil)
	read := readBytes(t) - before
	if err != nil {
		t.Fatal(err)
	}
	if s.Unknown != nil || s.PagesSize != pages || s.CheckpointSize != ckptSize || s.RootfsDiffSize != 2048 || s.Name != "ckpt-mkpodman" {
		t.Errorf("Show() = %+v, want pages %d, checkpoint %d, rootfs diff 2048, name ckpt-mkpodman", s, pages, ckptSize)
	}
	if read > 1<<20 {
		t.Errorf("Show() read %d bytes of a %d-byte uncompressed archive, want at most 1 MiB", read, pages)
	}
	t.Logf("Show() read %d bytes", read)
}
