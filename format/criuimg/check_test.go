package criuimg

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// tinySet is the committed image set with the names tests mutate.
type tinySet struct {
	files  map[string]Info
	leader uint32 // root task, with two threads
	thread uint32 // the leader's second thread
	child  uint32 // alive child
	zombie uint32 // zombie child
}

func loadTiny(t *testing.T) tinySet {
	t.Helper()
	s := tinySet{files: loadDir(t, tinyDir)}
	tasks, err := ReadPstree(s.files["pstree.img"].Data)
	if err != nil || len(tasks) != 3 || len(tasks[0].Threads) != 2 {
		t.Fatalf("testdata pstree: %+v, %v; want leader with 2 threads, child, zombie", tasks, err)
	}
	s.leader, s.thread, s.child, s.zombie = tasks[0].PID, tasks[0].Threads[1], tasks[1].PID, tasks[2].PID
	return s
}

func img(prefix string, n uint32) string { return fmt.Sprintf("%s-%d.img", prefix, n) }

func setData(files map[string]Info, name string, b []byte) {
	files[name] = Info{Size: int64(len(b)), Data: b}
}

// pagemapImage builds a pagemap image.
func pagemapImage(pagesID uint32, entries []PagemapEntry) []byte {
	parts := [][]byte{entry(enc(nil).u(1, uint64(pagesID)))}
	for _, e := range entries {
		m := enc(nil).u(1, e.Vaddr).u(2, 0).u(4, uint64(e.Flags)).u(5, e.NrPages)
		parts = append(parts, entry(m))
	}
	return image("PAGEMAP", parts...)
}

// editPagemap rewrites pagemap-<pid>.img with edit applied to its entries.
func editPagemap(t *testing.T, files map[string]Info, pid uint32, edit func([]PagemapEntry) []PagemapEntry) {
	t.Helper()
	name := img("pagemap", pid)
	head, entries, err := ReadPagemap(name, files[name].Data)
	if err != nil {
		t.Fatal(err)
	}
	setData(files, name, pagemapImage(head.PagesID, edit(entries)))
}

