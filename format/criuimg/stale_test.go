package criuimg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// addStaleTask gives s.files the images an earlier dump left of a task
// pid that has exited: copies of the child's per-task images, its pagemap
// naming pagesID with one page more than the child's pages image holds
// (as podman's reused directories show: pages_id 2 of a dead sleep next to
// the live task's pages-2.img).
func addStaleTask(t *testing.T, s tinySet, pid uint32, pagesID uint32) {
	t.Helper()
	for _, p := range []string{"core", "mm", "ids", "fs"} {
		s.files[img(p, pid)] = s.files[img(p, s.child)]
	}
	_, entries, err := ReadPagemap(img("pagemap", s.child), s.files[img("pagemap", s.child)].Data)
	if err != nil {
		t.Fatal(err)
	}
	entries = append([]PagemapEntry{}, entries...)
	entries[0].NrPages++
	setData(s.files, img("pagemap", pid), pagemapImage(pagesID, entries))
}

func staleNames(st []Stale) []string {
	var out []string
	for _, s := range st {
		out = append(out, s.File)
	}
	return out
}

// TestStaleTask: the images of a pid pstree.img does not list are stale,
// not checked (their pagemap shares the live child's pages_id and
// disagrees with its size), and the report names each with its reason.
func TestStaleTask(t *testing.T) {
	s := loadTiny(t)
	head, _, err := ReadPagemap(img("pagemap", s.child), s.files[img("pagemap", s.child)].Data)
	if err != nil {
		t.Fatal(err)
	}
	addStaleTask(t, s, 11, head.PagesID)
	rep := CheckImages(s.files, nil)
	if err := rep.Err(); err != nil {
		t.Fatalf("CheckImages with a stale task = %v, want no problem", err)
	}
	want := []string{"core-11.img", "fs-11.img", "ids-11.img", "mm-11.img", "pagemap-11.img"}
	if got := staleNames(rep.Stale); !reflect.DeepEqual(got, want) {
		t.Fatalf("Stale = %v, want %v", got, want)
	}
	for _, st := range rep.Stale {
		if st.Reason != "pid 11 is not in pstree.img" {
			t.Errorf("%s: reason %q", st.File, st.Reason)
		}
	}

	// The same pagemap under a live pid is checked: the pages image
	// shared with the child is a problem then.
	s = loadTiny(t)
	addStaleTask(t, s, 11, head.PagesID)
	s.files[img("pagemap", s.child)] = s.files[img("pagemap", 11)]
	delete(s.files, img("pagemap", 11))
	if err := CheckImages(s.files, nil).Err(); err == nil || !strings.Contains(err.Error(), "pages-") {
		t.Errorf("CheckImages with the wrong pagemap live = %v, want a pages problem", err)
	}
}

// TestStaleLiveCorruption: a corrupted live image still fails and is
// named, stale images or not.
func TestStaleLiveCorruption(t *testing.T) {
	s := loadTiny(t)
	addStaleTask(t, s, 11, 2)
	name := img("pagemap", s.child)
	b := append([]byte{}, s.files[name].Data...)
	b[len(b)-1] ^= 0xff
	b[len(b)-2] ^= 0xff
	setData(s.files, name, b)
	rep := CheckImages(s.files, nil)
	if len(rep.Problems) == 0 || rep.Problems[0].File != name {
		t.Fatalf("CheckImages with %s corrupted = %v, want a problem naming it", name, rep.Err())
	}
	if len(rep.Stale) != 5 {
		t.Errorf("Stale = %v, want the 5 images of pid 11", rep.Stale)
	}

	s = loadTiny(t)
	addStaleTask(t, s, 11, 2)
	s.files["pages-2.img"] = Info{Size: s.files["pages-2.img"].Size + 4096}
	rep = CheckImages(s.files, nil)
	if len(rep.Problems) != 1 || rep.Problems[0].File != "pages-2.img" || !errors.Is(rep.Problems[0], ErrImage) {
		t.Errorf("CheckImages with pages-2.img grown = %v, want one problem naming it", rep.Err())
	}
}

func TestStaleKinds(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(t *testing.T, s tinySet)
		stale  map[string]string // file -> reason
		checks bool              // the report has problems
	}{
		{"orphan pages", func(t *testing.T, s tinySet) { s.files["pages-9.img"] = Info{Size: 4096} },
			map[string]string{"pages-9.img": "no pagemap of the dump names it"}, false},
		{"pages of a stale pagemap only", func(t *testing.T, s tinySet) {
			addStaleTask(t, s, 11, 9)
			s.files["pages-9.img"] = Info{Size: 8192}
		}, map[string]string{"core-11.img": "", "fs-11.img": "", "ids-11.img": "", "mm-11.img": "", "pagemap-11.img": "",
			"pages-9.img": "no pagemap of the dump names it"}, false},
		{"zombie's mm", func(t *testing.T, s tinySet) {
			s.files[img("mm", s.zombie)] = s.files[img("mm", s.child)]
			s.files[img("pagemap", s.zombie)] = s.files[img("pagemap", s.child)]
		}, map[string]string{"mm-" + "Z.img": "task Z is a zombie (CRIU reads only its core)",
			"pagemap-Z.img": "task Z is a zombie (CRIU reads only its core)"}, false},
		{"fdinfo of no task", func(t *testing.T, s tinySet) { s.files["fdinfo-7.img"] = s.files["fdinfo-2.img"] },
			map[string]string{"fdinfo-7.img": "no live task of pstree.img has files id 7"}, false},
		{"old thread core", func(t *testing.T, s tinySet) { s.files["core-12.img"] = s.files[img("core", s.thread)] },
			map[string]string{"core-12.img": "pid 12 is not in pstree.img"}, false},
		// Nothing can be judged without a process tree: every image is
		// checked, and the missing pstree.img is the problem.
		{"no pstree", func(t *testing.T, s tinySet) {
			addStaleTask(t, s, 11, 9)
			delete(s.files, "pstree.img")
		}, nil, true},
		// A live task without pagemap: which pages image is its is
		// unknown, so none is stale.
		{"live pagemap missing", func(t *testing.T, s tinySet) { delete(s.files, img("pagemap", s.child)) }, nil, true},
		// A live task without ids (and so files id): fdinfo images are
		// not judged.
		{"live ids missing", func(t *testing.T, s tinySet) {
			s.files["fdinfo-7.img"] = s.files["fdinfo-2.img"]
			delete(s.files, img("ids", s.child))
		}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadTiny(t)
			tt.edit(t, s)
			rep := CheckImages(s.files, nil)
			if (len(rep.Problems) > 0) != tt.checks {
				t.Errorf("problems: %v", rep.Err())
			}
			got := map[string]string{}
			for _, st := range rep.Stale {
				got[st.File] = st.Reason
			}
			z := img("", s.zombie)[1:]
			want := map[string]string{}
			for f, r := range tt.stale {
				f = strings.Replace(f, "Z.img", z, 1)
				if r == "" {
					r = "pid 11 is not in pstree.img"
				}
				want[f] = strings.Replace(r, "task Z", "task "+strings.TrimSuffix(z, ".img"), 1)
			}
			if len(want) == 0 {
				want = map[string]string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Stale = %v, want %v", got, want)
			}
		})
	}
}
