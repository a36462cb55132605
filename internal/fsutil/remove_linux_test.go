package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestParseMountInfo(t *testing.T) {
	in := `22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
35 22 0:30 / /sys/fs/cgroup/pids rw,nosuid shared:13 master:2 - cgroup cgroup rw,pids
99 35 0:50 / /tmp/with\040space/and\134slash rw - tmpfs my\040src rw
`
	ms, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{ID: 22, Parent: 1, Dev: "0:21", Root: "/", Point: "/sys", FSType: "sysfs", Source: "sysfs"},
		{ID: 35, Parent: 22, Dev: "0:30", Root: "/", Point: "/sys/fs/cgroup/pids", FSType: "cgroup", Source: "cgroup"},
		{ID: 99, Parent: 35, Dev: "0:50", Root: "/", Point: `/tmp/with space/and\slash`, FSType: "tmpfs", Source: "my src"},
	}
	if !slices.Equal(ms, want) {
		t.Errorf("parseMountInfo() = %+v\nwant %+v", ms, want)
	}
	for _, bad := range []string{"1 2 3\n", "x 1 0:1 / /a rw - tmpfs t rw\n", "1 1 0:1 / /a rw tmpfs t rw\n"} {
		if _, err := parseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMountInfo(%q) succeeded", bad)
		}
	}
	if got := unescapeMountPath(`/a\04`); got != `/a\04` {
		t.Errorf("unescapeMountPath(truncated escape) = %q", got)
	}
}

// tree makes a small tree in dir: files, nested directories, a FIFO and
// symbolic links to canary, a directory outside it.
func tree(t *testing.T, dir, canary string) {
	t.Helper()
	for _, d := range []string{"a/b/c", "d", "empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/f", "a/b/c/g", "d/h"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "d/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(canary, filepath.Join(dir, "a/to-canary")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(canary, "keep"), filepath.Join(dir, "d/to-file")); err != nil {
		t.Fatal(err)
	}
	// Not writable: removal still empties it.
	if err := os.Chmod(filepath.Join(dir, "a/b"), 0o500); err != nil {
		t.Fatal(err)
	}
}

