package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkExport compares a staged export (`ckpt checkpoint -e FILE`:
// CRIU dumps to a tmpfs, then the archive is written) with a streamed one
// (--stream: the pages go into the archive while CRIU dumps them) of the
// counter holding 256 MiB and 1 GiB of ballast, into a file on the same
// disk, each export stopping a fresh container. Besides the time per
// export it reports how long the container was frozen.
//
//	go test ./engine/ -run '^$' -bench Export -benchtime 3x
func BenchmarkExport(b *testing.B) {
	for _, mib := range []int{256, 1024} {
		for _, stream := range []bool{false, true} {
			mode := "staged"
			if stream {
				mode = "streamed"
			}
			b.Run(fmt.Sprintf("%dMiB/%s", mib, mode), func(b *testing.B) { benchExport(b, mib, stream) })
		}
	}
}

func benchExport(b *testing.B, mib int, stream bool) {
	e := realEngine(b)
	tmp := b.TempDir()
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", 0, fmt.Sprintf("size=%dm", mib+512)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Unmount(tmp, syscall.MNT_DETACH) })
	e.TmpDir = tmp
	out := b.TempDir()
	ctx := context.Background()
	var frozen time.Duration
	var size int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("b%d", i)
		cmd := []string{"/bin/counter", "-interval", "100ms", "-ballast-mb", fmt.Sprint(mib)}
		if _, err := e.Run(ctx, "workload", &RunOptions{Name: name, Command: cmd}); err != nil {
			b.Fatal(err)
		}
		waitBallast(b, e, name)
		archive := filepath.Join(out, name+".tar.zst")
		b.StartTimer()
		xr, err := e.Export(ctx, name, archive, &ExportOptions{Stream: stream})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		frozen += xr.Frozen
		size = xr.Size
		_ = os.Remove(archive)
		if err := e.Remove(ctx, name, true); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(frozen.Seconds()/float64(b.N), "frozen-s/op")
	b.ReportMetric(float64(size)/(1<<20), "archive-MiB")
}

// waitBallast waits until the counter says its ballast is touched.
func waitBallast(b *testing.B, e *Engine, name string) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var buf bytes.Buffer
		if err := e.Logs(context.Background(), name, &buf, false); err == nil && strings.Contains(buf.String(), "ballast ") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("%s: ballast not touched in 2 minutes", name)
}
