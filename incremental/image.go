package incremental

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	"github.com/ckpt/ckpt/internal/fileio"
)

// run is one pagemap entry of a task and where its pages are stored.
type run struct {
	vaddr, end uint64 // the entry covers [vaddr, end)
	flags      uint32 // criuimg.PE* flags, normalized
	// off is the byte offset of the entry's first page in the pages
	// file when the pages are stored in this image set, else -1.
	off int64
}

// stored reports whether the run's pages are in this image set's pages file.
func (r run) stored() bool { return r.flags&criuimg.PEPresent != 0 && r.flags&criuimg.PEParent == 0 }

// inParent reports whether the run's pages are in the parent image set.
func (r run) inParent() bool { return r.flags&criuimg.PEParent != 0 }

// task is the decoded pagemap of one task and its open pages file.
type task struct {
	pid     uint32
	magic   []byte // the pagemap image's 8 header bytes, as stored
	pagesID uint32
	runs    []run    // sorted by address, not overlapping
	pages   *os.File // pages-<pagesID>.img; nil when no page is stored
	size    int64    // size of pages, = stored pages * page size
}

// imageSet is a CRIU image directory opened for page reads. Tasks and the
// parent image set are opened on first use; an imageSet is safe for
// concurrent use. Close closes every file it opened, its parents' too.
type imageSet struct {
	dir      string
	pageSize uint64
	depth    int           // 0 for the set opened by the caller
	seen     []os.FileInfo // directories of the chain below, to refuse cycles
	mu       sync.Mutex    // guards tasks, parent, parentErr, parentDone
	tasks    map[uint32]*taskSlot
	parent   *imageSet
	parentOK bool // parent was looked up (parent may still be nil)
}

// taskSlot loads one task once.
type taskSlot struct {
	once sync.Once
	t    *task // nil when the set has no pagemap for the pid
	err  error
}

// openSet opens the image directory dir for page reads.
func openSet(dir string, pageSize uint64) (*imageSet, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open image set: %s is not a directory", dir)
	}
	return &imageSet{dir: dir, pageSize: pageSize, seen: []os.FileInfo{fi}, tasks: map[uint32]*taskSlot{}}, nil
}

// Close closes the pages files of every task loaded, in this set and its
// parents.
func (s *imageSet) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sl := range s.tasks {
		if sl.t != nil && sl.t.pages != nil {
			errs = append(errs, sl.t.pages.Close())
			sl.t.pages = nil
		}
	}
	if s.parent != nil {
		errs = append(errs, s.parent.Close())
	}
	return errors.Join(errs...)
}

