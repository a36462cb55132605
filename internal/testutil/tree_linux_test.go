package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a", "skip/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "s")); err != nil {
		t.Fatal(err)
	}
	before := Snapshot(t, dir, nil, "skip")
	var names []string
	for k := range before {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{".", "a", "b", "s"}; !slices.Equal(names, want) {
		t.Errorf("Snapshot() paths = %q, want %q", names, want)
	}
	if n := before["b"]; n.Type != "file" || n.LinkGroup != "a" || n.Sum == "" {
		t.Errorf("Snapshot()[b] = %+v, want a file linked with a", n)
	}
	if n := before["s"]; n.Type != "symlink" || n.Target != "a" {
		t.Errorf("Snapshot()[s] = %+v, want a symlink to a", n)
	}
	if d := DiffSnapshots(Snapshot(t, dir, nil, "skip"), before); len(d) != 0 {
		t.Errorf("DiffSnapshots(same tree) = %q, want none", d)
	}
	if err := os.Remove(filepath.Join(dir, "s")); err != nil {
		t.Fatal(err)
	}
	d := DiffSnapshots(Snapshot(t, dir, nil, "skip"), before)
	if len(d) != 2 || !strings.HasPrefix(d[0], ".: got") || !strings.HasPrefix(d[1], "s: missing") {
		t.Errorf("DiffSnapshots(s removed) = %q, want . changed and s missing", d)
	}
}
