package fsutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxMountInfo bounds what Mounts reads of /proc/self/mountinfo.
const maxMountInfo = 64 << 20

// unmountRounds bounds how often UnmountAll re-reads the mount table: each
// round detaches the mounts it finds, and a mount stacked on another
// shows only once the one above it is gone.
const unmountRounds = 8

// Mount is one entry of /proc/self/mountinfo.
type Mount struct {
	// ID and Parent are the mount's and its parent's mount IDs.
	ID, Parent int
	// Dev is the file system's device ("major:minor").
	Dev string
	// Root is the directory of the file system mounted (unescaped): "/"
	// unless a part of it is bound.
	Root string
	// Point is the mount point (unescaped).
	Point string
	// FSType is the file system type ("tmpfs", "cgroup", ...).
	FSType string
	// Source is the mount source ("none", a device, ...).
	Source string
}

// Mounts returns the mounts of the calling process' mount namespace.
func Mounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return parseMountInfo(io.LimitReader(f, maxMountInfo))
}

// parseMountInfo parses the mountinfo format (proc(5)): ID, parent ID,
// major:minor, root, mount point, options, optional fields, "-", type,
// source, super options.
func parseMountInfo(r io.Reader) ([]Mount, error) {
	var ms []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), " ")
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("read mount table: malformed line %q", sc.Text())
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("read mount table: malformed line %q", sc.Text())
		}
		ms = append(ms, Mount{ID: id, Parent: parent, Dev: f[2], Root: unescapeMountPath(f[3]), Point: unescapeMountPath(f[4]),
			FSType: f[sep+1], Source: unescapeMountPath(f[sep+2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return ms, nil
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonical returns path absolute and with its symbolic links resolved,
// as the mount table spells it.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// under reports whether p is dir or below it (self) or strictly below it.
func under(p, dir string, self bool) bool {
	if p == dir {
		return self
	}
	return dir == "/" || strings.HasPrefix(p, dir+"/")
}

// MountsUnder returns the mount points at dir (with self) or below it in
// the calling process' mount namespace, deepest first; the latest of
// mounts stacked on one point comes first. dir must exist.
func MountsUnder(dir string, self bool) ([]string, error) {
	d, err := canonical(dir)
	if err != nil {
		return nil, err
	}
	ms, err := Mounts()
	if err != nil {
		return nil, err
	}
	var hits []Mount
	for _, m := range ms {
		if under(m.Point, d, self) {
			hits = append(hits, m)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool {
		di, dj := strings.Count(hits[i].Point, "/"), strings.Count(hits[j].Point, "/")
		if di != dj {
			return di > dj
		}
		return hits[i].ID > hits[j].ID
	})
	points := make([]string, len(hits))
	for i, m := range hits {
		points[i] = m.Point
	}
	return points, nil
}

// UnmountAll detaches (MNT_DETACH) every mount at dir (with self) or below
// it, deepest first, until the mount table shows none. A mount that stays
// is an error wrapping [ErrMounted]. A dir that does not exist has
// nothing mounted on it.
func UnmountAll(dir string, self bool) error {
	d, err := canonical(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if d == "/" {
		return fmt.Errorf("unmount everything below %s: refused", dir)
	}
	for round := 0; ; round++ {
		points, err := MountsUnder(d, self)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(points) == 0 {
			return nil
		}
		if round == unmountRounds {
			return fmt.Errorf("%w: %s is still mounted after unmounting it", ErrMounted, points[0])
		}
		for _, p := range points {
			err := unix.Unmount(p, unix.MNT_DETACH)
			// EINVAL: no longer a mount point (detached with its parent).
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("%w: unmount %s: %w", ErrMounted, p, err)
			}
		}
	}
}
