package volumes

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// requireUserXattrs skips (fails under CI=true) where dir's file system
// has no user.* extended attributes (tmpfs before Linux 6.6).
func requireUserXattrs(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, ".xattr-probe")
	must(t, os.WriteFile(p, nil, 0o644))
	defer os.Remove(p)
	if err := unix.Lsetxattr(p, "user.probe", []byte("1"), 0); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("user.* xattrs on %s: %v (CI=true: not skipping)", dir, err)
		}
		t.Skipf("user.* xattrs on %s: %v", dir, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p, body string, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(body), mode))
	must(t, os.Chmod(p, mode))
}

// node is what the tests compare of one path.
type node struct {
	typ       string
	mode      uint32
	uid, gid  uint32
	size      int64
	mtime     unix.Timespec
	target    string
	sum       string
	rdev      uint64
	xattrs    string
	linkGroup string // first name (sorted) sharing the inode, for hardlinks
}

// snapshot records every path below dir, "." included, without following
// symbolic links.
func snapshot(t testing.TB, dir string) map[string]node {
	t.Helper()
	out := make(map[string]node)
	groups := make(map[uint64][]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, mtime: st.Mtim}
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
			n.xattrs = userXattrs(t, p)
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
	return out
}

func userXattrs(t testing.TB, p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return ""
	}
	var kv []string
	for k := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(k, "user.") {
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

// entries lists the names in dir (nil if it does not exist).
func entries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A tiny tar builder for hostile imports (containerd's tartest idea, as in
// rootfs): headers go in as given, nothing is validated.

type tarEntry struct {
	hdr  tar.Header
	body string
	// truncate ends the stream right after this entry's header and body.
	truncate bool
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func tDir(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}}
}

func tFile(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func tSymlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func tLink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}}
}

func tDev(typ byte, name string, major, minor int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

// tHuge declares size bytes, carries a few and ends the stream.
func tHuge(name string, size int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: testTime}, body: "tiny", truncate: true}
}

func buildTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("WriteHeader(%q) = %v", h.Name, err)
		}
		if e.truncate {
			buf.WriteString(e.body)
			return buf.Bytes()
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("Write(%q) = %v", h.Name, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}
