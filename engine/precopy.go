package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// Chains of pre-checkpoints (checkpoint -P, -P, …, --with-previous).
//
// On disk, in a container's directory and in an import's staging
// directory alike, a chain of n pre-checkpoints is laid out as
//
//	checkpoint/          the final checkpoint; parent -> ../pre-checkpoint
//	pre-checkpoint/      level n, the latest; parent -> ../pre-checkpoint.<n-1> (n ≥ 2)
//	pre-checkpoint.<k>/  level k, 1 ≤ k < n; parent -> ../pre-checkpoint.<k-1> (k ≥ 2)
//
// Without memory tracking level 1 is a full dump and each further level
// a full dump deduplicated against the level below it; with it (soft-dirty)
// level 1 is a CRIU pre-dump and each further one a pre-dump onto the
// level below (runc --parent-path, CRIU writes the link). Either way
// CRIU's restore follows the parent links down to level 1. The final checkpoint always names ../pre-checkpoint,
// the one link an archive may imply (format.ParentLinkTarget); the other
// directories are the engine's own and never archive members.

// preLevelName is the directory name of level k of a chain when it is
// not the latest.
func preLevelName(level int) string {
	return format.PreCheckpointDir + "." + strconv.Itoa(level)
}

// preLevelDir returns the directory of level k of a container's
// pre-checkpoint chain when it is not the latest.
func (e *Engine) preLevelDir(id string, level int) string {
	return filepath.Join(e.containerDir(id), preLevelName(level))
}

// preAsideDir holds the latest pre-checkpoint while a -P that starts a new
// chain runs, so that a failure can put it back.
func (e *Engine) preAsideDir(id string) string {
	return filepath.Join(e.containerDir(id), "."+format.PreCheckpointDir+".old")
}

// depth is the number of pre-checkpoints below r in its chain (0 for the
// first, a full dump): the Depth of r's own format.Parent minus one.
func (r *PreCheckpointRecord) depth() int {
	n := 0
	for p := r.Parent; p != nil; p = p.Parent {
		n++
	}
	return n
}

// finalParent is the format.Parent of a checkpoint taken against the
// pre-checkpoint r.
func finalParent(r *PreCheckpointRecord) *format.Parent {
	return &format.Parent{Manifest: r.Manifest, Images: r.Images, Depth: r.depth() + 1}
}

// chainsOnto reports whether a new pre-checkpoint of c, taken by method,
// becomes the next level of c's chain rather than the first of a new one:
// c has a pre-checkpoint taken by the same method whose levels are all
// there (images
// and parent links; a broken chain is started anew), and, for an
// exported pre-checkpoint (whose archive must name its parent's), that
// pre-checkpoint was exported too.
func (e *Engine) chainsOnto(c *Container, exported bool, method PreCopyMethod) bool {
	r := c.PreCheckpoint
	if r == nil || r.method() != method || (exported && r.Manifest == "") {
		return false
	}
	return e.checkPreChainDirs(c, false) == nil
}

// method is how r was taken; records written before the method was
// recorded were full dumps.
func (r *PreCheckpointRecord) method() PreCopyMethod {
	if r.Method == "" {
		return PreCopyDedup
	}
	return r.Method
}

// checkPreCheckpointDepth refuses a pre-checkpoint that would make c's
// chain longer than a final checkpoint may depend on.
func (e *Engine) checkPreCheckpointDepth(c *Container, exported bool, method PreCopyMethod) error {
	if !e.chainsOnto(c, exported, method) {
		return nil
	}
	if n := c.PreCheckpoint.depth() + 1; n >= format.MaxParentDepth {
		return fmt.Errorf("%w: container %s has a chain of %d pre-checkpoints, the most a checkpoint may depend on: take the final checkpoint now (checkpoint --with-previous)", ErrState, c.Name, n)
	}
	return nil
}

// preStep is one pre-checkpoint being taken: the previous latest level
// moved out of the way, and how to put it back.
type preStep struct {
	e     *Engine
	id    string
	chain bool                 // the new pre-checkpoint is the next level of the chain
	prev  *PreCheckpointRecord // the level below the new one (chain)
	aside string               // where the previous latest level went; "" if there was none
	link  string               // the new level's parent link target (chain)
	// preDump: the new level is a CRIU pre-dump onto the level below
	// (runc --parent-path link; CRIU tracks memory and writes the link),
	// else a full dump deduplicated against it.
	preDump bool
	closed  bool // committed or rolled back
}

// beginPreCheckpoint moves c's latest pre-checkpoint out of the
// container's pre-checkpoint directory before a new one is dumped there:
// to pre-checkpoint.<level> if the new one chains onto it (see
// chainsOnto, and the method must be PreCopyDedup), else aside. Call
// rollback on failure, commit once the new record is saved.
func (e *Engine) beginPreCheckpoint(c *Container, method PreCopyMethod, exported bool) (*preStep, error) {
	s := &preStep{e: e, id: c.ID}
	preDir := e.PreCheckpointDir(c.ID)
	if e.chainsOnto(c, exported, method) {
		if err := e.checkPreCheckpointDepth(c, exported, method); err != nil {
			return nil, err
		}
		level := c.PreCheckpoint.depth() + 1
		s.chain, s.prev, s.aside, s.link = true, c.PreCheckpoint, e.preLevelDir(c.ID, level), "../"+preLevelName(level)
		s.preDump = method == PreCopyPreDump
	} else if _, err := os.Lstat(preDir); err == nil {
		s.aside = e.preAsideDir(c.ID)
	}
	if s.aside == "" {
		return s, nil
	}
	if err := fsutil.RemoveAll(s.aside); err != nil {
		return nil, fmt.Errorf("clear %s: %w", s.aside, err)
	}
	if err := os.Rename(preDir, s.aside); err != nil {
		return nil, fmt.Errorf("keep the previous pre-checkpoint: %w", err)
	}
	return s, nil
}

