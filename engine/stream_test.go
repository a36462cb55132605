package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	if m := rep.Manifest; m.Version != format.StreamVersion || m.Container.Name != "str" || m.Container.ID != xr.Container.ID || m.Host.CRIUVersion == "" {
		t.Errorf("archive version %d, container %+v, host %+v: want version %d naming str", m.Version, m.Container, m.Host, format.StreamVersion)
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

// openArchive opens the archive at path for reading, closed when t ends.
func openArchive(t *testing.T, path string) *format.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := format.NewReader(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	return zr
}

// entriesNamed counts the tar entries of name in the archive at path.
func entriesNamed(t *testing.T, path, name string) int {
	t.Helper()
	zr := openArchive(t, path)
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

// cutWriter passes writes on until n bytes were written or, with at set,
// until a write holds at (in a plain archive, a member's tar header),
// then fails as a pipe whose reader went away does.
type cutWriter struct {
	w  io.Writer
	n  int64
	at string
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.at != "" && strings.Contains(string(p), c.at) || c.at == "" && int64(len(p)) > c.n {
		return 0, syscall.EPIPE
	}
	c.n -= int64(len(p))
	return c.w.Write(p)
}

// TestStreamExportBrokenPipe breaks the archive's stream of a streamed
// export at several points: in the manifest, in the pages while CRIU
// dumps them, after the dump (config.dump), at the index (the last
// write), and through a
// real pipe whose reader closed it. Each export fails saying the archive
// is incomplete, and the container runs on (its counter goes on, not
// frozen), without the dump's images or FIFOs left behind; a last
// streamed export with -R succeeds.
func TestStreamExportBrokenPipe(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "50ms", "-ballast-mb", "32"}
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "cut", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "cut", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	closed := func() io.Writer {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		t.Cleanup(func() { w.Close() })
		return w
	}
	for _, tc := range []struct {
		name string
		out  func() io.Writer
		comp format.Compression
	}{
		{"manifest", func() io.Writer { return &cutWriter{w: io.Discard, n: 0} }, ""},
		{"pages", func() io.Writer { return &cutWriter{w: io.Discard, n: 3 << 20} }, format.None},
		{"after-pages", func() io.Writer { return &cutWriter{w: io.Discard, at: format.ConfigName} }, format.None},
		{"index", func() io.Writer { return &cutWriter{w: io.Discard, at: format.IndexName} }, format.None},
		{"closed-pipe", closed, ""},
	} {
		before := lastCounter(logsOf(t, e, "cut"))
		_, err := e.Export(ctx, "cut", "-", &ExportOptions{Output: tc.out(), Compression: tc.comp})
		if err == nil || !errors.Is(err, syscall.EPIPE) || !strings.Contains(err.Error(), "incomplete") {
			t.Fatalf("%s: Export = %v, want EPIPE and the archive incomplete", tc.name, err)
		}
		c, ierr := e.Inspect(ctx, "cut")
		if ierr != nil || c.Status != StatusRunning {
			t.Fatalf("%s: after the failed export the container is %v (%v), want running", tc.name, c, ierr)
		}
		waitLog(t, e, "cut", "the counter to go on", func(l string) bool { return lastCounter(l) >= before+2 })
		dir := e.containerDir(c.ID)
		if _, err := os.Stat(filepath.Join(dir, exportImagesDir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the dump's images are left in %s (%v)", tc.name, dir, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	if _, err := e.Export(ctx, "cut", "-", &ExportOptions{Output: io.Discard, CheckpointOptions: CheckpointOptions{LeaveRunning: true}}); err != nil {
		t.Fatalf("streamed export -R after the failures: %v", err)
	}
	if c, _ := e.Inspect(ctx, "cut"); c.Status != StatusRunning {
		t.Fatalf("after a streamed export -R: %s, want running", c.Status)
	}
}

// TestExportLeaveRunningLog checks that an -R export carries the log as
// of the checkpoint: the counter goes on writing while the archive is
// written, and those lines, which the restored copy writes again, are not
// in it. The imported container's log (the archive's, then the restored
// process's) counts up without a repeat, staged (v1) and streamed (v2).
func TestExportLeaveRunningLog(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "10ms", "-ballast-mb", "64"}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "lrlog", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "lrlog", "counter 5", func(l string) bool { return lastCounter(l) >= 5 })
	for _, stream := range []bool{false, true} {
		archive := filepath.Join(t.TempDir(), "lrlog.tar.zst")
		xr, err := src.Export(ctx, "lrlog", archive, &ExportOptions{Stream: stream, CheckpointOptions: CheckpointOptions{LeaveRunning: true}})
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("copy%v", stream)
		if _, err := dst.Import(ctx, archive, &ImportOptions{Name: name}); err != nil {
			t.Fatalf("stream %v: %v", stream, err)
		}
		at := len(counters(logsOf(t, dst, name)))
		log := waitLog(t, dst, name, "the restored counter", func(l string) bool { return len(counters(l)) >= at+3 })
		cs := counters(log)
		for i := 1; i < len(cs); i++ {
			if cs[i] <= cs[i-1] {
				t.Errorf("stream %v: the imported log counts %d after %d (archived lines from after the checkpoint; frozen %v): %v", stream, cs[i], cs[i-1], xr.Frozen, cs)
				break
			}
		}
		if err := dst.Remove(ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}
}