func TestCheckImagesProblems(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(t *testing.T, s tinySet)
		opts     *CheckOptions
		wantFile func(s tinySet) string
		want     error
	}{
		{"no inventory", func(t *testing.T, s tinySet) { delete(s.files, "inventory.img") }, nil,
			func(tinySet) string { return "inventory.img" }, ErrMissing},
		{"no pstree", func(t *testing.T, s tinySet) { delete(s.files, "pstree.img") }, nil,
			func(tinySet) string { return "pstree.img" }, ErrMissing},
		{"no leader core", func(t *testing.T, s tinySet) { delete(s.files, img("core", s.leader)) }, nil,
			func(s tinySet) string { return img("core", s.leader) }, ErrMissing},
		{"no thread core", func(t *testing.T, s tinySet) { delete(s.files, img("core", s.thread)) }, nil,
			func(s tinySet) string { return img("core", s.thread) }, ErrMissing},
		{"no zombie core", func(t *testing.T, s tinySet) { delete(s.files, img("core", s.zombie)) }, nil,
			func(s tinySet) string { return img("core", s.zombie) }, ErrMissing},
		{"no mm", func(t *testing.T, s tinySet) { delete(s.files, img("mm", s.child)) }, nil,
			func(s tinySet) string { return img("mm", s.child) }, ErrMissing},
		{"no pagemap", func(t *testing.T, s tinySet) { delete(s.files, img("pagemap", s.child)) }, nil,
			func(s tinySet) string { return img("pagemap", s.child) }, ErrMissing},
		{"no pagemap leaves pages unreferenced", func(t *testing.T, s tinySet) { delete(s.files, img("pagemap", s.child)) }, nil,
			func(s tinySet) string { return "pages-2.img" }, ErrImage},
		{"no ids", func(t *testing.T, s tinySet) { delete(s.files, img("ids", s.leader)) }, nil,
			func(s tinySet) string { return img("ids", s.leader) }, ErrMissing},
		{"no fdinfo", func(t *testing.T, s tinySet) { delete(s.files, "fdinfo-2.img") }, nil,
			func(s tinySet) string { return "fdinfo-2.img" }, ErrMissing},
		{"no files", func(t *testing.T, s tinySet) { delete(s.files, "files.img") }, nil,
			func(s tinySet) string { return "files.img" }, ErrMissing},
		{"fd without file", func(t *testing.T, s tinySet) {
			setData(s.files, "fdinfo-2.img", image("FDINFO", entry(enc(nil).u(1, 999).u(2, 0).u(3, 1).u(4, 0))))
		}, nil, func(s tinySet) string { return "fdinfo-2.img" }, ErrImage},
		{"exe without file", func(t *testing.T, s tinySet) {
			files, err := ReadFiles(s.files["files.img"].Data)
			if err != nil {
				t.Fatal(err)
			}
			// Keep every file but the executables (mm exe_file_id).
			mm, _ := ReadMm(img("mm", s.leader), s.files[img("mm", s.leader)].Data)
			var parts [][]byte
			r := NewReader("files.img", bytes.NewReader(s.files["files.img"].Data), s.files["files.img"].Size, nil)
			for i := range files {
				b, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if files[i].ID != mm.ExeFileID {
					parts = append(parts, entry(append([]byte{}, b...)))
				}
			}
			setData(s.files, "files.img", image("FILES", parts...))
		}, nil, func(s tinySet) string { return img("mm", s.leader) }, ErrImage},
		{"duplicate file", func(t *testing.T, s tinySet) {
			d := s.files["files.img"].Data
			setData(s.files, "files.img", append(append([]byte{}, d...), d[8:]...))
		}, nil, func(s tinySet) string { return "files.img" }, ErrImage},
		{"core contents not given", func(t *testing.T, s tinySet) {
			n := img("core", s.leader)
			s.files[n] = Info{Size: s.files[n].Size, Data: s.files[n].Data[:8]}
		}, nil, func(s tinySet) string { return img("core", s.leader) }, ErrMissing},
		{"head not given", func(t *testing.T, s tinySet) {
			s.files["seccomp.img"] = Info{Size: s.files["seccomp.img"].Size}
		}, nil, func(s tinySet) string { return "seccomp.img" }, ErrMissing},
		{"wrong magic", func(t *testing.T, s tinySet) {
			setData(s.files, img("mm", s.child), s.files[img("core", s.child)].Data)
		}, nil, func(s tinySet) string { return img("mm", s.child) }, ErrMagic},
		{"wrong magic of an image not decoded", func(t *testing.T, s tinySet) {
			setData(s.files, "seccomp.img", s.files["files.img"].Data)
		}, nil, func(s tinySet) string { return "seccomp.img" }, ErrMagic},
		{"bad framing of an image not decoded", func(t *testing.T, s tinySet) {
			setData(s.files, "seccomp.img", append(append([]byte{}, s.files["seccomp.img"].Data...), 1, 0, 0))
		}, nil, func(s tinySet) string { return "seccomp.img" }, ErrTruncated},
		{"images version", func(t *testing.T, s tinySet) {
			setData(s.files, "inventory.img", image("INVENTORY", entry(enc(nil).u(1, 1))))
		}, nil, func(s tinySet) string { return "inventory.img" }, ErrImage},
		{"zombie state unknown", func(t *testing.T, s tinySet) {
			tc := enc(nil).u(1, 9).u(2, 0).u(3, 0).u(4, 0).u(5, 0).bytes(6, []byte("x"))
			setData(s.files, img("core", s.zombie), image("CORE", entry(enc(nil).u(1, 1).bytes(3, tc))))
		}, nil, func(s tinySet) string { return img("core", s.zombie) }, ErrImage},
		{"leader core without tc", func(t *testing.T, s tinySet) {
			setData(s.files, img("core", s.leader), s.files[img("core", s.thread)].Data)
		}, nil, func(s tinySet) string { return img("core", s.leader) }, ErrImage},
		{"duplicate task", func(t *testing.T, s tinySet) {
			d := s.files["pstree.img"].Data
			setData(s.files, "pstree.img", append(append([]byte{}, d...), d[8:]...))
		}, nil, func(tinySet) string { return "pstree.img" }, ErrImage},
		{"parent not in tree", func(t *testing.T, s tinySet) {
			p := enc(nil).u(1, uint64(s.zombie)).u(2, 999999).u(3, 1).u(4, 1)
			d := s.files["pstree.img"].Data
			tasks, _ := ReadPstree(d)
			var parts [][]byte
			for _, tk := range tasks[:2] {
				m := enc(nil).u(1, uint64(tk.PID)).u(2, uint64(tk.PPID)).u(3, uint64(tk.PGID)).u(4, uint64(tk.SID))
				for _, th := range tk.Threads {
					m = m.u(5, uint64(th))
				}
				parts = append(parts, entry(m))
			}
			setData(s.files, "pstree.img", image("PSTREE", append(parts, entry(p))...))
		}, nil, func(tinySet) string { return "pstree.img" }, ErrImage},
		{"pages too large", func(t *testing.T, s tinySet) {
			f := s.files["pages-1.img"]
			s.files["pages-1.img"] = Info{Size: f.Size + 4096}
		}, nil, func(tinySet) string { return "pages-1.img" }, ErrImage},
		{"pages missing", func(t *testing.T, s tinySet) { delete(s.files, "pages-2.img") }, nil,
			func(tinySet) string { return "pages-2.img" }, ErrMissing},
		{"64K pages", func(t *testing.T, s tinySet) {}, &CheckOptions{PageSize: 65536},
			func(tinySet) string { return "pages-1.img" }, ErrImage},
		{"bad page size", func(t *testing.T, s tinySet) {}, &CheckOptions{PageSize: 3000},
			func(tinySet) string { return "" }, ErrImage},
		{"parent pages without parent", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].Flags = PEParent
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrParent},
		{"parent and present", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].Flags = PEParent | PEPresent
				return e
			})
		}, &CheckOptions{HasParent: true}, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"unknown flag", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].Flags |= 8
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"overlap", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[1].Vaddr = e[0].Vaddr
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"unsorted", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0], e[1] = e[1], e[0]
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"unaligned", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].Vaddr += 16
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"no pages in entry", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].NrPages = 0
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"address overflow", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[len(e)-1].NrPages = 1 << 60
				return e
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"outside VMAs", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				return append(e, PagemapEntry{Vaddr: 0x7fff_ffff_0000, NrPages: 1, Flags: PELazy})
			})
		}, nil, func(s tinySet) string { return img("pagemap", s.leader) }, ErrImage},
		{"shared pages id", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.child, func(e []PagemapEntry) []PagemapEntry { return e })
			n := img("pagemap", s.child)
			_, entries, _ := ReadPagemap(n, s.files[n].Data)
			setData(s.files, n, pagemapImage(1, entries))
		}, nil, func(s tinySet) string { return img("pagemap", s.child) }, ErrImage},
		{"pagemap without head", func(t *testing.T, s tinySet) {
			setData(s.files, img("pagemap", s.child), image("PAGEMAP"))
		}, nil, func(s tinySet) string { return img("pagemap", s.child) }, ErrImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadTiny(t)
			tt.edit(t, s)
			r := CheckImages(s.files, tt.opts)
			file := tt.wantFile(s)
			for _, p := range r.Problems {
				if p.File == file && errors.Is(p, tt.want) {
					return
				}
			}
			t.Errorf("CheckImages() = %v, want a problem in %q wrapping %v", r.Err(), file, tt.want)
		})
	}
}

