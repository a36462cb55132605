package inspect

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
)

// tinyPID is the tiny image set's task with memory.
const tinyPID = 22558

// chain is a checkpoint chain built from the tiny image set without the
// engine: full is an ordinary archive of it, pre a pre-checkpoint archive
// of the same images, child an incremental checkpoint whose images were
// deduplicated against pre's (every page in parent: it stores none),
// other an unrelated full archive.
type tinyChain struct {
	full, pre, child, other string
	preDigest               format.Digest
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// dirtyParent changes one byte in the middle page of each pages image
// of dir, so that deduplication against it keeps those pages in the
// child: the child's images stay as CRIU wrote them, and the chain still
// holds the original memory, part in the child, part in the parent.
func dirtyParent(t testing.TB, dir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if err != nil || len(names) == 0 {
		t.Fatalf("pages images of %s: %v", dir, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < PageSize {
			continue
		}
		b[len(b)/PageSize/2*PageSize+100] ^= 0xff
		if err := os.WriteFile(n, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// writeChain builds the chain; with mixed, the child keeps a few pages
// of its own (see dirtyParent) and holds the rest in parent.
func writeChain(t testing.TB, mixed ...bool) tinyChain {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var c tinyChain
	c.full = writeTiny(t, dir, "full.ckpt", tinyOptions{})
	c.other = writeTiny(t, dir, "other.ckpt", tinyOptions{rootfs: [][2]string{{"other.txt", "other\n"}}})
	preDir, childDir := filepath.Join(dir, "pre"), filepath.Join(dir, "child")
	copyDir(t, tinyImages, preDir)
	copyDir(t, tinyImages, childDir)
	m := len(mixed) > 0 && mixed[0]
	if m {
		dirtyParent(t, preDir)
	}
	c.pre = writeTiny(t, dir, "pre.ckpt", tinyOptions{imagesDir: preDir, preCheckpoint: true})
	st, err := incremental.Dedup(ctx, preDir, childDir, &incremental.Options{PageSize: PageSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !m && (st.PagesWritten != 0 || st.PagesParent == 0):
		t.Fatalf("Dedup of an identical copy = %+v, want every page in parent", st)
	case m && (st.PagesWritten == 0 || st.PagesParent == 0):
		t.Fatalf("Dedup against a changed parent = %+v, want pages both kept and in parent", st)
	}
	// The archive never holds the parent link (FORMAT.md §6, 19).
	if err := os.Remove(filepath.Join(childDir, "parent")); err != nil {
		t.Fatal(err)
	}
	l, err := readLink(c.pre)
	if err != nil {
		t.Fatal(err)
	}
	c.preDigest = l.Digest
	parent := &format.Parent{Manifest: l.Digest, Images: format.ImagesDigest(l.Manifest.Members, format.PreCheckpointDir), Depth: 1}
	c.child = writeTiny(t, dir, "child.ckpt", tinyOptions{imagesDir: childDir, parent: parent})
	return c
}

func TestChainShow(t *testing.T) {
	ctx := context.Background()
	c := writeChain(t)
	full, err := Show(ctx, c.full, nil)
	if err != nil {
		t.Fatal(err)
	}
	pre, err := Show(ctx, c.pre, nil)
	if err != nil {
		t.Fatal(err)
	}
	child, err := Show(ctx, c.child, &ShowOptions{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.PreCheckpoint || full.Parent != nil {
		t.Errorf("full: preCheckpoint %v, parent %+v", full.PreCheckpoint, full.Parent)
	}
	if !pre.PreCheckpoint || pre.Parent != nil || pre.CheckpointSize != full.CheckpointSize {
		t.Errorf("pre: preCheckpoint %v, parent %+v, size %d (full %d)", pre.PreCheckpoint, pre.Parent, pre.CheckpointSize, full.CheckpointSize)
	}
	if child.PreCheckpoint || child.Parent == nil || child.Parent.Manifest != c.preDigest || child.Parent.Depth != 1 {
		t.Fatalf("child: preCheckpoint %v, parent %+v, want %s depth 1", child.PreCheckpoint, child.Parent, c.preDigest)
	}
	if child.Verified != VerifiedYes {
		t.Errorf("child verified %s: %v", child.Verified, child.Problems)
	}
	// The delta: the pages images are empty.
	if child.PagesSize != 0 || child.CheckpointSize >= full.CheckpointSize-full.PagesSize/2 {
		t.Errorf("child sizes %d (pages %d), full %d (pages %d): not a delta", child.CheckpointSize, child.PagesSize, full.CheckpointSize, full.PagesSize)
	}
	var b bytes.Buffer
	if err := WriteShow(&b, []*Summary{full, pre, child}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{" CHAIN ", " full ", " pre-checkpoint ", " delta of " + string(c.preDigest)[:len("sha256:")+12] + " depth 1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := WriteJSON(&b, ShowJSON{Version: JSONVersion, Archives: []*Summary{pre, child}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"preCheckpoint": true`, `"manifest": "` + string(c.preDigest) + `"`, `"depth": 1`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show JSON lacks %s:\n%s", want, b.String())
		}
	}
}

// hexdump loads name (with parents) and dumps tinyPID.
func hexdump(t *testing.T, name string, parents ...string) string {
	t.Helper()
	a, err := Load(context.Background(), name, &LoadOptions{Images: true, Pages: true, Parents: parents})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var b bytes.Buffer
	if err := a.HexDump(&b, tinyPID); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestChainMemparse(t *testing.T) {
	t.Run("all-in-parent", func(t *testing.T) { testChainMemparse(t, false) })
	t.Run("mixed", func(t *testing.T) { testChainMemparse(t, true) })
}

func testChainMemparse(t *testing.T, mixed bool) {
	ctx := context.Background()
	c := writeChain(t, mixed)
	want := hexdump(t, c.full)
	if got := hexdump(t, c.child, c.pre); got != want {
		t.Errorf("hexdump of child+pre differs from the full archive's (%d vs %d bytes)", len(got), len(want))
	}
	bare := hexdump(t, c.child)
	if !strings.Contains(bare, "in parent (not given)") || strings.Contains(bare, "|") != mixed {
		t.Errorf("hexdump of child without parent:\n%.2000s", bare)
	}
	if mixed {
		// The parent alone differs from the full archive: the child's
		// pages win.
		if got := hexdump(t, c.pre); got == want {
			t.Error("the dirtied parent dumps like the full archive")
		}
	}

	a, err := Load(ctx, c.child, &LoadOptions{Images: true, Pages: true, Parents: []string{c.pre}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f, err := Load(ctx, c.full, &LoadOptions{Images: true, Pages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	so := SearchOptions{Regexp: "ghost|pipe data", Context: 4}
	mf, err := f.Search(so)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := a.Search(so)
	if err != nil {
		t.Fatal(err)
	}
	if len(mf) == 0 || !slices.Equal(mf, mc) {
		t.Errorf("search of child+pre = %v, full = %v", mc, mf)
	}
	rows, err := a.MemoryUsage()
	if err != nil {
		t.Fatal(err)
	}
	full, err := f.MemoryUsage()
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for i, r := range rows {
		stored += r.Memory
		if r.Memory+r.InParent != full[i].Memory || (!mixed && r.Memory != 0) {
			t.Errorf("child usage %+v, full %+v", r, full[i])
		}
	}
	if mixed != (stored > 0) {
		t.Errorf("child stores %d bytes (mixed %v)", stored, mixed)
	}
	var b bytes.Buffer
	if err := WriteMemUsage(&b, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "IN PARENT") {
		t.Errorf("memparse table of a delta:\n%s", b.String())
	}
}

func TestChainInspect(t *testing.T) {
	ctx := context.Background()
	c := writeChain(t)
	o := InspectOptions{Cmd: true, Env: true}
	full, err := Inspect(ctx, c.full, &o)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := Inspect(ctx, c.child, &o)
	if err != nil {
		t.Fatal(err)
	}
	o.Parents = []string{c.pre}
	child, err := Inspect(ctx, c.child, &o)
	if err != nil {
		t.Fatal(err)
	}
	var fp, cp, bp []*Process
	Walk(full.Processes, func(p *Process, _ int) { fp = append(fp, p) })
	Walk(child.Processes, func(p *Process, _ int) { cp = append(cp, p) })
	Walk(bare.Processes, func(p *Process, _ int) { bp = append(bp, p) })
	if len(fp) != len(cp) || len(fp) != len(bp) {
		t.Fatalf("processes: full %d, child %d, bare %d", len(fp), len(cp), len(bp))
	}
	notes := 0
	for i := range fp {
		if !slices.Equal(fp[i].Cmdline, cp[i].Cmdline) || !slices.Equal(fp[i].Env, cp[i].Env) || cp[i].MemoryNote != "" {
			t.Errorf("[%d] child+pre cmdline %q env %q note %q, full %q %q", fp[i].PID, cp[i].Cmdline, cp[i].Env, cp[i].MemoryNote, fp[i].Cmdline, fp[i].Env)
		}
		if len(fp[i].Cmdline) > 0 {
			if len(bp[i].Cmdline) != 0 || !strings.Contains(bp[i].MemoryNote, "in parent (not given)") {
				t.Errorf("[%d] child without parent: cmdline %q note %q", bp[i].PID, bp[i].Cmdline, bp[i].MemoryNote)
			}
			notes++
		}
	}
	if notes == 0 {
		t.Fatal("no process with a command line in the tiny set")
	}
	if child.Parent == nil || child.Parent.Manifest != c.preDigest {
		t.Errorf("inspection parent %+v", child.Parent)
	}
	var b bytes.Buffer
	if err := WriteInspection(&b, bare); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Memory: command line and environment in parent (not given)") || !strings.Contains(b.String(), "Chain: delta of") {
		t.Errorf("inspection of child without parent:\n%s", b.String())
	}
}

func TestChainDiff(t *testing.T) {
	ctx := context.Background()
	// The mixed chain holds the full archive's memory as well.
	cm := writeChain(t, true)
	d, err := DiffArchives(ctx, cm.full, cm.child, &DiffOptions{Parents: []string{cm.pre}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Memory) != 0 || len(d.Notes) != 0 {
		t.Errorf("diff full child+pre (mixed): memory %+v, notes %q", d.Memory, d.Notes)
	}
	// The dirtied parent alone does differ, by one byte a page.
	d, err = DiffArchives(ctx, cm.full, cm.pre, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.MemoryTotal.ChangedPages == 0 || d.MemoryTotal.ChangedBytes != d.MemoryTotal.ChangedPages {
		t.Errorf("diff full pre (dirtied): %+v", d.MemoryTotal)
	}

	c := writeChain(t)
	d, err = DiffArchives(ctx, c.full, c.child, &DiffOptions{Parents: []string{c.pre}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Memory) != 0 || d.MemoryTotal.ChangedPages+d.MemoryTotal.AddedPages+d.MemoryTotal.RemovedPages != 0 || len(d.Notes) != 0 {
		t.Errorf("diff full child+pre: memory %+v, total %+v, notes %q", d.Memory, d.MemoryTotal, d.Notes)
	}
	for _, p := range d.Processes {
		if p.Change != Unchanged {
			t.Errorf("process changed: %+v", p)
		}
	}
	// Without the parent, the memory is not compared, and said so.
	d, err = DiffArchives(ctx, c.full, c.child, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Notes) == 0 || d.Identical || len(d.Memory) != 0 || !strings.Contains(d.Notes[0], "in parent (not given)") {
		t.Errorf("diff full child: memory %+v, notes %q", d.Memory, d.Notes)
	}
	var b bytes.Buffer
	if err := WriteDiff(&b, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Not compared") {
		t.Errorf("diff output:\n%s", b.String())
	}
	// Parent given to two full archives.
	if _, err := DiffArchives(ctx, c.full, c.other, &DiffOptions{Parents: []string{c.pre}}); !errors.Is(err, format.ErrParent) {
		t.Errorf("diff of two full archives with --parent: %v, want ErrParent", err)
	}
}

func TestChainWrongParent(t *testing.T) {
	ctx := context.Background()
	c := writeChain(t)
	for _, parents := range [][]string{{c.other}, {c.full}, {c.pre, c.other}} {
		a, err := Load(ctx, c.child, &LoadOptions{Images: true, Pages: true, Parents: parents})
		if err == nil {
			a.Close()
			t.Errorf("Load(child, parents %v) succeeded", parents)
			continue
		}
		if !errors.Is(err, format.ErrParent) {
			t.Errorf("Load(child, parents %v) = %v, want ErrParent", parents, err)
		}
	}
	if _, err := DiffArchives(ctx, c.full, c.child, &DiffOptions{Parents: []string{c.other}}); !errors.Is(err, format.ErrParent) {
		t.Errorf("diff with a wrong parent: %v", err)
	}
	if _, err := Inspect(ctx, c.child, &InspectOptions{Cmd: true, Parents: []string{c.other}}); !errors.Is(err, format.ErrParent) {
		t.Errorf("inspect with a wrong parent: %v", err)
	}
	// A parent given to a full archive.
	if _, err := Load(ctx, c.full, &LoadOptions{Parents: []string{c.pre}}); !errors.Is(err, format.ErrParent) {
		t.Errorf("Load(full, parent) = %v, want ErrParent", err)
	}
}

// TestChainDepth2 reads a chain of two increments: pre (dirtied, see
// dirtyParent), mid deduplicated against it (keeping the pages pre does
// not have right), and top deduplicated against mid (every page in
// parent, found in mid or, through it, in pre).
func TestChainDepth2(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	full := writeTiny(t, dir, "full.ckpt", tinyOptions{})
	preDir, midDir, topDir := filepath.Join(dir, "pre"), filepath.Join(dir, "mid"), filepath.Join(dir, "top")
	for _, d := range []string{preDir, midDir, topDir} {
		copyDir(t, tinyImages, d)
	}
	dirtyParent(t, preDir)
	pre := writeTiny(t, dir, "pre.ckpt", tinyOptions{imagesDir: preDir, preCheckpoint: true})
	o := &incremental.Options{PageSize: PageSize, NoSync: true}
	if _, err := incremental.Dedup(ctx, preDir, midDir, o); err != nil {
		t.Fatal(err)
	}
	// mid keeps its parent link while top is deduplicated through it.
	st, err := incremental.Dedup(ctx, midDir, topDir, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.PagesWritten != 0 {
		t.Fatalf("Dedup through mid = %+v, want every page in parent", st)
	}
	for _, d := range []string{midDir, topDir} {
		if err := os.Remove(filepath.Join(d, "parent")); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := readLink(pre)
	if err != nil {
		t.Fatal(err)
	}
	mid := writeTiny(t, dir, "mid.ckpt", tinyOptions{imagesDir: midDir,
		parent: &format.Parent{Manifest: lp.Digest, Images: format.ImagesDigest(lp.Manifest.Members, format.PreCheckpointDir), Depth: 1}})
	lm, err := readLink(mid)
	if err != nil {
		t.Fatal(err)
	}
	top := writeTiny(t, dir, "top.ckpt", tinyOptions{imagesDir: topDir,
		parent: &format.Parent{Manifest: lm.Digest, Images: format.ImagesDigest(lm.Manifest.Members, format.CheckpointDir), Depth: 2}})

	s, err := Show(ctx, top, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Parent == nil || s.Parent.Depth != 2 || s.Parent.Manifest != lm.Digest {
		t.Errorf("show top: parent %+v", s.Parent)
	}
	want := hexdump(t, full)
	if got := hexdump(t, top, mid, pre); got != want {
		t.Error("hexdump of top+mid+pre differs from the full archive's")
	}
	d, err := DiffArchives(ctx, full, top, &DiffOptions{Parents: []string{mid, pre}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Memory) != 0 || len(d.Notes) != 0 {
		t.Errorf("diff full top+mid+pre: memory %+v, notes %q", d.Memory, d.Notes)
	}
	// Only the nearest parent, or the parents in the wrong order: refused.
	for _, ps := range [][]string{{mid}, {pre, mid}} {
		if a, err := Load(ctx, top, &LoadOptions{Images: true, Pages: true, Parents: ps}); !errors.Is(err, format.ErrParent) {
			a.Close()
			t.Errorf("Load(top, %v) = %v, want ErrParent", ps, err)
		}
	}
}
