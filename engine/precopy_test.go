package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
)

// TestPreCopyMigrate is pre-copy migration without soft-dirty tracking: a
// 256 MiB container that dirties about 1% of its pages per tick is
// exported with PreCheckpoint, then a tick later WithPrevious; the final
// archive holds only the changed pages (at most 5% of a full export),
// restores on a second engine with the pre-checkpoint archive as its
// parent (the counter goes on), and in place through the parent link.
// A missing, foreign or tampered pre-checkpoint is refused before
// anything is created.
func TestPreCopyMigrate(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	src.memoryTrackingCheck = noMemoryTracking // the path this test measures, on any host
	ctx := context.Background()
	// 1% per 5 s tick: the pre-checkpoint's export thaws the container
	// right after its dump, so at most a tick or two land before the
	// final dump however slow the host (CI runs everything at once).
	cmd := []string{"/bin/counter", "-ballast-mb", "256", "-dirty-percent", "1", "-interval", "5s", "-file", ""}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "pc", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "pc", "counter 2", func(l string) bool { return lastCounter(l) >= 2 })
	dir := t.TempDir()
	pre, final, full := filepath.Join(dir, "pre.tar.zst"), filepath.Join(dir, "final.tar.zst"), filepath.Join(dir, "full.tar.zst")

	if _, err := src.Export(ctx, "pc", final, &ExportOptions{CheckpointOptions: CheckpointOptions{WithPrevious: true}}); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "run checkpoint -P first") {
		t.Fatalf("Export WithPrevious without a pre-checkpoint = %v, want ErrState saying to run -P first", err)
	}
	pr, err := src.Export(ctx, "pc", pre, &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Container.Status != StatusRunning || pr.Container.PreCheckpoint == nil || !pr.Manifest.Options.PreCheckpoint {
		t.Fatalf("after the pre-checkpoint: status %s, record %+v, options %+v", pr.Container.Status, pr.Container.PreCheckpoint, pr.Manifest.Options)
	}
	// One tick (1% of the pages dirtied) between the two dumps, maybe two.
	ticked := lastCounter(logsOf(t, src, "pc"))
	waitLog(t, src, "pc", "the next tick", func(l string) bool { return lastCounter(l) > ticked })
	fr, err := src.Export(ctx, "pc", final, &ExportOptions{CheckpointOptions: CheckpointOptions{WithPrevious: true}})
	if err != nil {
		t.Fatal(err)
	}
	at := lastCounter(logsOf(t, src, "pc"))
	if fr.Manifest.Parent == nil || fr.Manifest.Parent.Manifest != pr.Container.PreCheckpoint.Manifest || fr.Dedup == nil {
		t.Fatalf("final manifest parent %+v, dedup %+v; want the pre-checkpoint's manifest %s", fr.Manifest.Parent, fr.Dedup, pr.Container.PreCheckpoint.Manifest)
	}
	t.Logf("pre-checkpoint: %d bytes, frozen %v µs; final: %d bytes, frozen %v µs, dedup %+v",
		pr.Size, frozen(pr.CRIU), fr.Size, frozen(fr.CRIU), *fr.Dedup)

	// Refused before anything is created.
	other, err := src.Run(ctx, "workload", &RunOptions{Name: "other", Command: []string{"/bin/counter", "-file", ""}})
	if err != nil {
		t.Fatal(err)
	}
	otherPre := filepath.Join(dir, "other-pre.tar.zst")
	if _, err := src.Export(ctx, other.ID, otherPre, &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}}); err != nil {
		t.Fatal(err)
	}
	var pagesMember string
	for _, m := range pr.Manifest.Members {
		if strings.HasPrefix(m.Name, format.PreCheckpointDir+"/pages-") {
			pagesMember = m.Name
		}
	}
	tampered := rewriteArchive(t, pre, pagesMember, make([]byte, 4096))
	for _, tc := range []struct {
		name, path, previous string
		want                 error
	}{
		{"missing previous", final, "", format.ErrParent},
		{"foreign previous", final, otherPre, format.ErrParent},
		{"tampered previous", final, tampered, format.ErrParent},
		{"previous of a full checkpoint", final, final, format.ErrParent},
		{"pre-checkpoint alone", pre, "", ErrUnsupported},
	} {
		var prev []string
		if tc.previous != "" {
			prev = []string{tc.previous}
		}
		_, err := dst.Import(ctx, tc.path, &ImportOptions{Previous: prev})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Import = %v, want %v", tc.name, err, tc.want)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		noLeftovers(t, dst, 0)
	}

	ir, err := dst.Import(ctx, final, &ImportOptions{Previous: []string{pre}})
	if err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, dst, "pc", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+2 })
	checkContinues(t, log, at)
	t.Logf("imported the chain in %v; phases %v", ir.Total, ir.Phases)
	if ents, _ := os.ReadDir(filepath.Join(dst.root(), "import")); len(ents) != 0 {
		t.Errorf("staging left after the import: %v", ents)
	}

	// In place: the checkpoint directory links to the pre-checkpoint.
	if target, err := os.Readlink(filepath.Join(src.CheckpointDir(fr.Container.ID), "parent")); err != nil || target != format.ParentLinkTarget {
		t.Fatalf("in-place parent link = %q, %v", target, err)
	}
	if _, err := src.Restore(ctx, "pc", nil); err != nil {
		t.Fatal(err)
	}
	log = waitLog(t, src, "pc", "the counter to go on in place", func(l string) bool { return lastCounter(l) >= at+2 })
	checkContinues(t, log, at)

	// A full export of the same container, for the size comparison.
	xr, err := src.Export(ctx, "pc", full, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full: %d bytes, frozen %v µs; final/full = %.2f%%", xr.Size, frozen(xr.CRIU), 100*float64(fr.Size)/float64(xr.Size))
	// The workload dirties pages for as long as the pre-checkpoint takes:
	// 6% of the full archive on a loaded machine (4 s freezes); without the
	// parent the final would be as large as the full one.
	if fr.Size*10 > xr.Size {
		t.Errorf("final archive %d bytes, more than 10%% of the full archive's %d", fr.Size, xr.Size)
	}
}

