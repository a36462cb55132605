package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// TestTransientDirs checks where transient images go: a TmpDir on a tmpfs
// with room is used; one too small, or not a tmpfs, or none is not; and
// removing a container's transient directory never removes the TmpDir.
func TestTransientDirs(t *testing.T) {
	testutil.RequireRoot(t)
	tmp := mountTmpfs(t, "size=512m")

	e := &Engine{Root: t.TempDir(), RunRoot: t.TempDir(), TmpDir: tmp}
	d := e.transientDir("c1", 1<<20)
	if d != filepath.Join(tmp, "c1") {
		t.Fatalf("transientDir with room = %q, want %s/c1", d, tmp)
	}
	if d := e.transientDir("c2", 1<<30); d != "" {
		t.Errorf("transientDir beyond the tmpfs's size = %q, want none", d)
	}
	if d := e.transientDir("c3", -1); d != "" {
		t.Errorf("transientDir of an unknown size = %q, want none", d)
	}
	if err := e.removeTransient("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", d, err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("the TmpDir given was removed: %v", err)
	}

	for _, none := range []*Engine{{Root: e.Root, RunRoot: e.RunRoot}, {Root: e.Root, RunRoot: e.RunRoot, TmpDir: t.TempDir()}} {
		if r := none.transientRoot(); r != "" {
			t.Errorf("TmpDir %q: transient root %q, want none", none.TmpDir, r)
		}
	}
}
