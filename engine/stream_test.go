package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/volumes"
)

// TestStreamExport exports a counter with 40 MiB of ballast as a streamed
// archive through a pipe (ExportOptions.Output), as `ckpt checkpoint -e -`
// does: the archive is version 2, its pages image came in parts while CRIU
// dumped (no pages image was ever a file), Verify finds no problem, and
// it imports on a second engine root where the counter continues, the
// container layer and volume with it. The source, stopped by the export,
// is exited, not checkpointed: its images are in the archive only.
func TestStreamExport(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-write-files", "-interval", "50ms", "-file", "/data/counter", "-ballast-mb", "40"}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "str", Command: cmd, Volumes: []string{"vol1:/data"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "str", "counter 5", func(l string) bool { return lastCounter(l) >= 5 })
	archive := filepath.Join(t.TempDir(), "str.tar.zst")
	pr, pw := io.Pipe()
	copied := make(chan error, 1)
	go func() {
		f, err := os.Create(archive)
		if err == nil {
			_, err = io.Copy(f, pr)
			f.Close()
		}
		pr.CloseWithError(err)
		copied <- err
	}()
	var progress int64
	xr, err := src.Export(ctx, "str", "-", &ExportOptions{Output: pw, Progress: func(n int64) { progress = n }})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(archive)
	if err != nil || fi.Size() != xr.Size || progress != xr.Size {
		t.Fatalf("archive %v size %v, result size %d, progress %d", err, fi, xr.Size, progress)
	}
	if xr.Container.Status != StatusExited {
		t.Errorf("after a streamed export: %s, want exited", xr.Container.Status)
	}
	at := lastCounter(logsOf(t, src, "str"))
	t.Logf("exported at counter %d in %v (runc %v), %d bytes, frozen %v; phases %v", at, xr.Total, xr.Runtime, xr.Size, xr.Frozen, xr.Phases)

	af, _ := os.Open(archive)
	rep, err := format.Verify(af, nil)
	af.Close()
	if err != nil || rep.Err() != nil {
		t.Fatalf("Verify = %v, %v", err, rep.Err())
	}
	if rep.Manifest.Version != format.StreamVersion {
		t.Errorf("archive version %d, want %d", rep.Manifest.Version, format.StreamVersion)
	}
	for _, name := range []string{format.ConfigName, format.SpecName, format.CPUInfoName, format.RootfsDiffName,
		volumes.MemberName("vol1"), "checkpoint/inventory.img", "checkpoint/pages-1.img", "checkpoint/descriptors.json"} {
		if rep.Manifest.Member(name) == nil {
			t.Errorf("archive has no %s", name)
		}
	}
	if m := rep.Manifest.Member("checkpoint/pages-1.img"); m == nil || m.Size < 40<<20 {
		t.Errorf("pages-1.img = %+v, want the 40 MiB ballast in it", m)
	}
	if parts := entriesNamed(t, archive, "checkpoint/pages-1.img"); parts < 5 {
		t.Errorf("pages-1.img in %d entries, want parts of %d bytes (streamed while CRIU wrote it)", parts, format.PartSize)
	}

	ir, err := dst.Import(ctx, archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ir.Container
	log := waitLog(t, dst, "str", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
	if got := readFile(t, filepath.Join(c.Rootfs, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
}

// entriesNamed counts the tar entries of name in the archive at path.
func entriesNamed(t *testing.T, path, name string) int {
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
	n := 0
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			n++
		}
	}
}

var _ = strings.Contains