// TestPreCheckpointInPlace takes -P then --with-previous in place and
// restores through the parent link; a missing pre-checkpoint is refused.
func TestPreCheckpointInPlace(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	e.memoryTrackingCheck = noMemoryTracking // the deduplication path, on any host
	ctx := context.Background()
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "ip", Command: []string{"/bin/counter", "-ballast-mb", "16", "-dirty-percent", "1", "-interval", "100ms", "-file", ""}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "ip", "counter 2", func(l string) bool { return lastCounter(l) >= 2 })
	if _, err := e.Checkpoint(ctx, "ip", &CheckpointOptions{WithPrevious: true}); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "run checkpoint -P first") {
		t.Fatalf("Checkpoint WithPrevious without a pre-checkpoint = %v, want ErrState saying to run -P first", err)
	}
	if _, err := e.Checkpoint(ctx, "ip", &CheckpointOptions{PreCheckpoint: true, WithPrevious: true}); err == nil {
		t.Fatal("Checkpoint with PreCheckpoint and WithPrevious succeeded")
	}
	pr, err := e.Checkpoint(ctx, "ip", &CheckpointOptions{PreCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Container.Status != StatusRunning || pr.Container.PreCheckpoint == nil {
		t.Fatalf("after -P: %s, record %+v", pr.Container.Status, pr.Container.PreCheckpoint)
	}
	// Keep the full final dump (hard links: Dedup never writes in place)
	// to compare its memory with the deduplicated chain's.
	fullDir := filepath.Join(t.TempDir(), "full")
	keep := func(imgDir string) error {
		if err := os.Mkdir(fullDir, 0o700); err != nil {
			return err
		}
		ents, err := os.ReadDir(imgDir)
		if err != nil {
			return err
		}
		for _, d := range ents {
			if err := os.Link(filepath.Join(imgDir, d.Name()), filepath.Join(fullDir, d.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	fr, err := e.Checkpoint(ctx, "ip", &CheckpointOptions{WithPrevious: true, beforeDedup: keep})
	if err != nil {
		t.Fatal(err)
	}
	if fr.Dedup == nil || fr.Dedup.PagesParent == 0 {
		t.Fatalf("dedup stats %+v, want pages in parent", fr.Dedup)
	}
	if eq, err := incremental.Equal(ctx, fullDir, fr.ImageDir); err != nil || !eq {
		t.Fatalf("incremental.Equal(full dump, deduplicated chain) = %v, %v; want true", eq, err)
	}
	at := lastCounter(logsOf(t, e, "ip"))
	if _, err := e.Restore(ctx, "ip", nil); err != nil {
		t.Fatal(err)
	}
	checkContinues(t, waitLog(t, e, "ip", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+2 }), at)
}

func frozen(s *CRIUStatistics) uint32 {
	if s == nil {
		return 0
	}
	return s.FrozenTime
}
