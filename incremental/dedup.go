package incremental

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ckpt/ckpt/format/criuimg"
)

// Options tunes [Dedup]. A nil *Options means the zero value, whose
// fields all mean their documented defaults.
type Options struct {
	// ParentLink is the target of the "parent" symlink Dedup creates in
	// the final image directory, as CRIU's --prev-images-dir or podman's
	// "parent -> ../pre-checkpoint". Empty means the parent directory's
	// path relative to the final directory. A relative target is resolved
	// from the final directory; it must name the parent directory, or
	// Dedup fails with [ErrParentLink] before changing anything.
	ParentLink string
	// PageSize is the dumping host's page size, a power of two; 0 means
	// os.Getpagesize(). CRIU images do not record it.
	PageSize int64
	// Parallelism is the number of tasks deduplicated at once; 0 means
	// [DefaultParallelism].
	Parallelism int
	// ChunkSize is the number of bytes of pages compared per read, rounded
	// down to whole pages (at least one); 0 means [DefaultChunkSize]. Each
	// task being deduplicated holds three buffers of this size.
	ChunkSize int
	// NoSync skips the fsync of the files and of the directory written.
	// Only for tests and for image directories on tmpfs.
	NoSync bool
}

// Stats reports what [Dedup] did. Pages and bytes count the tasks'
// private memory (pagemap-<pid>.img and its pages file); shared memory
// pagemaps are left alone and not counted.
type Stats struct {
	// Tasks is the number of task pagemaps in the final image set.
	Tasks int
	// TasksRewritten is the number of tasks whose pagemap and pages file
	// were rewritten (those with at least one page found in the parent).
	TasksRewritten int
	// PagesScanned is the number of pages the final image set stored
	// before deduplication.
	PagesScanned int64
	// PagesWritten is the number of pages it stores after (kept because
	// they differ from the parent's or the parent has none there).
	PagesWritten int64
	// PagesParent is the number of pages newly marked in parent
	// (PE_PARENT) and dropped from the pages files:
	// PagesScanned = PagesWritten + PagesParent.
	PagesParent int64
	// BytesBefore is the size of the tasks' pages files before.
	BytesBefore int64
	// BytesAfter is their size after.
	BytesAfter int64
}

// result is the outcome of one task's deduplication, not yet committed.
type result struct {
	pid                 uint32
	oldPages            string // base name of the old pages file; "" if none
	newID               uint32
	pagesTmp, pagemapTm string // temporary files in the final directory
	scanned, kept, par  int64
	before, after       int64
	rewritten           bool // committed
}

// Dedup rewrites the final image set in finalDir so that every private
// page that is byte-identical to the page at the same address in the
// image set in parentDir (or further up its chain of parent links) is
// marked in parent (PE_PARENT) and dropped from the pages file, and links
// finalDir to parentDir with a "parent" symlink, so that `criu restore -D
// finalDir` restores the same memory. parentDir and finalDir are image
// directories of full dumps of the same process tree, parentDir the older
// one (a `criu dump --leave-running`). See the package documentation for
// the algorithm and its invariants.
//
// Dedup checks both image sets with criuimg.CheckImages first and changes
// nothing if either has a problem. It writes the new pagemap and pages of
// each task to temporary files, and only when every task is done, links
// the parent and renames them into place; on any error before that,
// finalDir is left unchanged. The returned error names both directories.
func Dedup(ctx context.Context, parentDir, finalDir string, opts *Options) (*Stats, error) {
	st, err := dedup(ctx, parentDir, finalDir, opts, true)
	if err != nil {
		return nil, fmt.Errorf("dedup %s against %s: %w", finalDir, parentDir, err)
	}
	return st, nil
}

