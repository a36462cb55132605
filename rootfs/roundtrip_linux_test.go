package rootfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
	"golang.org/x/sys/unix"
)

var baseTime = time.Date(2023, 1, 2, 3, 4, 5, 600000000, time.UTC)

// buildLower makes a small image root.
func buildLower(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"etc/hosts":        "127.0.0.1 localhost\n",
		"etc/modified.txt": "hello world\n",
		"etc/deleted.txt":  "bye\n",
		"etc/mode.txt":     "mode\n",
		"etc/owner.txt":    "owner\n",
		"var/lib/olddir/a": "a\n",
		"var/lib/olddir/b": "b\n",
		"typechange/x":     "x\n",
		"filetodir":        "file\n",
		"opq/a":            "a\n",
		"opq/b":            "b\n",
		"usr/bin/tool":     "#!/bin/sh\n",
		"same.txt":         "unchanged\n",
		"hl1":              "lower hardlink\n",
	}
	for p, body := range files {
		writeFile(t, filepath.Join(dir, p), body, 0o644)
	}
	must(t, os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755))
	must(t, os.Link(filepath.Join(dir, "hl1"), filepath.Join(dir, "hl2")))
	must(t, os.Symlink("etc/hosts", filepath.Join(dir, "oldlink")))
	must(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	must(t, unix.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	setAllTimes(t, dir, baseTime)
}

// setAllTimes gives every path below dir the same atime and mtime.
func setAllTimes(t *testing.T, dir string, tm time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	var paths []string
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	slices.Reverse(paths) // children before parents
	for _, p := range paths {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// mutate makes the container's changes in merged.
func mutate(t *testing.T, merged string) {
	t.Helper()
	m := func(p string) string { return filepath.Join(merged, p) }
	writeFile(t, m("etc/added.txt"), "added\n", 0o644)
	writeFile(t, m("newdir/sub/file"), "deep\n", 0o600)
	// Same size, same mtime, different content: the podman 5.4.2 case.
	var st unix.Stat_t
	must(t, unix.Lstat(m("etc/modified.txt"), &st))
	must(t, os.WriteFile(m("etc/modified.txt"), []byte("HELLO WORLD\n"), 0o644))
	must(t, unix.UtimesNano(m("etc/modified.txt"), []unix.Timespec{st.Atim, st.Mtim}))
	must(t, os.Remove(m("etc/deleted.txt")))
	must(t, os.RemoveAll(m("var/lib/olddir")))
	must(t, os.Chmod(m("etc/mode.txt"), 0o600))
	if os.Geteuid() == 0 {
		must(t, os.Lchown(m("etc/owner.txt"), 1234, 5678))
	}
	must(t, os.Symlink("../usr/bin/tool", m("etc/rel-link")))
	must(t, os.Symlink("/etc/hosts", m("etc/abs-link")))
	writeFile(t, m("data/h1"), "linked\n", 0o644)
	must(t, os.Link(m("data/h1"), m("data/h2")))
	writeFile(t, m("etc/xattr.txt"), "x\n", 0o644)
	if err := unix.Setxattr(m("etc/xattr.txt"), "user.test", []byte("value"), 0); err != nil {
		testutil.Missing(t, "user.* xattrs on %s: %v", merged, err)
	}
	must(t, unix.Setxattr(m("newdir"), "user.dir", []byte("d"), 0))
	must(t, os.RemoveAll(m("typechange")))
	writeFile(t, m("typechange"), "now a file\n", 0o644)
	must(t, os.Remove(m("filetodir")))
	writeFile(t, m("filetodir/child"), "child\n", 0o644)
	must(t, os.RemoveAll(m("opq")))
	writeFile(t, m("opq/new"), "new\n", 0o644)
	must(t, unix.Chmod(m("usr/bin/tool"), 0o4755))
	must(t, os.MkdirAll(m("run"), 0o755))
	must(t, unix.Mkfifo(m("run/fifo"), 0o640))
	writeFile(t, m("proc/1/status"), "skipped mount\n", 0o644)
}

var wantKinds = map[string]ChangeKind{
	"etc/added.txt":    Added,
	"etc/modified.txt": Modified,
	"etc/deleted.txt":  Deleted,
	"var/lib/olddir":   Deleted,
	"etc/mode.txt":     Modified,
	"etc/rel-link":     Added,
	"etc/abs-link":     Added,
	"data/h1":          Added,
	"data/h2":          Added,
	"etc/xattr.txt":    Added,
	"newdir/sub/file":  Added,
	"typechange":       Modified,
	"filetodir":        Modified,
	"filetodir/child":  Added,
	"opq/a":            Deleted,
	"opq/new":          Added,
	"usr/bin/tool":     Modified,
	"run/fifo":         Added,
	"proc":             0, // skipped
	"proc/1/status":    0,
	"var/lib/olddir/a": 0, // implied by its deleted directory
	"same.txt":         0,
	"hl1":              0,
	"oldlink":          0,
	"etc/hosts":        0,
}

func checkKinds(t *testing.T, changes []Change) {
	t.Helper()
	got := make(map[string]ChangeKind)
	for _, c := range changes {
		if _, dup := got[c.Path]; dup {
			t.Errorf("Changes() lists %q twice", c.Path)
		}
		got[c.Path] = c.Kind
	}
	for p, want := range wantKinds {
		if got[p] != want {
			t.Errorf("Changes()[%q] = %v, want %v", p, got[p], want)
		}
	}
	if !slices.IsSortedFunc(changes, func(a, b Change) int { return cmpString(a.Path, b.Path) }) {
		t.Errorf("Changes() not sorted: %v", changes)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mutatedTrees builds a lower tree and a copy of it changed by mutate,
// as base/lower and base/merged in a fresh directory base.
func mutatedTrees(t *testing.T) (base, lower, merged string) {
	t.Helper()
	base = t.TempDir()
	lower, merged = filepath.Join(base, "lower"), filepath.Join(base, "merged")
	buildLower(t, lower)
	copyTree(t, lower, merged)
	mutate(t, merged)
	return base, lower, merged
}

// roundTrip captures merged against lower, applies the result to a copy of
// lower and checks the copy equals merged exactly, then that capturing the
// copy gives the same changes and the same bytes.
func roundTrip(t *testing.T, lower, merged string, copts *ChangesOptions) []Change {
	t.Helper()
	ctx := context.Background()
	changes, err := Changes(ctx, lower, merged, copts)
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	checkKinds(t, changes)
	wopts := &WriteOptions{FIFOs: true}
	var diff bytes.Buffer
	if err := WriteDiff(ctx, &diff, merged, changes, wopts); err != nil {
		t.Fatalf("WriteDiff() = %v", err)
	}
	var del bytes.Buffer
	if err := WriteDeleted(&del, changes); err != nil {
		t.Fatalf("WriteDeleted() = %v", err)
	}
	deleted, err := ReadDeleted(bytes.NewReader(del.Bytes()))
	if err != nil {
		t.Fatalf("ReadDeleted() = %v", err)
	}
	if !slices.Contains(deleted, "/etc/deleted.txt") || !slices.Contains(deleted, "/var/lib/olddir") {
		t.Errorf("deleted.files = %s, want /etc/deleted.txt and /var/lib/olddir", del.Bytes())
	}

	target := filepath.Join(t.TempDir(), "root")
	copyTree(t, lower, target)
	aopts := &ApplyOptions{FIFOs: true, NoChown: os.Geteuid() != 0}
	if err := Apply(ctx, target, bytes.NewReader(diff.Bytes()), deleted, aopts); err != nil {
		t.Fatalf("Apply() = %v", err)
	}
	got := testutil.Snapshot(t, target, keepXattr, "proc")
	want := testutil.Snapshot(t, merged, keepXattr, "proc")
	for _, d := range testutil.DiffSnapshots(got, want) {
		t.Errorf("applied tree differs from container: %s", d)
	}

	again, err := Changes(ctx, lower, target, &ChangesOptions{Skip: []string{"/proc"}})
	if err != nil {
		t.Fatalf("Changes(applied) = %v", err)
	}
	if !slices.Equal(again, changes) {
		t.Errorf("Changes(applied) = %v, want %v", again, changes)
	}
	var diff2 bytes.Buffer
	if err := WriteDiff(ctx, &diff2, target, again, wopts); err != nil {
		t.Fatalf("WriteDiff(applied) = %v", err)
	}
	if !bytes.Equal(diff2.Bytes(), diff.Bytes()) {
		t.Errorf("WriteDiff(applied) gives %d bytes differing from the original %d", diff2.Len(), diff.Len())
	}
	return changes
}

func TestRoundTripPlainDirs(t *testing.T) {
	_, lower, merged := mutatedTrees(t)
	roundTrip(t, lower, merged, &ChangesOptions{Skip: []string{"/proc"}})
}

func TestRoundTripOverlay(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	upper := filepath.Join(base, "upper")
	work := filepath.Join(base, "work")
	merged := filepath.Join(base, "merged")
	buildLower(t, lower)
	for _, d := range []string{upper, work, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		testutil.Missing(t, "mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})
	mutate(t, merged)

	// The case the fast path must handle: rm -rf opq; mkdir opq.
	if v, err := getxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque"); err != nil || v != "y" {
		t.Fatalf("upper/opq trusted.overlay.opaque = %q, %v; want y", v, err)
	}
	var dev unix.Stat_t
	must(t, unix.Lstat(filepath.Join(upper, "etc/deleted.txt"), &dev))
	if dev.Mode&unix.S_IFMT != unix.S_IFCHR || dev.Rdev != 0 {
		t.Fatalf("upper/etc/deleted.txt is not a whiteout: mode %o rdev %d", dev.Mode, dev.Rdev)
	}

	skip := []string{"proc"}
	fast := roundTrip(t, lower, merged, &ChangesOptions{Upper: upper, Skip: skip})
	naive, err := Changes(context.Background(), lower, merged, &ChangesOptions{Skip: skip})
	if err != nil {
		t.Fatalf("Changes(naive) = %v", err)
	}
	if !slices.Equal(fast, naive) {
		t.Errorf("Changes(upper) = %v\nChanges(walk) = %v", fast, naive)
	}
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// TestOverlayUpperByHand builds an upper directory in the userxattr
// style (user.overlay.opaque) with a whiteout, without mounting.
func TestOverlayUpperByHand(t *testing.T) {
	testutil.RequireRoot(t) // mknod of the whiteout
	base := t.TempDir()
	lower, upper, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "merged")
	writeFile(t, filepath.Join(lower, "d/a"), "a", 0o644)
	writeFile(t, filepath.Join(lower, "d/b"), "b", 0o644)
	writeFile(t, filepath.Join(lower, "x"), "x", 0o644)
	writeFile(t, filepath.Join(lower, "keep/y"), "y", 0o644)
	setAllTimes(t, lower, baseTime)
	writeFile(t, filepath.Join(upper, "d/c"), "c", 0o644)
	must(t, unix.Setxattr(filepath.Join(upper, "d"), "user.overlay.opaque", []byte("y"), 0))
	must(t, unix.Mknod(filepath.Join(upper, "x"), unix.S_IFCHR, 0))
	setAllTimes(t, upper, baseTime)
	writeFile(t, filepath.Join(merged, "d/c"), "c", 0o644)
	writeFile(t, filepath.Join(merged, "keep/y"), "y", 0o644)
	setAllTimes(t, merged, baseTime)
	must(t, os.Chmod(merged, 0o700))
	must(t, os.Chmod(lower, 0o700))

	got, err := Changes(context.Background(), lower, merged, &ChangesOptions{Upper: upper})
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	want := []Change{{"d/a", Deleted}, {"d/b", Deleted}, {"d/c", Added}, {"x", Deleted}}
	if !slices.Equal(got, want) {
		t.Errorf("Changes() = %v, want %v", got, want)
	}
}

func TestWriteDiffDeterministic(t *testing.T) {
	_, lower, merged := mutatedTrees(t)
	ctx := context.Background()
	changes, err := Changes(ctx, lower, merged, &ChangesOptions{Skip: []string{"proc"}})
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	var a, b bytes.Buffer
	if err := WriteDiff(ctx, &a, merged, changes, nil); err != nil {
		t.Fatalf("WriteDiff() = %v", err)
	}
	// Reversed input order must not matter.
	rev := slices.Clone(changes)
	slices.Reverse(rev)
	if err := WriteDiff(ctx, &b, merged, rev, nil); err != nil {
		t.Fatalf("WriteDiff() = %v", err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("WriteDiff() twice: %d and %d bytes, not identical", a.Len(), b.Len())
	}
}

func TestChangesCancelled(t *testing.T) {
	base := t.TempDir()
	lower, merged := filepath.Join(base, "lower"), filepath.Join(base, "merged")
	buildLower(t, lower)
	copyTree(t, lower, merged)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Changes(ctx, lower, merged, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Changes(cancelled) = %v, want context.Canceled", err)
	}
	var buf bytes.Buffer
	if err := WriteDiff(ctx, &buf, merged, []Change{{"etc/hosts", Modified}}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteDiff(cancelled) = %v, want context.Canceled", err)
	}
	tarball := tarbuild.Build(t, tarbuild.File("a", "a", 0o644))
	if err := Apply(ctx, merged, bytes.NewReader(tarball), nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(cancelled) = %v, want context.Canceled", err)
	}
}
