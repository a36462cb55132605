package incremental

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckpt/ckpt/format/criuimg"
)

// TestEncodePagemapMirrorsCRIU re-encodes the pagemaps CRIU 4.2.1 wrote
// and requires the very same bytes.
func TestEncodePagemapMirrorsCRIU(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join(tinyDir, "pagemap-*.img"))
	if len(m) == 0 {
		t.Fatal("no pagemap in testdata")
	}
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, es, err := criuimg.ReadPagemap(filepath.Base(p), b)
		if err != nil {
			t.Fatal(err)
		}
		var out []pmEntry
		for _, e := range es {
			out = append(out, pmEntry{e.Vaddr, e.NrPages, e.Flags})
		}
		if got := encodePagemap(nil, h.PagesID, out); !bytes.Equal(got, b) {
			t.Errorf("encodePagemap(%s) =\n%x\nwant\n%x", filepath.Base(p), got, b)
		}
	}
}

// TestEncodePagemapRoundTrip decodes what the encoder writes, with large
// values and every flag combination Dedup writes.
func TestEncodePagemapRoundTrip(t *testing.T) {
	in := []pmEntry{
		{0x1000, 1, criuimg.PEPresent},
		{0x2000, 3, criuimg.PEParent},
		{0x5000, 1 << 40, criuimg.PEPresent | criuimg.PELazy},
		{0x7fff_ffff_f000, 1, criuimg.PELazy},
	}
	b := encodePagemap(nil, 1<<31, in)
	if mi, err := criuimg.Magic("pagemap-1.img", b); err != nil || mi.Name != "PAGEMAP" {
		t.Fatalf("criuimg.Magic = %+v, %v, want PAGEMAP", mi, err)
	}
	h, es, err := criuimg.ReadPagemap("pagemap-1.img", b)
	if err != nil {
		t.Fatal(err)
	}
	if h.PagesID != 1<<31 || len(es) != len(in) {
		t.Fatalf("ReadPagemap = %+v, %d entries, want pages id %d, %d entries", h, len(es), 1<<31, len(in))
	}
	for i, e := range es {
		if got := (pmEntry{e.Vaddr, e.NrPages, e.Flags}); got != in[i] || !e.HasFlags || e.InParent {
			t.Errorf("entry %d = %+v, want %+v with flags and without in_parent", i, e, in[i])
		}
	}
}

// tinyPages is the number of pages stored in testdata/tiny.
const tinyPages = 17 + 15

