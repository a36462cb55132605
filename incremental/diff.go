package incremental

import (
	"bytes"
	"context"
	"fmt"
	"slices"
)

// DiffOptions tunes [MemoryDiff]. A nil *DiffOptions means the zero
// value, whose fields all mean their documented defaults.
type DiffOptions struct {
	// PageSize is the dumping host's page size, a power of two; 0 means
	// os.Getpagesize().
	PageSize int64
	// MaxAddrs caps the differing page addresses kept per task; 0 means 16.
	MaxAddrs int
	// ChunkSize is the number of bytes compared per read; 0 means
	// [DefaultChunkSize].
	ChunkSize int
}

// MemoryReport is the result of [MemoryDiff]: one TaskDiff per task with a
// pagemap in either image set, sorted by pid.
type MemoryReport struct {
	Tasks []TaskDiff
}

// TaskDiff compares the private memory of one task in two image sets, A
// and B. A page counts as stored when the pagemap holds it, in the image
// set's pages file or, for pages in parent, in its chain of parents.
// Lazy pages without data are not stored.
type TaskDiff struct {
	// PID is the task's pid in the images.
	PID uint32
	// InA and InB report whether the image set has a pagemap for the task.
	InA, InB bool
	// Compared is the number of pages stored in both.
	Compared int64
	// Differ is the number of compared pages whose contents differ.
	Differ int64
	// OnlyA and OnlyB are the numbers of pages stored in one set only.
	OnlyA, OnlyB int64
	// Addrs holds the addresses of the first differing pages, ascending,
	// at most DiffOptions.MaxAddrs of them.
	Addrs []uint64
}

// Equal reports whether the task is in both sets with the same pages
// stored at the same addresses with the same contents.
func (d TaskDiff) Equal() bool {
	return d.InA && d.InB && d.Differ == 0 && d.OnlyA == 0 && d.OnlyB == 0
}

// Equal reports whether every task's memory is equal in both sets.
func (r *MemoryReport) Equal() bool {
	for _, t := range r.Tasks {
		if !t.Equal() {
			return false
		}
	}
	return true
}

// Equal reports whether the image sets in dirA and dirB hold the same
// private memory: the same tasks, and for each the same pages at the same
// addresses with the same contents, pages in parent resolved through each
// set's chain of parent links. It is [MemoryDiff] with default options.
func Equal(ctx context.Context, dirA, dirB string) (bool, error) {
	r, err := MemoryDiff(ctx, dirA, dirB, nil)
	if err != nil {
		return false, err
	}
	return r.Equal(), nil
}

// MemoryDiff compares the private memory (pagemap-<pid>.img and the pages
// it names) of every task of the image sets in dirA and dirB page by page,
// resolving pages in parent (PE_PARENT) through each set's chain of
// "parent" links, as CRIU's restore does. A page in parent that the chain
// does not hold is an error wrapping [ErrChain]. Reads are bounded: one
// chunk per set at a time. Shared memory is not compared.
func MemoryDiff(ctx context.Context, dirA, dirB string, opts *DiffOptions) (rep *MemoryReport, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("diff memory of %s and %s: %w", dirA, dirB, err)
		}
	}()
	var o DiffOptions
	if opts != nil {
		o = *opts
	}
	ps, err := pageSizeOf(o.PageSize)
	if err != nil {
		return nil, err
	}
	if o.MaxAddrs <= 0 {
		o.MaxAddrs = 16
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	chunkPages := max(uint64(o.ChunkSize)/ps, 1)
	a, err := openSet(dirA, ps)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := openSet(dirB, ps)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	pa, err := pids(dirA)
	if err != nil {
		return nil, err
	}
	pb, err := pids(dirB)
	if err != nil {
		return nil, err
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(pa, pb...))))
	pair := &setPair{a: a, b: b, bufA: newBuffers(chunkPages, ps), bufB: newBuffers(chunkPages, ps), maxAddrs: o.MaxAddrs}
	rep = &MemoryReport{}
	for _, pid := range all {
		d, err := pair.diffTask(ctx, pid)
		if err != nil {
			return nil, err
		}
		rep.Tasks = append(rep.Tasks, d)
	}
	return rep, nil
}

// span is a half-open address range.
type span struct{ start, end uint64 }

// storedSpans returns the ranges of t whose pages are stored in the set or
// its parents, merged; nil for a nil task.
func storedSpans(t *task) []span {
	if t == nil {
		return nil
	}
	var out []span
	for _, r := range t.runs {
		if !r.stored() && !r.inParent() {
			continue
		}
		if n := len(out); n > 0 && out[n-1].end == r.vaddr {
			out[n-1].end = r.end
			continue
		}
		out = append(out, span{r.vaddr, r.end})
	}
	return out
}

// setPair is two image sets compared task by task, with a buffer each.
type setPair struct {
	a, b       *imageSet
	bufA, bufB *buffers
	maxAddrs   int // changed addresses listed per task
}

// diffTask compares the memory of task pid in a and b.
func (sp *setPair) diffTask(ctx context.Context, pid uint32) (TaskDiff, error) {
	a, b, bufA, bufB, maxAddrs := sp.a, sp.b, sp.bufA, sp.bufB, sp.maxAddrs
	d := TaskDiff{PID: pid}
	ta, err := a.task(pid)
	if err != nil {
		return d, err
	}
	tb, err := b.task(pid)
	if err != nil {
		return d, err
	}
	d.InA, d.InB = ta != nil, tb != nil
	sa, sb := storedSpans(ta), storedSpans(tb)
	ps := a.pageSize
	for _, s := range sa {
		d.OnlyA += int64((s.end - s.start) / ps)
	}
	for _, s := range sb {
		d.OnlyB += int64((s.end - s.start) / ps)
	}
	chunkPages := uint64(len(bufA.got))
	i, j := 0, 0
	for i < len(sa) && j < len(sb) {
		lo, hi := max(sa[i].start, sb[j].start), min(sa[i].end, sb[j].end)
		for va := lo; va < hi; {
			if err := ctx.Err(); err != nil {
				return d, err
			}
			k := min(chunkPages, (hi-va)/ps)
			fa, fb := bufA.fin[:k*ps], bufB.fin[:k*ps]
			ga, gb := bufA.got[:k], bufB.got[:k]
			clear(ga)
			clear(gb)
			if err := a.fill(pid, va, fa, ga); err != nil {
				return d, err
			}
			if err := b.fill(pid, va, fb, gb); err != nil {
				return d, err
			}
			for p := range k {
				addr := va + p*ps
				if !ga[p] || !gb[p] {
					dir := a.dir
					if ga[p] {
						dir = b.dir
					}
					return d, fmt.Errorf("read page %#x of task %d in %s: %w: the page is in parent, but no parent holds it", addr, pid, dir, ErrChain)
				}
				if !bytes.Equal(fa[p*ps:(p+1)*ps], fb[p*ps:(p+1)*ps]) {
					d.Differ++
					if len(d.Addrs) < maxAddrs {
						d.Addrs = append(d.Addrs, addr)
					}
				}
			}
			d.Compared += int64(k)
			d.OnlyA -= int64(k)
			d.OnlyB -= int64(k)
			va += k * ps
		}
		if sa[i].end <= sb[j].end {
			i++
		} else {
			j++
		}
	}
	return d, nil
}
