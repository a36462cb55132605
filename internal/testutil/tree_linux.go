package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Node is what tree comparisons look at for one path.
type Node struct {
	Type      string // dir, file, symlink, fifo, char, block or other
	Mode      uint32 // permission bits, setuid, setgid and sticky
	UID, GID  uint32
	Size      int64 // regular files only
	Mtime     unix.Timespec
	Target    string // symlink target
	Sum       string // regular files: the first 8 bytes of the SHA-256, in hex
	Rdev      uint64 // devices
	Xattrs    string // files and directories: the kept xattrs, "k=v" sorted and comma-separated
	LinkGroup string // first name (sorted) sharing the inode, for hardlinks
}

// Snapshot records every path below dir, "." included, without following
// symbolic links, keyed by slash-separated relative path. It skips the
// relative paths in skip and their subtrees. keepXattr selects the
// extended attributes recorded for files and directories; nil records none.
func Snapshot(t testing.TB, dir string, keepXattr func(name string) bool, skip ...string) map[string]Node {
	t.Helper()
	out := make(map[string]Node)
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
		n := Node{Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n.Type = "dir"
		case unix.S_IFREG:
			n.Type = "file"
			n.Size = st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Sum = hex.EncodeToString(s[:8])
			if st.Nlink > 1 {
				groups[st.Ino] = append(groups[st.Ino], rel)
			}
		case unix.S_IFLNK:
			n.Type = "symlink"
			n.Target, _ = os.Readlink(p)
		case unix.S_IFIFO:
			n.Type = "fifo"
		case unix.S_IFCHR:
			n.Type = "char"
			n.Rdev = st.Rdev
		case unix.S_IFBLK:
			n.Type = "block"
			n.Rdev = st.Rdev
		default:
			n.Type = "other"
		}
		if keepXattr != nil && (n.Type == "file" || n.Type == "dir") {
			n.Xattrs = xattrs(t, p, keepXattr)
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("Snapshot(%s) = %v", dir, err)
	}
	for _, names := range groups {
		slices.Sort(names)
		for _, n := range names {
			nd := out[n]
			nd.LinkGroup = names[0]
			out[n] = nd
		}
	}
	return out
}

// xattrs returns p's extended attributes that keep selects, as "k=v"
// sorted and comma-separated; "" if they cannot be listed.
func xattrs(t testing.TB, p string, keep func(string) bool) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return ""
	}
	var kv []string
	for k := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if k == "" || !keep(k) {
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

// DiffSnapshots returns one line per path that differs between two
// snapshots, sorted; none if they are equal.
func DiffSnapshots(got, want map[string]Node) []string {
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
