package engine

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func cgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "unknown"
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v1 (hybrid)"
	}
	return "v1"
}

// setSubreaper makes the calling process a child subreaper, so orphaned
// descendants (the container's init once runc exits) are reparented to it.
func setSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// isMounted reports whether path is a mount point other than its parent's
// file system (the mounted container layer).
func isMounted(path string) bool {
	var st, parent unix.Stat_t
	if path == "" || unix.Stat(path, &st) != nil || unix.Stat(filepath.Dir(path), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// scriptable reports whether CRIU can run a script written in dir: its
// path needs no quoting in CRIU's configuration file and its file system
// is not mounted noexec.
func scriptable(dir string) bool {
	if strings.ContainsAny(dir, " \t\n\"'\\#") {
		return false
	}
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Flags&unix.ST_NOEXEC == 0
}