// newCanary makes a directory holding the file keep.
func newCanary(t *testing.T, dir string) string {
	t.Helper()
	c := filepath.Join(dir, "canary")
	if err := os.MkdirAll(c, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func checkCanary(t *testing.T, canary string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(b) != "keep" {
		t.Errorf("canary %s/keep = %q, %v; want it untouched", canary, b, err)
	}
}

func TestRemoveAll(t *testing.T) {
	base := t.TempDir()
	canary := newCanary(t, base)
	victim := filepath.Join(base, "victim")
	tree(t, victim, canary)
	if err := RemoveAll(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", victim, err)
	}
	checkCanary(t, canary)
	if err := RemoveAll(victim); err != nil {
		t.Errorf("RemoveAll(missing) = %v, want nil", err)
	}
	// A symbolic link given as the path is removed, not followed.
	link := filepath.Join(base, "link")
	if err := os.Symlink(canary, link); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(link); err != nil {
		t.Fatal(err)
	}
	checkCanary(t, canary)
	for _, p := range []string{"/", ".", ""} {
		if p == "" {
			if err := RemoveAll(p); err != nil {
				t.Errorf("RemoveAll(%q) = %v, want nil", p, err)
			}
			continue
		}
		if err := RemoveAll(p); err == nil {
			t.Errorf("RemoveAll(%q) succeeded", p)
		}
	}
}

// sandbox mounts a private tmpfs for a test's mounts, so that none of
// them propagates anywhere, and unmounts it (and all below) at the end.
func sandbox(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("ckpt-test", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount sandbox: %v", err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		t.Fatalf("make sandbox private: %v", err)
	}
	return dir
}

// yard builds, below victim, what a CRIU that died mid-restore leaves in
// its work directory: a tmpfs "cgroup yard" with a directory bound in it
// (canary stands for a host cgroup hierarchy), plus a bind mount of
// canary on the same file system (same device) and one of a file.
func yard(t *testing.T, victim, canary string) {
	t.Helper()
	tree(t, victim, canary)
	y := filepath.Join(victim, "work/.criu.cgyard.x")
	if err := os.MkdirAll(y, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("none", y, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	mustBind := func(src, dst string, dir bool) {
		if dir {
			if err := os.MkdirAll(dst, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(dst, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind %s on %s: %v", src, dst, err)
		}
	}
	mustBind(canary, filepath.Join(y, "pids"), true)
	mustBind(canary, filepath.Join(victim, "d/same-fs"), true)
	mustBind(filepath.Join(canary, "keep"), filepath.Join(victim, "d/file"), false)
}

func TestRemoveAllUnmounts(t *testing.T) {
	sb := sandbox(t)
	canary := newCanary(t, sb)
	victim := filepath.Join(sb, "victim")
	yard(t, victim, canary)
	if ps, err := MountsUnder(victim, true); err != nil || len(ps) != 4 {
		t.Fatalf("MountsUnder() = %v, %v; want the 4 mounts made", ps, err)
	}
	if err := RemoveAll(victim); err != nil {
		t.Fatal(err)
	}
	checkCanary(t, canary)
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", victim, err)
	}
	ms, err := Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if under(m.Point, victim, true) {
			t.Errorf("mount left: %+v", m)
		}
	}
}

// TestRemoveTreeStopsAtMounts checks the walker alone: met without
// unmounting, each kind of mount point stops it and the canary survives.
func TestRemoveTreeStopsAtMounts(t *testing.T) {
	sb := sandbox(t)
	t.Run("openat2", func(t *testing.T) { testRemoveTreeStops(t, filepath.Join(sb, "openat2")) })
	t.Run("without openat2", func(t *testing.T) {
		openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
		defer func() { openat2 = unix.Openat2 }()
		testRemoveTreeStops(t, filepath.Join(sb, "openat"))
	})
}

func testRemoveTreeStops(t *testing.T, sb string) {
	for _, tc := range []struct {
		name  string
		mount func(t *testing.T, victim, canary string)
	}{
		{"bind on the same file system", func(t *testing.T, victim, canary string) {
			d := filepath.Join(victim, "a/bind")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(canary, d, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{"tmpfs holding a bind", func(t *testing.T, victim, canary string) {
			d := filepath.Join(victim, "d/yard")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("none", d, "tmpfs", 0, "size=1m"); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(d, "pids"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(canary, filepath.Join(d, "pids"), "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
		}},
		{"bind of a file", func(t *testing.T, victim, canary string) {
			f := filepath.Join(victim, "d/file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(filepath.Join(canary, "keep"), f, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(sb, strings.ReplaceAll(tc.name, " ", "-"))
			canary := newCanary(t, dir)
			victim := filepath.Join(dir, "victim")
			tree(t, victim, canary)
			tc.mount(t, victim, canary)
			t.Cleanup(func() {
				if err := UnmountAll(victim, true); err != nil {
					t.Error(err)
				}
			})
			err := removeTree(victim)
			if !errors.Is(err, ErrMounted) {
				t.Errorf("removeTree() = %v, want ErrMounted", err)
			}
			checkCanary(t, canary)
		})
	}
}

func TestUnmountAllStacked(t *testing.T) {
	sb := sandbox(t)
	d := filepath.Join(sb, "top")
	if err := os.MkdirAll(filepath.Join(d, "x/y"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Two tmpfs on one point, a third below the second.
	for _, p := range []string{"x", "x"} {
		if err := unix.Mount("none", filepath.Join(d, p), "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(d, "x/z"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("none", filepath.Join(d, "x/z"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(d, false); err != nil {
		t.Fatal(err)
	}
	if ps, err := MountsUnder(d, true); err != nil || len(ps) != 0 {
		t.Errorf("MountsUnder() after UnmountAll = %v, %v; want none", ps, err)
	}
	if _, err := os.Stat(filepath.Join(d, "x/y")); err != nil {
		t.Errorf("the directory under the mounts is gone: %v", err)
	}
}