// TestDedupTiny deduplicates a copy of a real image set, with one page of
// each task changed, against the original.
func TestDedupTiny(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	parent, final, full := filepath.Join(base, "pre"), filepath.Join(base, "final"), filepath.Join(base, "full")
	copyDir(t, tinyDir, parent)
	copyDir(t, tinyDir, final)
	pokePage(t, final, "pages-1.img", 3, 0xa0)
	pokePage(t, final, "pages-2.img", 14, 0xb0)
	copyDir(t, final, full)

	st, err := Dedup(ctx, parent, final, &Options{PageSize: ps, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Tasks: 2, TasksRewritten: 2, PagesScanned: tinyPages, PagesWritten: 2, PagesParent: tinyPages - 2,
		BytesBefore: tinyPages * ps, BytesAfter: 2 * ps}
	if *st != want {
		t.Errorf("Dedup() = %+v, want %+v", *st, want)
	}
	if l, err := os.Readlink(filepath.Join(final, "parent")); err != nil || l != "../pre" {
		t.Errorf("parent link = %q, %v, want ../pre", l, err)
	}
	// New pages files get fresh ids; the old ones are gone.
	for pid, wantID := range map[uint32]uint32{19163: 3, 19164: 4} {
		if id, _ := readEntries(t, final, pid); id != wantID {
			t.Errorf("pagemap-%d.img pages id = %d, want %d", pid, id, wantID)
		}
	}
	for _, name := range []string{"pages-1.img", "pages-2.img"} {
		if _, err := os.Stat(filepath.Join(final, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old %s still there: %v", name, err)
		}
	}
	noTemp(t, final)
	if err := checkDir(final, ps, true); err != nil {
		t.Errorf("CheckImages(deduplicated) = %v", err)
	}
	checkParents(t, final, parent)
	// The changed page of task 19163 is page 3 of its stored pages.
	_, es := readEntries(t, full, 19163)
	addr := nthPage(es, 3)
	_, got := readEntries(t, final, 19163)
	for _, e := range got {
		in := addr >= e.vaddr && addr < e.vaddr+e.nrPages*ps
		if in != (e.flags != criuimg.PEParent) {
			t.Errorf("entry %+v: flags %d, want PE_PARENT unless it holds %#x", e, e.flags, addr)
		}
	}

	rep, err := MemoryDiff(ctx, final, full, &DiffOptions{PageSize: ps})
	if err != nil || !rep.Equal() {
		t.Fatalf("MemoryDiff(deduplicated, full) = %+v, %v, want equal", rep, err)
	}
	rep, err = MemoryDiff(ctx, final, parent, &DiffOptions{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Equal() || len(rep.Tasks) != 2 || rep.Tasks[0].Differ != 1 || rep.Tasks[1].Differ != 1 ||
		!slices.Equal(rep.Tasks[0].Addrs, []uint64{addr}) || rep.Tasks[0].Compared != 17 {
		t.Errorf("MemoryDiff(deduplicated, parent) = %+v, want one differing page per task, %#x in 19163", rep.Tasks, addr)
	}

	// A second run finds nothing more and changes nothing.
	before := fileNames(t, final)
	st, err = Dedup(ctx, parent, final, &Options{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	want = Stats{Tasks: 2, PagesScanned: 2, PagesWritten: 2, BytesBefore: 2 * ps, BytesAfter: 2 * ps}
	if *st != want {
		t.Errorf("second Dedup() = %+v, want %+v", *st, want)
	}
	if after := fileNames(t, final); !slices.Equal(before, after) {
		t.Errorf("second Dedup changed the files: %q, want %q", after, before)
	}
}

// nthPage returns the address of the n-th stored page of entries.
func nthPage(es []pmEntry, n uint64) uint64 {
	for _, e := range es {
		if e.flags&criuimg.PEPresent == 0 {
			continue
		}
		if n < e.nrPages {
			return e.vaddr + n*ps
		}
		n -= e.nrPages
	}
	panic("page out of range")
}

// TestDedupChain deduplicates against a parent that is itself
// deduplicated: pages the parent takes from its own parent are found there.
func TestDedupChain(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	gp, p, f, full := filepath.Join(base, "gp"), filepath.Join(base, "p"), filepath.Join(base, "f"), filepath.Join(base, "full")
	copyDir(t, tinyDir, gp)
	copyDir(t, tinyDir, p)
	pokePage(t, p, "pages-1.img", 5, 0x11)
	copyDir(t, p, f)
	pokePage(t, f, "pages-1.img", 7, 0x22)
	copyDir(t, f, full)
	if _, err := Dedup(ctx, gp, p, &Options{PageSize: ps}); err != nil {
		t.Fatal(err)
	}
	st, err := Dedup(ctx, p, f, &Options{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	if st.PagesWritten != 1 || st.PagesParent != tinyPages-1 {
		t.Errorf("Dedup(chain) = %+v, want 1 page written, %d in parent", *st, tinyPages-1)
	}
	if err := checkDir(f, ps, true); err != nil {
		t.Error(err)
	}
	checkParents(t, f, p)
	checkParents(t, p, gp)
	if rep, err := MemoryDiff(ctx, f, full, &DiffOptions{PageSize: ps}); err != nil || !rep.Equal() {
		t.Fatalf("MemoryDiff(chain, full) = %+v, %v, want equal", rep, err)
	}
	if eq, err := Equal(ctx, f, gp); err != nil || eq {
		t.Errorf("Equal(chain, grandparent) = %v, %v, want false", eq, err)
	}
}

// TestDedupScenarios runs Dedup on image sets holding only pagemaps and
// pages (without criuimg.CheckImages), one case per situation the
// algorithm must handle.
func TestDedupScenarios(t *testing.T) {
	P, L, Pa := criuimg.PEPresent, criuimg.PELazy, criuimg.PEParent
	same, other := addrPage(1), addrPage(2)
	zero := func(uint64) []byte { return make([]byte, ps) }
	type task = synthTask
	tests := []struct {
		name          string
		grand, parent []task // grand: the parent's own parent, if any
		final         []task
		want          map[uint32][]pmEntry // nil: task left as it was
		kept          int64
	}{{
		name:   "all equal",
		parent: []task{{1, []pmEntry{{0x10000, 4, P | L}}, same}},
		final:  []task{{1, []pmEntry{{0x10000, 4, P | L}}, same}},
		want:   map[uint32][]pmEntry{1: {{0x10000, 4, Pa}}},
	}, {
		name:   "split and keep flags",
		parent: []task{{1, []pmEntry{{0x10000, 2, P}, {0x13000, 1, P}}, same}},
		final:  []task{{1, []pmEntry{{0x10000, 5, P | L}, {0x20000, 1, P}}, same}},
		want:   map[uint32][]pmEntry{1: {{0x10000, 2, Pa}, {0x12000, 1, P | L}, {0x13000, 1, Pa}, {0x14000, 1, P | L}, {0x20000, 1, P}}},
		kept:   3,
	}, {
		name:   "task not in parent",
		parent: []task{{1, []pmEntry{{0x10000, 2, P}}, same}},
		final:  []task{{1, []pmEntry{{0x10000, 2, P}}, same}, {2, []pmEntry{{0x10000, 2, P}}, same}},
		want:   map[uint32][]pmEntry{1: {{0x10000, 2, Pa}}},
		kept:   2,
	}, {
		name:   "moved mapping",
		parent: []task{{1, []pmEntry{{0x10000, 4, P}}, zero}},
		final:  []task{{1, []pmEntry{{0x12000, 4, P}}, zero}},
		// Zero pages compare like any other: the two overlapping
		// pages are equal, the two beyond the parent's mapping kept.
		want: map[uint32][]pmEntry{1: {{0x12000, 2, Pa}, {0x14000, 2, P}}},
		kept: 2,
	}, {
		name:   "changed contents",
		parent: []task{{1, []pmEntry{{0x10000, 3, P}}, other}},
		final:  []task{{1, []pmEntry{{0x10000, 3, P}}, same}},
		kept:   3,
	}, {
		name:   "lazy pages without data and pages already in parent",
		parent: []task{{1, []pmEntry{{0x10000, 1, P}, {0x11000, 1, L}, {0x12000, 1, P}}, same}},
		final:  []task{{1, []pmEntry{{0x10000, 1, Pa}, {0x11000, 1, L}, {0x12000, 1, P}}, same}},
		want:   map[uint32][]pmEntry{1: {{0x10000, 1, Pa}, {0x11000, 1, L}, {0x12000, 1, Pa}}},
	}, {
		name:   "parent lazy page has no data",
		parent: []task{{1, []pmEntry{{0x10000, 2, L}}, same}},
		final:  []task{{1, []pmEntry{{0x10000, 2, P | L}}, same}},
		kept:   2,
	}, {
		name:   "chain resolves through the grandparent",
		grand:  []task{{1, []pmEntry{{0x10000, 4, P}}, same}},
		parent: []task{{1, []pmEntry{{0x10000, 2, Pa}, {0x12000, 2, P}}, other}},
		final:  []task{{1, []pmEntry{{0x10000, 4, P}}, same}},
		want:   map[uint32][]pmEntry{1: {{0x10000, 2, Pa}, {0x12000, 2, P}}},
		kept:   2,
	}, {
		name:   "chain without the page in the grandparent",
		grand:  []task{{1, []pmEntry{{0x10000, 1, P}}, same}},
		parent: []task{{1, []pmEntry{{0x10000, 2, Pa}}, other}},
		final:  []task{{1, []pmEntry{{0x10000, 2, P}}, same}},
		want:   map[uint32][]pmEntry{1: {{0x10000, 1, Pa}, {0x11000, 1, P}}},
		kept:   1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			parent, final, full := filepath.Join(base, "p"), filepath.Join(base, "f"), filepath.Join(base, "full")
			write := func(dir string, ts []task) {
				for i, k := range ts {
					writeTask(t, dir, k.pid, uint32(i+1), k.entries, k.page)
				}
			}
			write(parent, tt.parent)
			if tt.grand != nil {
				write(filepath.Join(base, "gp"), tt.grand)
				if err := os.Symlink("../gp", filepath.Join(parent, "parent")); err != nil {
					t.Fatal(err)
				}
			}
			write(final, tt.final)
			if hasParentPages(tt.final) {
				if err := os.Symlink("../p", filepath.Join(final, "parent")); err != nil {
					t.Fatal(err)
				}
			}
			write(full, tt.final)
			st, err := dedup(context.Background(), parent, final, &Options{PageSize: ps, ChunkSize: 2 * ps}, false)
			if err != nil {
				t.Fatal(err)
			}
			if st.PagesWritten != tt.kept || st.PagesParent != st.PagesScanned-tt.kept {
				t.Errorf("dedup() = %+v, want %d pages kept", *st, tt.kept)
			}
			for _, k := range tt.final {
				_, got := readEntries(t, final, k.pid)
				want := tt.want[k.pid]
				if want == nil {
					want = k.entries
				}
				if !slices.Equal(got, want) {
					t.Errorf("task %d entries = %+v, want %+v", k.pid, got, want)
				}
			}
			noTemp(t, final)
			if hasParentPages(tt.final) {
				return // full is not a complete image set then
			}
			if rep, err := MemoryDiff(context.Background(), final, full, &DiffOptions{PageSize: ps}); err != nil || !rep.Equal() {
				t.Errorf("MemoryDiff(deduplicated, before) = %+v, %v, want equal", rep, err)
			}
		})
	}
}

// synthTask is a task of a synthesized image set.
type synthTask struct {
	pid     uint32
	entries []pmEntry
	page    func(uint64) []byte
}

// hasParentPages reports whether a task of ts has pages in parent.
func hasParentPages(ts []synthTask) bool {
	for _, k := range ts {
		for _, e := range k.entries {
			if e.flags&criuimg.PEParent != 0 {
				return true
			}
		}
	}
	return false
}

// TestDedupFailures checks that every refused or failed Dedup leaves the
// final image set as it was: same files, same contents, no parent link,
// no temporary file, still accepted by criuimg.CheckImages.
func TestDedupFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, parent, final string) (context.Context, *Options)
		wantErr error
	}{{
		name: "parent pages file of the wrong size",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			if err := os.Truncate(filepath.Join(parent, "pages-1.img"), 3*ps); err != nil {
				t.Fatal(err)
			}
			return context.Background(), nil
		},
		wantErr: ErrImage,
	}, {
		name: "parent pages file missing",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			os.Remove(filepath.Join(parent, "pages-2.img"))
			return context.Background(), nil
		},
		wantErr: ErrImage,
	}, {
		name: "parent pagemap garbage",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			b := encodePagemap(nil, 1, nil)
			b = append(b, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3)
			if err := os.WriteFile(filepath.Join(parent, "pagemap-19163.img"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			return context.Background(), nil
		},
		wantErr: ErrImage,
	}, {
		name: "final already linked elsewhere",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			if err := os.Symlink("/", filepath.Join(final, "parent")); err != nil {
				t.Fatal(err)
			}
			return context.Background(), nil
		},
		wantErr: ErrParentLink,
	}, {
		name: "link target naming another directory",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			return context.Background(), &Options{ParentLink: "../elsewhere"}
		},
		wantErr: ErrParentLink,
	}, {
		name: "canceled",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, nil
		},
		wantErr: context.Canceled,
	}, {
		name: "bad page size",
		setup: func(t *testing.T, parent, final string) (context.Context, *Options) {
			return context.Background(), &Options{PageSize: 3000}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			parent, final := filepath.Join(base, "pre"), filepath.Join(base, "final")
			copyDir(t, tinyDir, parent)
			copyDir(t, tinyDir, final)
			os.Mkdir(filepath.Join(base, "elsewhere"), 0o755)
			pokePage(t, final, "pages-1.img", 0, 0x33)
			ctx, o := tt.setup(t, parent, final)
			linked := hasParentLink(final)
			d0, err := ImagesDigest(final)
			if err != nil {
				t.Fatal(err)
			}
			names := fileNames(t, final)
			_, err = Dedup(ctx, parent, final, o)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Dedup() = %v, want %v", err, tt.wantErr)
			}
			t.Logf("Dedup() = %v", err)
			if d1, err := ImagesDigest(final); err != nil || d1 != d0 {
				t.Errorf("ImagesDigest after the failure = %v, %v, want %v", d1, err, d0)
			}
			if got := fileNames(t, final); !slices.Equal(got, names) {
				t.Errorf("files after the failure = %q, want %q", got, names)
			}
			noTemp(t, final)
			if !linked {
				if err := checkDir(final, ps, false); err != nil {
					t.Errorf("CheckImages after the failure: %v", err)
				}
			}
		})
	}
}

