package incremental

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format/criuimg"
)

const ps = 4096

// tinyDir is a real CRIU 4.2.1 image set (a copy of
// format/criuimg/testdata/tiny-4.2.1, made by its gen.sh): three tasks,
// two with memory (pagemap-19163.img with pages-1.img, pagemap-19164.img
// with pages-2.img), one zombie.
const tinyDir = "testdata/tiny"

// copyDir copies the regular files of src into a new directory dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// pokePage overwrites page i of the pages file name in dir with b's byte
// pattern.
func pokePage(t testing.TB, dir, name string, i int, b byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(pageOf(b), int64(i)*ps); err != nil {
		t.Fatal(err)
	}
}

// pageOf returns a page whose bytes are b, b+1, b+2, ...
func pageOf(b byte) []byte {
	p := make([]byte, ps)
	for i := range p {
		p[i] = b + byte(i)
	}
	return p
}

// writeTask writes pagemap-<pid>.img (with pagesID) and pages-<pagesID>.img
// in dir: entries, and for each stored page the content page(vaddr).
func writeTask(t testing.TB, dir string, pid, pagesID uint32, entries []pmEntry, page func(vaddr uint64) []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("pagemap-%d.img", pid)), encodePagemap(nil, pagesID, entries), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("pages-%d.img", pagesID)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, e := range entries {
		if e.flags&criuimg.PEPresent == 0 || e.flags&criuimg.PEParent != 0 {
			continue
		}
		for i := range e.nrPages {
			if _, err := f.Write(page(e.vaddr + i*ps)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// addrPage returns a page whose content is derived from its address and
// salt, so pages at different addresses differ.
func addrPage(salt uint64) func(uint64) []byte {
	return func(va uint64) []byte {
		p := make([]byte, ps)
		binary.LittleEndian.PutUint64(p, va)
		binary.LittleEndian.PutUint64(p[ps-8:], salt)
		return p
	}
}

// readEntries decodes pagemap-<pid>.img of dir into pmEntry values.
func readEntries(t testing.TB, dir string, pid uint32) (uint32, []pmEntry) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("pagemap-%d.img", pid)))
	if err != nil {
		t.Fatal(err)
	}
	h, es, err := criuimg.ReadPagemap(fmt.Sprintf("pagemap-%d.img", pid), b)
	if err != nil {
		t.Fatal(err)
	}
	var out []pmEntry
	for _, e := range es {
		out = append(out, pmEntry{e.Vaddr, e.NrPages, e.Flags})
	}
	return h.PagesID, out
}

// noTemp fails if dir holds a temporary file of Dedup.
func noTemp(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".dedup-") {
			t.Errorf("%s: temporary file %s left", dir, e.Name())
		}
	}
}

// fileNames returns the sorted names in dir.
func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// linkCopy copies the directory src to dst with hard links. Dedup never
// writes a file in place (it renames new files over old ones), so the
// copy keeps the image set as it was.
func linkCopy(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Link(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// scratchDir returns a fresh directory on tmpfs when /dev/shm is usable,
// else tb.TempDir(): the tests and benchmarks measure CRIU and Dedup, not
// the disk (dumps of hundreds of MiB to a disk-backed /tmp take seconds of
// writeback).
func scratchDir(tb testing.TB) string {
	tb.Helper()
	if d, err := os.MkdirTemp("/dev/shm", "ckpt-incremental-"); err == nil {
		tb.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return tb.TempDir()
}

// checkParents checks with criuimg.CheckParent that parent holds every
// page each task of child takes from it.
func checkParents(t *testing.T, child, parent string) {
	t.Helper()
	ps, err := pids(child)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range ps {
		name := fmt.Sprintf("pagemap-%d.img", pid)
		_, ce := readPagemapFile(t, filepath.Join(child, name))
		_, pe := readPagemapFile(t, filepath.Join(parent, name))
		if err := criuimg.CheckParent(ce, pe, 0); err != nil {
			t.Errorf("CheckParent(%s) = %v", name, err)
		}
	}
}

// readPagemapFile decodes a pagemap image with criuimg.
func readPagemapFile(t *testing.T, path string) (criuimg.PagemapHead, []criuimg.PagemapEntry) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return criuimg.PagemapHead{}, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	h, e, err := criuimg.ReadPagemap(filepath.Base(path), b)
	if err != nil {
		t.Fatal(err)
	}
	return h, e
}