// dedup is Dedup; check false skips criuimg.CheckImages, for tests on
// image sets that hold only pagemaps and pages.
func dedup(ctx context.Context, parentDir, finalDir string, opts *Options, check bool) (st *Stats, err error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	ps, err := pageSizeOf(o.PageSize)
	if err != nil {
		return nil, err
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	chunkPages := max(uint64(o.ChunkSize)/ps, 1)

	target, linked, err := parentLink(parentDir, finalDir, o.ParentLink)
	if err != nil {
		return nil, err
	}
	if check {
		if err := checkDir(finalDir, int64(ps), linked); err != nil {
			return nil, err
		}
		if err := checkDir(parentDir, int64(ps), hasParentLink(parentDir)); err != nil {
			return nil, err
		}
	}

	fin, err := openSet(finalDir, ps)
	if err != nil {
		return nil, err
	}
	defer fin.Close()
	par, err := openSet(parentDir, ps)
	if err != nil {
		return nil, err
	}
	defer par.Close()

	tasks, err := pids(finalDir)
	if err != nil {
		return nil, err
	}
	firstID, err := nextPagesID(finalDir)
	if err != nil {
		return nil, err
	}

	results := make([]*result, len(tasks))
	bufs := make(chan *buffers, o.Parallelism)
	for range o.Parallelism {
		bufs <- newBuffers(chunkPages, ps)
	}
	err = runPool(ctx, len(tasks), o.Parallelism, func(ctx context.Context, i int) error {
		buf := <-bufs
		defer func() { bufs <- buf }()
		r, err := dedupTask(ctx, &dedupSets{fin: fin, par: par, buf: buf, o: &o}, tasks[i], firstID+uint32(i))
		results[i] = r
		return err
	})
	if err != nil {
		for _, r := range results {
			r.discard()
		}
		return nil, err
	}
	if err := commit(finalDir, target, linked, results, o.NoSync); err != nil {
		return nil, err
	}

	return sumStats(results), nil
}

// sumStats adds up the tasks' results.
func sumStats(results []*result) *Stats {
	st := &Stats{Tasks: len(results)}
	for _, r := range results {
		if r.rewritten {
			st.TasksRewritten++
		}
		st.PagesScanned += r.scanned
		st.PagesWritten += r.kept
		st.PagesParent += r.par
		st.BytesBefore += r.before
		st.BytesAfter += r.after
	}
	return st
}

// runPool runs fn for 0..n-1 on up to parallelism goroutines. The first
// error cancels the rest (fn sees ctx done) and is returned; so is ctx's.
func runPool(ctx context.Context, n, parallelism int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		next     = make(chan int)
	)
	for range min(parallelism, max(n, 1)) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// pageSizeOf validates a page size option.
func pageSizeOf(n int64) (uint64, error) {
	if n == 0 {
		n = int64(os.Getpagesize())
	}
	if n < 512 || bits.OnesCount64(uint64(n)) != 1 || n > 1<<30 {
		return 0, fmt.Errorf("check page size %d: not a power of two between 512 and 1 GiB", n)
	}
	return uint64(n), nil
}

// hasParentLink reports whether dir has a "parent" entry.
func hasParentLink(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, "parent"))
	return err == nil
}

