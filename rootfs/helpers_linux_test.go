package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root, except under CI=true, where a
// missing prerequisite is a failure: CI runs as root and must run it.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("test needs root (CI=true: not skipping)")
	}
	t.Skip("test needs root")
}

// prerequisite fails under CI=true and skips otherwise.
func prerequisite(t *testing.T, format string, args ...any) {
	t.Helper()
	prerequisiteOrSkip(t, format, args...)
}

// node is what the tests compare of one path.
type node struct {
	typ        string
	mode       uint32
	uid, gid   uint32
	size       int64
	mtime      unix.Timespec
	target     string
	sum        string
	rdev       uint64
	xattrs     string
	linkGroup  string // first name (sorted) sharing the inode, for hardlinks
	inodeIndex uint64
}

// snapshot records every path below dir (including "."), skipping the
// relative paths in skip and their subtrees.
func snapshot(t *testing.T, dir string, skip ...string) map[string]node {
	t.Helper()
	out := make(map[string]node)
	groups := make(map[uint64][]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if slices.Contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, mtime: st.Mtim, inodeIndex: st.Ino}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n.typ = "dir"
		case unix.S_IFREG:
			n.typ = "file"
			n.size = st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.sum = hex.EncodeToString(s[:8])
			if st.Nlink > 1 {
				groups[st.Ino] = append(groups[st.Ino], rel)
			}
		case unix.S_IFLNK:
			n.typ = "symlink"
			n.target, _ = os.Readlink(p)
		case unix.S_IFIFO:
			n.typ = "fifo"
		case unix.S_IFCHR:
			n.typ = "char"
			n.rdev = st.Rdev
		case unix.S_IFBLK:
			n.typ = "block"
			n.rdev = st.Rdev
		default:
			n.typ = "other"
		}
		if n.typ == "file" || n.typ == "dir" {
			n.xattrs = listKept(t, p)
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot(%s) = %v", dir, err)
	}
	for _, names := range groups {
		slices.Sort(names)
		for _, n := range names {
			nd := out[n]
			nd.linkGroup = names[0]
			out[n] = nd
		}
	}
	for k, nd := range out {
		nd.inodeIndex = 0
		out[k] = nd
	}
	return out
}

func listKept(t *testing.T, p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return ""
	}
	var kv []string
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" || !keepXattr(k) {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			t.Fatalf("Lgetxattr(%s, %s) = %v", p, k, err)
		}
		kv = append(kv, k+"="+string(v[:m]))
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// diffSnapshots returns one line per difference.
func diffSnapshots(got, want map[string]node) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			out = append(out, fmt.Sprintf("%s: missing, want %+v", k, w))
			continue
		}
		if g != w {
			out = append(out, fmt.Sprintf("%s: got %+v, want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: unexpected %+v", k, g))
		}
	}
	slices.Sort(out)
	return out
}

// copyTree copies src to dst preserving everything (cp -a).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp -a %s %s = %v: %s", src, dst, err, out)
	}
	// cp -a sets the destination root's times too, but be explicit.
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNano(dst, []unix.Timespec{st.Atim, st.Mtim}); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, body string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(body), mode))
	must(t, os.Chmod(p, mode))
}
