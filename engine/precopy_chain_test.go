package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
	"github.com/ckpt/ckpt/inspect"
)

// linkDir fills dst (created) with hard links to (across file systems,
// copies of) the files of src: a copy
// of a full dump that Dedup, which never writes in place, leaves alone.
func linkDir(dst, src string) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, d := range ents {
		if d.Type().IsRegular() {
			from, to := filepath.Join(src, d.Name()), filepath.Join(dst, d.Name())
			if err := os.Link(from, to); errors.Is(err, syscall.EXDEV) {
				// The images are on a tmpfs: copy them.
				b, err := os.ReadFile(from)
				if err != nil {
					return err
				}
				if err := os.WriteFile(to, b, 0o600); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// writeImagesArchive writes a v1 archive (uncompressed) holding the image
// directory dir as checkpoint/ and the config.dump of like, with like's
// manifest header without a parent: a full checkpoint of the moment dir
// was dumped, for inspect.DiffArchives.
func writeImagesArchive(t *testing.T, path, dir, like string) {
	t.Helper()
	f, err := os.Open(like)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := format.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	h := *m
	h.Parent, h.Members, h.Options.WithPrevious, h.Options.Compression = nil, nil, false, string(format.None)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := format.NewWriter(out, h, &format.WriterOptions{Compression: format.None})
	if err := zw.AddDir(format.CheckpointDir, dir); err != nil {
		t.Fatal(err)
	}
	if err := zw.AddBytes(format.ConfigName, extractMember(t, like, format.ConfigName)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPreCopyChain is the test of pre-copy chains without
// soft-dirty: a 256 MiB container dirtying 1% of its pages per tick
// is exported with PreCheckpoint twice, a tick apart, (the second a delta against the
// first), then WithPrevious and LeaveRunning. The final archive is at
// most 5% of a full export; its memory, read through both parents with
// inspect's memory reader, is page for page that of the full dump CRIU
// wrote for it (the same frozen moment, kept before deduplication). A
// missing, wrong, repeated or extra --import-previous is refused before
// anything is created; the three archives, given in any order, restore
// on a second engine and the counter goes on from the final's N+1. A
// final export after the first pre-checkpoint that fails after stopping
// the container (full disk) restores it in place through its parent and
// keeps the pre-checkpoint. A full export then ends the chain.
func TestPreCopyChain(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	src.memoryTrackingCheck = noMemoryTracking // the path this test measures, on any host
	ctx := context.Background()
	// 1% per 5 s tick: exports thaw the container right after their dump,
	// so each window between two dumps holds the waited tick and at most
	// one more however slow the host (CI runs everything at once).
	cmd := []string{"/bin/counter", "-ballast-mb", "256", "-dirty-percent", "1", "-interval", "5s", "-file", ""}
	c, err := src.Run(ctx, "workload", &RunOptions{Name: "chain", Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "chain", "counter 1", func(l string) bool { return lastCounter(l) >= 1 })
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	pre1, pre2, final, full := path("pre1.tar.zst"), path("pre2.tar.zst"), path("final.tar.zst"), path("full.tar.zst")
	// tick waits for the workload's next tick (1% of its pages dirtied).
	tick := func() {
		at := lastCounter(logsOf(t, src, "chain"))
		waitLog(t, src, "chain", "the next tick", func(l string) bool { return lastCounter(l) > at })
	}

	start := time.Now()
	r1, err := src.Export(ctx, "chain", pre1, &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Manifest.Parent != nil || r1.Dedup != nil {
		t.Fatalf("first pre-checkpoint: parent %+v, dedup %+v; want a full dump", r1.Manifest.Parent, r1.Dedup)
	}
	// A final export that fails after the container was stopped (a full
	// disk): the container is restored in place through its parent, and
	// the pre-checkpoint is kept for the next attempt.
	// (Uncompressed, its CRIU images alone are larger than the tmpfs
	// even when no page changed.)
	small := mountTmpfs(t, "size=16k")
	if _, err := src.Export(ctx, "chain", filepath.Join(small, "final.tar"), &ExportOptions{CheckpointOptions: CheckpointOptions{WithPrevious: true}, Compression: format.None}); !leftState(err, LeftRestored) {
		t.Fatalf("final export to a full disk = %v, want an error saying the container was restored", err)
	}
	checkNoArchive(t, small)
	checkStillRunning(t, src, "chain")
	if x, err := src.Inspect(ctx, "chain"); err != nil || x.PreCheckpoint == nil || x.PreCheckpoint.Manifest != r1.Container.PreCheckpoint.Manifest || x.PreCheckpoint.depth() != 0 {
		t.Fatalf("after the failed final export: record %+v, %v; want the pre-checkpoint kept", x.PreCheckpoint, err)
	}
	tick()
	atPre2 := lastCounter(logsOf(t, src, "chain")) // at most the count at the second dump
	r2, err := src.Export(ctx, "chain", pre2, &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	if p := r2.Manifest.Parent; p == nil || p.Manifest != r1.Container.PreCheckpoint.Manifest || p.Depth != 1 || !r2.Manifest.Options.PreCheckpoint {
		t.Fatalf("second pre-checkpoint: parent %+v, options %+v; want the first's manifest %s at depth 1", p, r2.Manifest.Options, r1.Container.PreCheckpoint.Manifest)
	}
	if r2.Dedup == nil || r2.Dedup.PagesParent == 0 || r2.Container.Status != StatusRunning {
		t.Fatalf("second pre-checkpoint: dedup %+v, status %s", r2.Dedup, r2.Container.Status)
	}
	if rec := r2.Container.PreCheckpoint; rec.Parent == nil || rec.Parent.Manifest != r1.Container.PreCheckpoint.Manifest || rec.depth() != 1 {
		t.Fatalf("second pre-checkpoint record %+v", rec)
	}
	if target, err := os.Readlink(filepath.Join(src.PreCheckpointDir(c.ID), "parent")); err != nil || target != "../pre-checkpoint.1" {
		t.Fatalf("pre-checkpoint/parent = %q, %v; want ../pre-checkpoint.1", target, err)
	}
	tick()
	fullDir := filepath.Join(t.TempDir(), "full")
	rf, err := src.Export(ctx, "chain", final, &ExportOptions{CheckpointOptions: CheckpointOptions{WithPrevious: true, LeaveRunning: true,
		beforeDedup: func(imgDir string) error { return linkDir(fullDir, imgDir) }}})
	if err != nil {
		t.Fatal(err)
	}
	// Each tick dirties 1% of the pages: the final level holds those of
	// the ticks since the second pre-checkpoint's dump, at most those
	// counted since atPre2, and a little more (stack, runtime heap).
	ticks := lastCounter(logsOf(t, src, "chain")) - atPre2
	if d := rf.Dedup; d == nil || d.PagesWritten*100 > d.PagesScanned*int64(ticks+1) {
		t.Errorf("final level wrote %+v pages over %d ticks, want at most %d%% of those scanned", rf.Dedup, ticks, ticks+1)
	}
	if p := rf.Manifest.Parent; p == nil || p.Manifest != r2.Container.PreCheckpoint.Manifest || p.Depth != 2 || rf.Dedup == nil {
		t.Fatalf("final: parent %+v, dedup %+v; want the second pre-checkpoint at depth 2", p, rf.Dedup)
	}
	t.Logf("pre1 %d bytes, pre2 %d bytes (dedup %+v), final %d bytes (dedup %+v), frozen %v/%v/%v µs, in %v",
		r1.Size, r2.Size, *r2.Dedup, rf.Size, *rf.Dedup, frozen(r1.CRIU), frozen(r2.CRIU), frozen(rf.CRIU), time.Since(start))

	// The chain holds the full dump's memory, page for page, as
	// ckptinspect reads it; and the comparison is not vacuous.
	same := path("same-moment.tar")
	writeImagesArchive(t, same, fullDir, final)
	d, err := inspect.DiffArchives(ctx, same, final, &inspect.DiffOptions{TempDir: t.TempDir(), Parents: []string{pre2, pre1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Memory) != 0 || len(d.Notes) != 0 {
		t.Fatalf("DiffArchives(full dump, final+pre2+pre1): memory %+v, notes %q; want no difference", d.Memory, d.Notes)
	}
	if d, err := inspect.DiffArchives(ctx, pre1, final, &inspect.DiffOptions{TempDir: t.TempDir(), Parents: []string{pre2, pre1}}); err != nil || d.MemoryTotal.ChangedPages == 0 {
		t.Errorf("DiffArchives(pre1, final chain) = %+v, %v; want changed pages (the workload dirtied them)", d.MemoryTotal, err)
	}

	// Refused before anything is created.
	other, err := src.Run(ctx, "workload", &RunOptions{Name: "other", Command: []string{"/bin/counter", "-file", ""}})
	if err != nil {
		t.Fatal(err)
	}
	otherPre := path("other-pre.tar.zst")
	if _, err := src.Export(ctx, other.ID, otherPre, &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		previous []string
		want     string
	}{
		{"none", nil, "chain of 2 pre-checkpoint archives"},
		{"nearest only", []string{pre2}, "not among those given"},
		{"first only", []string{pre1}, "not among those given"},
		{"wrong one", []string{otherPre, pre1}, "not among those given"},
		{"extra", []string{pre1, pre2, otherPre}, "is not part of the archive's chain"},
		{"repeated", []string{pre2, pre1, pre2}, "same pre-checkpoint archive"},
		{"final as previous", []string{pre2, pre1, final}, "not a pre-checkpoint archive"},
	} {
		_, err := dst.Import(ctx, final, &ImportOptions{Previous: tc.previous})
		if !errors.Is(err, format.ErrParent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Import = %v, want ErrParent saying %q", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		noLeftovers(t, dst, 0)
	}

	// The chain in any order; the counter goes on from the final's. The
	// final comes through a pipe (`restore -i - --import-previous`): the
	// pre-checkpoints went ahead as files.
	at := lastCounter(logText(extractMember(t, final, format.ContainerLogName)))
	ir, err := importThroughPipe(ctx, dst, final, &ImportOptions{Previous: []string{pre1, pre2}})
	if err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, dst, "chain", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+2 })
	checkContinues(t, log, at)
	t.Logf("imported the chain in %v; phases %v", ir.Total, ir.Phases)
	noLeftovers(t, dst, 1)

	// A full export of the same container: the size baseline, and the
	// end of the chain.
	xr, err := src.Export(ctx, "chain", full, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full: %d bytes, frozen %v µs; final/full = %.2f%%", xr.Size, frozen(xr.CRIU), 100*float64(rf.Size)/float64(xr.Size))
	if rf.Size*4 > xr.Size {
		t.Errorf("final archive %d bytes, more than a quarter of the full archive's %d", rf.Size, xr.Size)
	}
	if xr.Container.PreCheckpoint != nil {
		t.Errorf("after a full export: pre-checkpoint record %+v, want none", xr.Container.PreCheckpoint)
	}
	for _, d := range []string{src.PreCheckpointDir(c.ID), src.preLevelDir(c.ID, 1)} {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after a full export %s is still there (%v)", d, err)
		}
	}
}

// TestPreCheckpointChainInPlace takes -P twice and --with-previous in
// place: the second pre-checkpoint is deduplicated against the first,
// the final against the second, the chain holds the final full dump's
// memory (incremental.Equal), and the in-place restore goes through both
// parents and then ends the chain.
func TestPreCheckpointChainInPlace(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	e.memoryTrackingCheck = noMemoryTracking
	ctx := context.Background()
	c, err := e.Run(ctx, "workload", &RunOptions{Name: "ipc", Command: []string{"/bin/counter", "-ballast-mb", "16", "-dirty-percent", "1", "-interval", "100ms", "-file", ""}})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "ipc", "counter 2", func(l string) bool { return lastCounter(l) >= 2 })
	if _, err := e.Checkpoint(ctx, "ipc", &CheckpointOptions{PreCheckpoint: true}); err != nil {
		t.Fatal(err)
	}
	r2, err := e.Checkpoint(ctx, "ipc", &CheckpointOptions{PreCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Dedup == nil || r2.Dedup.PagesParent == 0 || r2.Container.PreCheckpoint.depth() != 1 {
		t.Fatalf("second in-place pre-checkpoint: dedup %+v, record %+v", r2.Dedup, r2.Container.PreCheckpoint)
	}
	fullDir := filepath.Join(t.TempDir(), "full")
	fr, err := e.Checkpoint(ctx, "ipc", &CheckpointOptions{WithPrevious: true, beforeDedup: func(d string) error { return linkDir(fullDir, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if fr.Dedup == nil || fr.Dedup.PagesParent == 0 {
		t.Fatalf("final dedup %+v, want pages in parent", fr.Dedup)
	}
	if eq, err := incremental.Equal(ctx, fullDir, fr.ImageDir); err != nil || !eq {
		t.Fatalf("incremental.Equal(full dump, chain of 2) = %v, %v; want true", eq, err)
	}
	at := lastCounter(logsOf(t, e, "ipc"))
	rr, err := e.Restore(ctx, "ipc", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkContinues(t, waitLog(t, e, "ipc", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+2 }), at)
	if rr.Container.PreCheckpoint != nil {
		t.Errorf("after restore: record %+v, want the chain ended", rr.Container.PreCheckpoint)
	}
	for _, d := range []string{e.PreCheckpointDir(c.ID), e.preLevelDir(c.ID, 1)} {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after restore %s is still there (%v)", d, err)
		}
	}
}