// TestDedupRefusesItself refuses a parent that is the final set.
func TestDedupRefusesItself(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, tinyDir, dir)
	if _, err := Dedup(context.Background(), dir, dir, nil); !errors.Is(err, ErrParentLink) {
		t.Errorf("Dedup(dir, dir) = %v, want ErrParentLink", err)
	}
}

// TestLoadTaskRejects checks the reader's own checks of a pagemap, which
// protect Dedup and MemoryDiff even without criuimg.CheckImages.
func TestLoadTaskRejects(t *testing.T) {
	P, Pa := criuimg.PEPresent, criuimg.PEParent
	tests := []struct {
		name    string
		entries []pmEntry
		pages   int64 // size of the pages file; -1: the right size
	}{
		{"present and parent", []pmEntry{{0x1000, 1, P | Pa}}, -1},
		{"unaligned", []pmEntry{{0x1001, 1, P}}, -1},
		{"empty entry", []pmEntry{{0x1000, 0, P}}, -1},
		{"overlap", []pmEntry{{0x1000, 2, P}, {0x2000, 1, P}}, -1},
		{"unsorted", []pmEntry{{0x3000, 1, P}, {0x1000, 1, P}}, -1},
		{"past the address space", []pmEntry{{0xffff_ffff_ffff_f000, 2, P}}, -1},
		{"pages file too short", []pmEntry{{0x1000, 2, P}}, ps},
		{"pages file too long", []pmEntry{{0x1000, 2, P}}, 3 * ps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "pagemap-1.img"), encodePagemap(nil, 1, tt.entries), 0o644); err != nil {
				t.Fatal(err)
			}
			size := tt.pages
			if size < 0 {
				size = 0
				for _, e := range tt.entries {
					if e.flags == P && e.nrPages < 16 {
						size += int64(e.nrPages) * ps
					}
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "pages-1.img"), make([]byte, size), 0o644); err != nil {
				t.Fatal(err)
			}
			if tk, err := loadTask(dir, 1, ps); !errors.Is(err, ErrImage) {
				t.Errorf("loadTask() = %+v, %v, want ErrImage", tk, err)
			}
		})
	}
}