// parentSet returns the image set the "parent" link of s names, or nil
// when s has none.
func (s *imageSet) parentSet() (*imageSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parentOK {
		return s.parent, nil
	}
	link := filepath.Join(s.dir, "parent")
	if _, err := os.Lstat(link); errors.Is(err, fs.ErrNotExist) {
		s.parentOK = true
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if s.depth+1 > format.MaxParentDepth {
		return nil, fmt.Errorf("open parent of %s: %w: more than %d parents", s.dir, ErrChain, format.MaxParentDepth)
	}
	fi, err := os.Stat(link)
	if err != nil {
		return nil, fmt.Errorf("open parent of %s: %w", s.dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open parent of %s: %w: the parent link does not name a directory", s.dir, ErrChain)
	}
	for _, d := range s.seen {
		if os.SameFile(d, fi) {
			return nil, fmt.Errorf("open parent of %s: %w: the chain is cyclic", s.dir, ErrChain)
		}
	}
	s.parent = &imageSet{
		dir:      link,
		pageSize: s.pageSize,
		depth:    s.depth + 1,
		seen:     append(append([]os.FileInfo(nil), s.seen...), fi),
		tasks:    map[uint32]*taskSlot{},
	}
	s.parentOK = true
	return s.parent, nil
}

// task returns the pagemap of pid, or nil when s has no pagemap-<pid>.img.
func (s *imageSet) task(pid uint32) (*task, error) {
	s.mu.Lock()
	sl := s.tasks[pid]
	if sl == nil {
		sl = &taskSlot{}
		s.tasks[pid] = sl
	}
	s.mu.Unlock()
	sl.once.Do(func() { sl.t, sl.err = loadTask(s.dir, pid, s.pageSize) })
	return sl.t, sl.err
}

// pids returns the pids of the tasks with a pagemap-<pid>.img in dir,
// sorted. Shared-memory pagemaps (pagemap-shmem-<id>.img) are not tasks.
func pids(dir string) ([]uint32, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, e := range ents {
		if pid, ok := pagemapPID(e.Name()); ok {
			out = append(out, pid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// pagemapPID parses "pagemap-<pid>.img".
func pagemapPID(name string) (uint32, bool) {
	s, ok := strings.CutPrefix(name, "pagemap-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".img")
	if !ok || s == "" || s[0] == '0' || s[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// readBounded reads the regular file name, refusing more than limit bytes
// (ErrTooLarge) or a file that is not regular (ErrImage).
func readBounded(name string, limit int64) ([]byte, error) {
	b, err := fileio.ReadBounded(name, limit)
	switch {
	case errors.Is(err, fileio.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", err, ErrTooLarge)
	case errors.Is(err, fileio.ErrNotRegular):
		return nil, fmt.Errorf("%w: %w", err, ErrImage)
	}
	return b, err
}

// loadTask decodes pagemap-<pid>.img of dir (through criuimg, which bounds
// everything it reads), checks that its entries are page-aligned, sorted
// and not overlapping, and opens the pages file, whose size must be the
// stored pages times pageSize. It returns nil, nil when dir has no pagemap
// for pid.
func loadTask(dir string, pid uint32, pageSize uint64) (*task, error) {
	name := fmt.Sprintf("pagemap-%d.img", pid)
	data, err := readBounded(filepath.Join(dir, name), MaxPagemapSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	head, entries, err := criuimg.ReadPagemap(name, data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w: %w", name, ErrImage, err)
	}
	t := &task{pid: pid, magic: append([]byte(nil), data[:8]...), pagesID: head.PagesID, runs: make([]run, 0, len(entries))}
	var off int64
	var prevEnd uint64
	for i, e := range entries {
		if e.Flags&criuimg.PEParent != 0 && e.Flags&criuimg.PEPresent != 0 {
			return nil, fmt.Errorf("load %s: entry %d at %#x is both present and in parent: %w", name, i, e.Vaddr, ErrImage)
		}
		if e.Vaddr%pageSize != 0 || e.NrPages == 0 {
			return nil, fmt.Errorf("load %s: entry %d at %#x of %d pages is not page-aligned or empty: %w", name, i, e.Vaddr, e.NrPages, ErrImage)
		}
		hi, size := bits.Mul64(e.NrPages, pageSize)
		end, carry := bits.Add64(e.Vaddr, size, 0)
		if hi != 0 || carry != 0 || size > 1<<62 {
			return nil, fmt.Errorf("load %s: entry %d at %#x runs past the address space: %w", name, i, e.Vaddr, ErrImage)
		}
		if i > 0 && e.Vaddr < prevEnd {
			return nil, fmt.Errorf("load %s: entry %d at %#x overlaps or precedes the one before: %w", name, i, e.Vaddr, ErrImage)
		}
		prevEnd = end
		r := run{vaddr: e.Vaddr, end: end, flags: e.Flags, off: -1}
		if r.stored() {
			if off > 1<<62-int64(size) {
				return nil, fmt.Errorf("load %s: stored pages overflow: %w", name, ErrImage)
			}
			r.off = off
			off += int64(size)
		}
		t.runs = append(t.runs, r)
	}
	pname := fmt.Sprintf("pages-%d.img", head.PagesID)
	f, err := os.Open(filepath.Join(dir, pname))
	if errors.Is(err, fs.ErrNotExist) && off == 0 {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() != off) {
		err = fmt.Errorf("%s holds %d bytes, the pagemap stores %d: %w", pname, fi.Size(), off, ErrImage)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	t.pages, t.size = f, off
	return t, nil
}

// fill reads into dst the pages of pid in [vaddr, vaddr+len(got)*pageSize)
// that s stores or that its chain of parents stores, and sets got[i] for
// each page i it read. Pages s has no entry for, and lazy pages without
// data, are left alone. len(dst) must be len(got)*pageSize.
func (s *imageSet) fill(pid uint32, vaddr uint64, dst []byte, got []bool) error {
	t, err := s.task(pid)
	if err != nil || t == nil {
		return err
	}
	ps := s.pageSize
	end := vaddr + uint64(len(got))*ps
	i := sort.Search(len(t.runs), func(i int) bool { return t.runs[i].end > vaddr })
	for ; i < len(t.runs) && t.runs[i].vaddr < end; i++ {
		r := t.runs[i]
		lo, hi := max(r.vaddr, vaddr), min(r.end, end)
		a, b := (lo-vaddr)/ps, (hi-vaddr)/ps
		switch {
		case r.stored():
			if _, err := t.pages.ReadAt(dst[a*ps:b*ps], r.off+int64(lo-r.vaddr)); err != nil {
				return fmt.Errorf("read pages of task %d in %s at %#x: %w", pid, s.dir, lo, err)
			}
			for k := a; k < b; k++ {
				got[k] = true
			}
		case r.inParent():
			p, err := s.parentSet()
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("read pages of task %d in %s at %#x: %w: pages in parent, but no parent link", pid, s.dir, lo, ErrChain)
			}
			if err := p.fill(pid, lo, dst[a*ps:b*ps], got[a:b]); err != nil {
				return err
			}
		}
	}
	return nil
}