// TestCheckImagesParent checks that PEParent pages are fine in an image
// set with a parent and are left out of the pages file's size.
func TestCheckImagesParent(t *testing.T) {
	s := loadTiny(t)
	var moved uint64
	editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
		e[0].Flags = PEParent
		moved = e[0].NrPages
		return e
	})
	f := s.files["pages-1.img"]
	s.files["pages-1.img"] = Info{Size: f.Size - int64(moved)*DefaultPageSize}
	if err := CheckImages(s.files, &CheckOptions{HasParent: true}).Err(); err != nil {
		t.Errorf("CheckImages(parent pages, HasParent) = %v, want nil", err)
	}
	err := CheckImages(s.files, nil).Err()
	if !errors.Is(err, ErrParent) {
		t.Errorf("CheckImages(parent pages, no parent) = %v, want ErrParent", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
		t.Errorf("CheckImages(parent pages, no parent) = %d problems (%v), want 1", n, err)
	}
}

// TestCheckImagesLazy checks the pages count when CRIU dumped for a lazy
// pages server: PELazy entries without PEPresent are not in the pages file.
func TestCheckImagesLazy(t *testing.T) {
	s := loadTiny(t)
	var lazy uint64
	editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
		for i := range e {
			if e[i].Lazy() {
				e[i].Flags = PELazy
				lazy += e[i].NrPages
			}
		}
		return e
	})
	if lazy == 0 {
		t.Fatal("testdata pagemap has no lazy entry")
	}
	f := s.files["pages-1.img"]
	s.files["pages-1.img"] = Info{Size: f.Size - int64(lazy)*DefaultPageSize}
	if err := CheckImages(s.files, nil).Err(); err != nil {
		t.Errorf("CheckImages(lazy pages) = %v, want nil", err)
	}
}