// parentLink returns the target of the parent link to create in finalDir
// and whether finalDir already has a parent link naming parentDir (then
// nothing is to be created). It fails with ErrParentLink when finalDir
// has a "parent" entry naming something else, or when the target (given or
// computed) does not name parentDir.
func parentLink(parentDir, finalDir, target string) (string, bool, error) {
	pfi, err := os.Stat(parentDir)
	if err != nil {
		return "", false, err
	}
	ffi, err := os.Stat(finalDir)
	if err != nil {
		return "", false, err
	}
	if !pfi.IsDir() || !ffi.IsDir() {
		return "", false, fmt.Errorf("check directories: %w", fs.ErrInvalid)
	}
	if os.SameFile(pfi, ffi) {
		return "", false, fmt.Errorf("check directories: %w: the parent is the final image set itself", ErrParentLink)
	}
	link := filepath.Join(finalDir, "parent")
	if _, err := os.Lstat(link); err == nil {
		fi, err := os.Stat(link)
		if err != nil || !os.SameFile(fi, pfi) {
			return "", false, fmt.Errorf("check %s: %w: it exists and does not name %s", link, ErrParentLink, parentDir)
		}
		return "", true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if target == "" {
		absF, err := filepath.Abs(finalDir)
		if err != nil {
			return "", false, err
		}
		absP, err := filepath.Abs(parentDir)
		if err != nil {
			return "", false, err
		}
		if target, err = filepath.Rel(absF, absP); err != nil {
			return "", false, err
		}
	}
	resolved := target
	if !filepath.IsAbs(target) {
		resolved = filepath.Join(finalDir, target)
	}
	if fi, err := os.Stat(resolved); err != nil || !os.SameFile(fi, pfi) {
		return "", false, fmt.Errorf("check link target %q: %w: it does not name %s from %s", target, ErrParentLink, parentDir, finalDir)
	}
	return target, false, nil
}

// nextPagesID returns one more than the largest id of the pages-<id>.img
// files in dir. Rewritten pages files get fresh ids from it, so that the
// old pages file stays valid until its pagemap is replaced.
func nextPagesID(dir string) (uint32, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var top uint64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "pages-")
		if !ok {
			continue
		}
		if s, ok = strings.CutSuffix(s, ".img"); !ok {
			continue
		}
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			top = max(top, n)
		}
	}
	if top > 1<<31 {
		return 0, fmt.Errorf("check pages ids: %w: pages id %d is too large", ErrImage, top)
	}
	return uint32(top) + 1, nil
}

// buffers are one worker's reusable buffers.
type buffers struct {
	fin, par []byte
	got      []bool
}

func newBuffers(chunkPages, ps uint64) *buffers {
	return &buffers{fin: make([]byte, chunkPages*ps), par: make([]byte, chunkPages*ps), got: make([]bool, chunkPages)}
}

// dedupSets is what dedupTask works with: the final set, its parent, a
// buffer of its own, and the options.
type dedupSets struct {
	fin, par *imageSet
	buf      *buffers
	o        *Options
}

// dedupTask compares the stored pages of task pid in fin with the pages of
// par at the same addresses, and writes the new pages file and pagemap to
// temporary files in fin's directory. It returns a result without
// temporary files when no page is found in the parent.
func dedupTask(ctx context.Context, sets *dedupSets, pid, newID uint32) (_ *result, err error) {
	fin, par, buf := sets.fin, sets.par, sets.buf
	t, err := fin.task(pid)
	if err != nil {
		return nil, err
	}
	res := &result{pid: pid, newID: newID, before: t.size}
	if t.pages != nil {
		res.oldPages = fmt.Sprintf("pages-%d.img", t.pagesID)
	}
	ps := fin.pageSize
	chunkPages := uint64(len(buf.got))

	tmp, err := os.CreateTemp(fin.dir, fmt.Sprintf(".dedup-pages-%d-*", pid))
	if err != nil {
		return nil, err
	}
	res.pagesTmp = tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		if err != nil {
			res.discard() // res, not the named result, which is nil on error
		}
	}()
	bw := bufio.NewWriterSize(tmp, len(buf.fin))

	out := make([]pmEntry, 0, len(t.runs))
	for _, r := range t.runs {
		n := (r.end - r.vaddr) / ps
		if !r.stored() {
			out = append(out, pmEntry{r.vaddr, n, r.flags})
			continue
		}
		var cur pmEntry
		curParent := false
		for va := r.vaddr; va < r.end; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			k := min(chunkPages, (r.end-va)/ps)
			fb, pb, got := buf.fin[:k*ps], buf.par[:k*ps], buf.got[:k]
			if _, err := t.pages.ReadAt(fb, r.off+int64(va-r.vaddr)); err != nil {
				return nil, fmt.Errorf("read pages of task %d at %#x: %w", pid, va, err)
			}
			clear(got)
			if err := par.fill(pid, va, pb, got); err != nil {
				return nil, err
			}
			for i := range k {
				pg := fb[i*ps : (i+1)*ps]
				eq := got[i] && bytes.Equal(pg, pb[i*ps:(i+1)*ps])
				if cur.nrPages == 0 || eq != curParent {
					if cur.nrPages > 0 {
						out = append(out, cur)
					}
					cur = pmEntry{vaddr: va + i*ps, flags: r.flags}
					if eq {
						cur.flags = criuimg.PEParent
					}
					curParent = eq
				}
				cur.nrPages++
				res.scanned++
				if eq {
					res.par++
					continue
				}
				res.kept++
				if _, err := bw.Write(pg); err != nil {
					return nil, err
				}
			}
			va += k * ps
		}
		out = append(out, cur)
	}
	if res.par == 0 {
		res.after = res.before
		tmp.Close()
		tmp = nil
		os.Remove(res.pagesTmp)
		res.pagesTmp = ""
		return res, nil
	}
	res.after = res.kept * int64(ps)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := finishFile(tmp, sets.o.NoSync); err != nil {
		return nil, err
	}
	tmp = nil
	if err := sets.writePagemap(res, t.magic, out); err != nil {
		return nil, err
	}
	return res, nil
}

