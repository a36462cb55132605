package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
)

// fakePreChain lays out n pre-checkpoint levels of c on disk, linked as a
// real chain is, and records each level's image digest.
func fakePreChain(t *testing.T, e *Engine, c *Container, n int) {
	t.Helper()
	var rec *PreCheckpointRecord
	for level := 1; level <= n; level++ {
		dir := e.preLevelDir(c.ID, level)
		if level == n {
			dir = e.PreCheckpointDir(c.ID)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "inventory.img"), []byte{byte(level)}, 0o600); err != nil {
			t.Fatal(err)
		}
		if level > 1 {
			if err := os.Symlink("../"+preLevelName(level-1), filepath.Join(dir, "parent")); err != nil {
				t.Fatal(err)
			}
		}
		d, err := incremental.ImagesDigest(dir)
		if err != nil {
			t.Fatal(err)
		}
		rec = &PreCheckpointRecord{Images: d, Method: PreCopyDedup, Manifest: format.DigestBytes([]byte("m")), Parent: rec}
	}
	c.PreCheckpoint = rec
}

// TestPreCheckpointDepthBoundary: a chain of 15 pre-checkpoints takes a
// 16th, one of 16 refuses a 17th (docs/MIGRATION.md, README).
func TestPreCheckpointDepthBoundary(t *testing.T) {
	e := testEngine(t)
	for n, refused := range map[int]bool{format.MaxParentDepth - 1: false, format.MaxParentDepth: true} {
		c := &Container{ID: newID(), Name: "deep"}
		fakePreChain(t, e, c, n)
		err := e.checkPreCheckpointDepth(c, true, PreCopyDedup)
		if refused != errors.Is(err, ErrState) {
			t.Errorf("-P on a chain of %d = %v, want refused %v", n, err, refused)
		}
	}
}

// TestPreChainDigests: an in-place restore's chain check accepts the
// levels as recorded and refuses one whose images changed since its -P.
func TestPreChainDigests(t *testing.T) {
	e := testEngine(t)
	c := &Container{ID: newID(), Name: "chain"}
	fakePreChain(t, e, c, 2)
	if err := e.checkPreChainDirs(c, true); err != nil {
		t.Fatalf("checkPreChainDirs(as recorded) = %v", err)
	}
	if err := os.WriteFile(filepath.Join(e.preLevelDir(c.ID, 1), "inventory.img"), []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.checkPreChainDirs(c, true); !errors.Is(err, ErrState) {
		t.Errorf("checkPreChainDirs(level 1 changed) = %v, want ErrState", err)
	}
}
