package inspect

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// TestDiffPodman compares the two podman checkpoints of the counter
// workload taken about a second apart: the same process, the counter's
// pages changed, and the counter file of the volume changed.
func TestDiffPodman(t *testing.T) {
	a := filepath.Join(repoTestdata, "podman", "counter.tar")
	b := filepath.Join(repoTestdata, "podman", "counter.tar.zst")
	d, err := DiffArchives(context.Background(), a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Identical {
		t.Fatal("DiffArchives(podman) = identical")
	}
	if len(d.Processes) != 1 || d.Processes[0].Change != Unchanged {
		t.Errorf("processes = %+v, want one unchanged", d.Processes)
	}
	if d.MemoryTotal.ChangedPages == 0 {
		t.Errorf("memory = %+v, want changed pages", d.MemoryTotal)
	}
	checkCounterPages(t, d, b)
	found := false
	for _, f := range d.Rootfs {
		if f.Tar == "volumes/ckptvol.tar" && f.Path == "/counter" && f.Change == Changed {
			found = true
		}
	}
	if !found {
		t.Errorf("rootfs changes = %+v, want volumes/ckptvol.tar:/counter changed", d.Rootfs)
	}
	d.A, d.B = filepath.Base(a), filepath.Base(b)
	var buf bytes.Buffer
	if err := WriteDiff(&buf, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "podman.diff", buf.Bytes())
	buf.Reset()
	if err := WriteJSON(&buf, DiffJSON{Version: JSONVersion, Diff: d}); err != nil {
		t.Fatal(err)
	}
	golden(t, "podman.diff.json", buf.Bytes())
}

// TestDiffRootfs compares two ckpt archives of the same images whose
// rootfs diffs differ.
func TestDiffRootfs(t *testing.T) {
	dir := t.TempDir()
	a := writeTiny(t, dir, "a.ckpt", tinyOptions{})
	b := writeTiny(t, dir, "b.ckpt", tinyOptions{rootfs: [][2]string{{"added.txt", "added\n"}, {"etc/modified.txt", "changed\n"}, {"new.txt", "x"}}})
	ctx := context.Background()
	d, err := DiffArchives(ctx, a, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Identical || d.MemoryTotal.ChangedPages != 0 || d.MemoryTotal.AddedPages != 0 {
		t.Errorf("diff = identical %v memory %+v, want different rootfs and equal memory", d.Identical, d.MemoryTotal)
	}
	want := map[string]string{"/etc/modified.txt": Changed, "/new.txt": Added}
	got := map[string]string{}
	for _, f := range d.Rootfs {
		got[f.Path] = f.Change
	}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("rootfs change of %s = %q, want %q (all: %+v)", p, got[p], c, d.Rootfs)
		}
	}
	d.A, d.B = "a.ckpt", "b.ckpt"
	var buf bytes.Buffer
	if err := WriteDiff(&buf, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "tiny-rootfs.diff", buf.Bytes())
	same, err := DiffArchives(ctx, a, a, nil)
	if err != nil || !same.Identical {
		t.Errorf("DiffArchives(a, a) = %+v, %v, want identical", same, err)
	}
}

// checkCounterPages finds the counter workload's "counter N" lines in the
// memory of archive b and checks that diff d lists each one's page as
// changed (or the page as new in its mapping).
func checkCounterPages(t *testing.T, d *Diff, b string) {
	t.Helper()
	a, err := Load(context.Background(), b, &LoadOptions{Images: true, Pages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ms, err := a.Search(SearchOptions{Regexp: `counter [0-9]+`})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal(`no "counter N" in the memory of the second checkpoint`)
	}
	for _, m := range ms {
		page := m.Addr &^ (PageSize - 1)
		ok := false
		for _, c := range d.Memory {
			if c.PID != m.PID || page < c.Start || page >= c.End {
				continue
			}
			for _, p := range c.Pages {
				ok = ok || p == page
			}
			ok = ok || c.AddedPages > 0 || len(c.Pages) == maxListedPages
		}
		if !ok {
			t.Errorf("page %#x holding %q is not among the changed pages %+v", page, m.Match, d.Memory)
		}
	}
}