// writePagemap writes res's new pagemap, entries out, to a temporary file
// in the final set's directory.
func (sets *dedupSets) writePagemap(res *result, magic []byte, out []pmEntry) error {
	pm, err := os.CreateTemp(sets.fin.dir, fmt.Sprintf(".dedup-pagemap-%d-*", res.pid))
	if err != nil {
		return err
	}
	res.pagemapTm = pm.Name()
	if _, err := pm.Write(encodePagemap(magic, res.newID, out)); err != nil {
		pm.Close()
		return err
	}
	return finishFile(pm, sets.o.NoSync)
}

// finishFile syncs (unless noSync), makes world-readable like CRIU's
// images, and closes f.
func finishFile(f *os.File, noSync bool) error {
	err := f.Chmod(0o644)
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// discard removes the result's temporary files.
func (r *result) discard() {
	if r == nil {
		return
	}
	if r.pagesTmp != "" {
		os.Remove(r.pagesTmp)
	}
	if r.pagemapTm != "" {
		os.Remove(r.pagemapTm)
	}
}

// commit makes the results the final image set: it creates the parent
// link (unless linked), then for each rewritten task renames the new pages
// file to pages-<newID>.img, renames the new pagemap over
// pagemap-<pid>.img (the switch: before it the task uses its old pages
// file, after it the new one and the parent) and removes the old pages
// file. Every step leaves a valid image set. On error the temporary
// files not yet renamed are removed.
func commit(dir, target string, linked bool, results []*result, noSync bool) (err error) {
	done := 0
	defer func() {
		if err != nil {
			for _, r := range results[done:] {
				r.discard()
			}
		}
	}()
	if !linked {
		tmp := filepath.Join(dir, ".dedup-parent.tmp")
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link parent: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "parent")); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("link parent: %w", err)
		}
	}
	if err := syncDir(dir, noSync); err != nil {
		return err
	}
	for i, r := range results {
		done = i
		if r.pagesTmp == "" {
			continue
		}
		pages := filepath.Join(dir, fmt.Sprintf("pages-%d.img", r.newID))
		if err := os.Rename(r.pagesTmp, pages); err != nil {
			return fmt.Errorf("commit pages of task %d: %w", r.pid, err)
		}
		r.pagesTmp = pages // discard now removes the unreferenced new file
		if err := syncDir(dir, noSync); err != nil {
			return err
		}
		if err := os.Rename(r.pagemapTm, filepath.Join(dir, fmt.Sprintf("pagemap-%d.img", r.pid))); err != nil {
			return fmt.Errorf("commit pagemap of task %d: %w", r.pid, err)
		}
		r.pagesTmp, r.pagemapTm = "", ""
		if r.oldPages != "" {
			if err := os.Remove(filepath.Join(dir, r.oldPages)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove old pages of task %d: %w", r.pid, err)
			}
		}
		r.rewritten = true
	}
	done = len(results)
	return syncDir(dir, noSync)
}

// syncDir fsyncs the directory dir unless noSync.
func syncDir(dir string, noSync bool) error {
	if noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
