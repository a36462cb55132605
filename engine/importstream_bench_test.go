package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkImportStream compares importing one streamed archive (zstd,
// the counter holding 1 GiB of ballast, exported once) from its file
// (`ckpt restore -i FILE`) and from a pipe fed from that file (`cat FILE |
// ckpt restore -i -`), staging on a tmpfs (TmpDir) as the CLI does. Each
// import's container is removed after it. Besides the time per import it
// reports the seconds of each phase per import: extract (read, decompress,
// verify, write the staging), checks, create, apply_rootfs and
// runtime_restore (runc restore, CRIU reading the staged images: the
// nearest the engine has to a bare `criu restore` from tmpfs).
//
//	go test ./engine/ -run '^$' -bench ImportStream -benchtime 3x
func BenchmarkImportStream(b *testing.B) {
	src := realEngine(b)
	ctx := context.Background()
	const mib = 1024
	cmd := []string{"/bin/counter", "-interval", "100ms", "-ballast-mb", fmt.Sprint(mib)}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "big", Command: cmd}); err != nil {
		b.Fatal(err)
	}
	waitBallast(b, src, "big")
	archive := filepath.Join(b.TempDir(), "big.tar.zst")
	xr, err := src.Export(ctx, "big", archive, &ExportOptions{Stream: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("archive: %d MiB", xr.Size>>20)
	for _, pipe := range []bool{false, true} {
		mode := "file"
		if pipe {
			mode = "pipe"
		}
		b.Run(fmt.Sprintf("%dMiB/%s", mib, mode), func(b *testing.B) { benchImport(b, archive, pipe) })
	}
}

func benchImport(b *testing.B, archive string, pipe bool) {
	dst := realEngine(b)
	tmp := b.TempDir()
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", 0, "size=3g"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Unmount(tmp, syscall.MNT_DETACH) })
	dst.TmpDir = tmp
	ctx := context.Background()
	phases := map[string]time.Duration{}
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("i%d", i)
		o := &ImportOptions{Name: name}
		var ir *ImportResult
		var err error
		if pipe {
			ir, err = importThroughPipe(ctx, dst, archive, o)
		} else {
			ir, err = dst.Import(ctx, archive, o)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, p := range append(ir.Phases, ir.Restore.Phases...) {
			phases[p.Name] += time.Duration(p.Microseconds) * time.Microsecond
		}
		if err := dst.Remove(ctx, name, true); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	for name, d := range phases {
		b.ReportMetric(d.Seconds()/float64(b.N), name+"-s/op")
	}
}