// TestMemoryDiff covers differences the deduplication tests do not:
// tasks and pages in one set only, and a broken chain.
func TestMemoryDiff(t *testing.T) {
	P, Pa := criuimg.PEPresent, criuimg.PEParent
	ctx := context.Background()
	base := t.TempDir()
	a, b, c := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	writeTask(t, a, 1, 1, []pmEntry{{0x10000, 4, P}}, addrPage(1))
	writeTask(t, a, 2, 2, []pmEntry{{0x10000, 1, P}}, addrPage(1))
	writeTask(t, b, 1, 1, []pmEntry{{0x11000, 4, P}}, addrPage(1))
	rep, err := MemoryDiff(ctx, a, b, &DiffOptions{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	want := []TaskDiff{
		{PID: 1, InA: true, InB: true, Compared: 3, OnlyA: 1, OnlyB: 1},
		{PID: 2, InA: true, OnlyA: 1},
	}
	if fmt.Sprint(rep.Tasks) != fmt.Sprint(want) || rep.Equal() {
		t.Errorf("MemoryDiff() = %+v, want %+v", rep.Tasks, want)
	}
	// Pages in parent without a parent link.
	writeTask(t, c, 1, 1, []pmEntry{{0x10000, 1, Pa}}, addrPage(1))
	if _, err := MemoryDiff(ctx, a, c, &DiffOptions{PageSize: ps}); !errors.Is(err, ErrChain) {
		t.Errorf("MemoryDiff(no parent) = %v, want ErrChain", err)
	}
	// A cyclic chain: c's parent is d, d's parent is c.
	d := filepath.Join(base, "d")
	writeTask(t, d, 1, 1, []pmEntry{{0x10000, 1, Pa}}, addrPage(1))
	os.Symlink("../d", filepath.Join(c, "parent"))
	os.Symlink("../c", filepath.Join(d, "parent"))
	if _, err := MemoryDiff(ctx, a, c, &DiffOptions{PageSize: ps}); !errors.Is(err, ErrChain) {
		t.Errorf("MemoryDiff(cyclic chain) = %v, want ErrChain", err)
	}
}

// TestDedupFailsMidway fails on the second task, after the first one's new
// files are written: they are removed and nothing changes.
func TestDedupFailsMidway(t *testing.T) {
	P := criuimg.PEPresent
	base := t.TempDir()
	parent, final := filepath.Join(base, "p"), filepath.Join(base, "f")
	writeTask(t, parent, 1, 1, []pmEntry{{0x10000, 4, P}}, addrPage(1))
	writeTask(t, parent, 2, 2, []pmEntry{{0x10000, 4, P}}, addrPage(1))
	writeTask(t, final, 1, 1, []pmEntry{{0x10000, 4, P}}, addrPage(1))
	writeTask(t, final, 2, 2, []pmEntry{{0x10000, 4, P}}, addrPage(1))
	if err := os.Truncate(filepath.Join(parent, "pages-2.img"), ps); err != nil {
		t.Fatal(err)
	}
	names := fileNames(t, final)
	d0 := mustDigest(t, final)
	_, err := dedup(context.Background(), parent, final, &Options{PageSize: ps, Parallelism: 1}, false)
	if !errors.Is(err, ErrImage) {
		t.Fatalf("dedup() = %v, want ErrImage", err)
	}
	if got := fileNames(t, final); !slices.Equal(got, names) || mustDigest(t, final) != d0 {
		t.Errorf("files after the failure = %q, want %q unchanged", got, names)
	}
}