// dedup deduplicates the new level in imgDir against the level below it;
// without a chain, or after a pre-dump, it does nothing and returns nil
// statistics.
func (s *preStep) dedup(ctx context.Context, imgDir string) (*incremental.Stats, error) {
	if s == nil || !s.chain || s.preDump {
		return nil, nil
	}
	st, err := incremental.Dedup(ctx, s.aside, imgDir, &incremental.Options{ParentLink: s.link})
	if err != nil {
		return nil, fmt.Errorf("deduplicate against the previous pre-checkpoint: %w", err)
	}
	return st, nil
}

// withParent returns o with the parent path of a pre-dump onto the level
// below set, else o.
func (s *preStep) withParent(o *CheckpointOptions) *CheckpointOptions {
	if s == nil || !s.chain || !s.preDump {
		return o
	}
	oo := *o
	oo.parentPath = s.link
	return &oo
}

// archiveParent is the format.Parent of the new level's archive: the
// previous pre-checkpoint's archive, or nil for the first level.
func (s *preStep) archiveParent() *format.Parent {
	if s == nil || !s.chain {
		return nil
	}
	return finalParent(s.prev)
}

// record returns r as the new latest level, chained onto the previous.
func (s *preStep) record(r *PreCheckpointRecord) *PreCheckpointRecord {
	if s.chain {
		r.Parent = s.prev
	}
	return r
}

// rollback removes what was dumped and puts the previous latest level
// back. It does nothing after commit.
func (s *preStep) rollback() {
	if s == nil || s.closed {
		return
	}
	s.closed = true
	preDir := s.e.PreCheckpointDir(s.id)
	_ = fsutil.RemoveAll(preDir)
	if s.aside != "" {
		_ = os.Rename(s.aside, preDir)
	}
}

// commit ends the step once the container's record names the new level:
// a new chain's predecessors are removed.
func (s *preStep) commit() {
	if s == nil || s.closed {
		return
	}
	s.closed = true
	if !s.chain {
		s.e.removePreLevels(s.id)
	}
}

// removePreLevels removes every pre-checkpoint directory of container id
// but the latest (pre-checkpoint/ itself).
func (e *Engine) removePreLevels(id string) {
	_ = fsutil.RemoveAll(e.preAsideDir(id))
	ents, _ := os.ReadDir(e.containerDir(id))
	for _, d := range ents {
		if n, ok := strings.CutPrefix(d.Name(), format.PreCheckpointDir+"."); ok {
			if _, err := strconv.Atoi(n); err == nil {
				_ = fsutil.RemoveAll(filepath.Join(e.containerDir(id), d.Name()))
			}
		}
	}
}

// removePreChain removes all of container id's pre-checkpoint
// directories; its record must be cleared (and saved) first.
func (e *Engine) removePreChain(id string) {
	e.removePreLevels(id)
	_ = fsutil.RemoveAll(e.PreCheckpointDir(id))
}

// preChainDirs returns the directories of c's pre-checkpoint levels with
// their records, latest first, and the parent link target each should
// have ("" for level 1).
func (e *Engine) preChainDirs(c *Container) (dirs []string, recs []*PreCheckpointRecord, links []string) {
	r := c.PreCheckpoint
	if r == nil {
		return nil, nil, nil
	}
	level := r.depth() + 1
	for dir := e.PreCheckpointDir(c.ID); r != nil; r, level = r.Parent, level-1 {
		link := ""
		if level > 1 {
			link = "../" + preLevelName(level-1)
		}
		dirs, recs, links = append(dirs, dir), append(recs, r), append(links, link)
		dir = e.preLevelDir(c.ID, level-1)
	}
	return dirs, recs, links
}

// checkPreChainDirs checks that every level of c's chain still has its
// images (inventory.img) and, with digests, the images recorded.
func (e *Engine) checkPreChainDirs(c *Container, digests bool) error {
	dirs, recs, links := e.preChainDirs(c)
	for i, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
			return fmt.Errorf("%w: the pre-checkpoint images of %s are gone (%s)", ErrState, c.Name, dir)
		}
		target, err := os.Readlink(filepath.Join(dir, "parent"))
		if errors.Is(err, os.ErrNotExist) {
			target, err = "", nil
		}
		if err != nil || target != links[i] {
			return fmt.Errorf("%w: the pre-checkpoint %s of %s has an unexpected parent link %q (want %q)", ErrState, dir, c.Name, target, links[i])
		}
		if !digests {
			continue
		}
		d, err := incremental.ImagesDigest(dir)
		if err != nil {
			return fmt.Errorf("%w: the pre-checkpoint %s of %s cannot be read: %w", ErrState, dir, c.Name, err)
		}
		if d != recs[i].Images {
			return fmt.Errorf("%w: the pre-checkpoint images %s of %s changed (digest %s, recorded %s)", ErrState, dir, c.Name, d, recs[i].Images)
		}
	}
	return nil
}
