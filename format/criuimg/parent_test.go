package criuimg

import (
	"errors"
	"testing"
)

func TestCheckParent(t *testing.T) {
	pe := func(vaddr, n uint64, flags uint32) PagemapEntry {
		return PagemapEntry{Vaddr: vaddr, NrPages: n, Flags: flags}
	}
	parent := []PagemapEntry{
		pe(0x1000, 2, PEPresent),           // 0x1000-0x3000
		pe(0x3000, 1, PEParent),            // 0x3000-0x4000, further up
		pe(0x10000, 4, PELazy|PEPresent),   // 0x10000-0x14000
		pe(0x20000, 1, PELazy),             // lazy only: not in the parent
		pe(0x8000_0000_0000, 1, PEPresent), // high
	}
	tests := []struct {
		name     string
		child    []PagemapEntry
		pageSize int64
		want     error
	}{
		{"none from parent", []PagemapEntry{pe(0x50000, 3, PEPresent)}, 0, nil},
		{"exact", []PagemapEntry{pe(0x1000, 2, PEParent)}, 0, nil},
		{"spanning two parent entries", []PagemapEntry{pe(0x2000, 2, PEParent)}, 0, nil},
		{"inside", []PagemapEntry{pe(0x11000, 2, PEParent|PELazy)}, 0, nil},
		{"unsorted child", []PagemapEntry{pe(0x11000, 1, PEParent), pe(0x1000, 1, PEParent)}, 0, nil},
		{"past the end", []PagemapEntry{pe(0x3000, 2, PEParent)}, 0, ErrParent},
		{"before", []PagemapEntry{pe(0x0, 1, PEParent)}, 0, ErrParent},
		{"lazy only in parent", []PagemapEntry{pe(0x20000, 1, PEParent)}, 0, ErrParent},
		{"gap", []PagemapEntry{pe(0x14000, 1, PEParent)}, 0, ErrParent},
		{"64K pages", []PagemapEntry{pe(0x1000, 3, PEParent)}, 65536, nil},
		{"64K pages short", []PagemapEntry{pe(0x7fff_ffff_0000, 1, PEParent)}, 65536, ErrParent},
		{"overflow", []PagemapEntry{pe(0xffff_ffff_ffff_f000, 2, PEParent)}, 0, ErrImage},
		{"bad page size", nil, 1000, ErrImage},
	}
	for _, tt := range tests {
		err := CheckParent(tt.child, parent, tt.pageSize)
		if !errors.Is(err, tt.want) { // errors.Is(nil, nil) is true
			t.Errorf("%s: CheckParent() = %v, want %v", tt.name, err, tt.want)
		}
	}
}
