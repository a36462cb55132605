package criuimg

import (
	"fmt"
	"math/bits"
	"sort"
)

// span is a half-open address range.
type span struct{ start, end uint64 }

// pageSpans returns the ranges of the entries keep selects, sorted and
// merged; an entry whose range overflows is an error.
func pageSpans(entries []PagemapEntry, pageSize uint64, keep func(PagemapEntry) bool) ([]span, error) {
	var out []span
	for _, e := range entries {
		if !keep(e) || e.NrPages == 0 {
			continue
		}
		hi, size := bits.Mul64(e.NrPages, pageSize)
		end, carry := bits.Add64(e.Vaddr, size, 0)
		if hi != 0 || carry != 0 {
			return nil, fmt.Errorf("check entry at %#x: %d pages run past the address space: %w", e.Vaddr, e.NrPages, ErrImage)
		}
		out = append(out, span{e.Vaddr, end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged, nil
}

// CheckParent checks that a parent image set holds every page the child
// image set takes from it. child and parent are the entries of the same
// task's pagemaps (pagemap-<pid>.img) in the child and in its parent
// (the directory the child's "parent" link names). Every [PEParent] range
// of child must lie within the union of the parent's entries that are
// [PEPresent] (stored in the parent) or [PEParent] themselves (stored
// further up the chain; check that level with another call), as CRIU's
// restore looks them up. Entries need not be sorted; pageSize 0 means
// [DefaultPageSize]. The error wraps [ErrParent] and names the first
// missing range.
func CheckParent(child, parent []PagemapEntry, pageSize int64) error {
	ps := uint64(DefaultPageSize)
	if pageSize != 0 {
		if pageSize < 0 || bits.OnesCount64(uint64(pageSize)) != 1 {
			return fmt.Errorf("check page size %d: not a power of two: %w", pageSize, ErrImage)
		}
		ps = uint64(pageSize)
	}
	need, err := pageSpans(child, ps, PagemapEntry.Parent)
	if err != nil {
		return err
	}
	have, err := pageSpans(parent, ps, func(e PagemapEntry) bool { return e.Present() || e.Parent() })
	if err != nil {
		return fmt.Errorf("check parent pagemap: %w", err)
	}
	j := 0
	for _, s := range need {
		for j < len(have) && have[j].end <= s.start {
			j++
		}
		if j == len(have) || have[j].start > s.start || have[j].end < s.end {
			first := s.start
			if j < len(have) && have[j].start <= s.start {
				first = have[j].end
			}
			return fmt.Errorf("check pages in parent: %#x (of %#x-%#x) not in the parent pagemap: %w", first, s.start, s.end, ErrParent)
		}
	}
	return nil
}