// TestCheckImagesEmpty checks that an empty directory reports the two
// images every set needs, and that nil options and unknown files are fine.
func TestCheckImagesEmpty(t *testing.T) {
	r := CheckImages(map[string]Info{"dump.log": {Size: 5}, "descriptors.json": {Size: 2}}, nil)
	if len(r.Problems) != 2 || r.Problems[0].File != "inventory.img" || r.Problems[1].File != "pstree.img" {
		t.Errorf("CheckImages(empty) = %v, want inventory.img and pstree.img missing", r.Err())
	}
	var nilReport *Report
	if nilReport.Err() != nil {
		t.Errorf("(*Report)(nil).Err() != nil")
	}
}

// TestCheckImagesCaps checks that hostile image sets cannot make the report
// grow without bound.
func TestCheckImagesCaps(t *testing.T) {
	s := loadTiny(t)
	editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
		var out []PagemapEntry
		for i := range 100 {
			out = append(out, PagemapEntry{Vaddr: uint64(i)*0x10000 + 1, NrPages: 1, Flags: PELazy})
		}
		return out
	})
	r := CheckImages(s.files, nil)
	n := 0
	for _, p := range r.Problems {
		if p.File == img("pagemap", s.leader) {
			n++
		}
	}
	if n != MaxProblemsPerFile+1 {
		t.Errorf("CheckImages(100 bad pagemap entries) = %d problems in the pagemap, want %d", n, MaxProblemsPerFile+1)
	}

	var parts [][]byte
	for pid := range 3000 {
		parts = append(parts, entry(enc(nil).u(1, uint64(pid+1)).u(2, 0).u(3, 1).u(4, 1)))
	}
	setData(s.files, "pstree.img", image("PSTREE", parts...))
	r = CheckImages(s.files, nil)
	if len(r.Problems) != MaxProblems+1 || r.Problems[0].File != "" {
		t.Errorf("CheckImages(3000 tasks without core) = %d problems (first %v), want %d", len(r.Problems), r.Problems[0], MaxProblems+1)
	}
}
