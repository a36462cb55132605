package engine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Transient images: what an export dumps and an import unpacks is read
// once and thrown away (or kept only until the container is restored).
// With Engine.TmpDir on a tmpfs that has room, they go there and never
// touch a disk. By default they go to the container directory and the
// import staging directory under Root: through the page cache, which on
// the machines measured (bench/RESULTS.md) takes CRIU's writes faster than
// a tmpfs does, as long as they fit under the kernel's dirty limits.

// transientSlack is what a transient directory needs beyond the estimate
// of its content, on the tmpfs and in the host's available memory.
const transientSlack = 256 << 20

// transientRoot returns the tmpfs directory that holds transient images:
// TmpDir if it is set and on a tmpfs, else "".
func (e *Engine) transientRoot() string {
	if e.TmpDir != "" && isTmpfs(e.TmpDir) {
		return e.TmpDir
	}
	return ""
}

// transientDir returns a directory on tmpfs with room for need bytes for
// the container id (created, mode 0700), or "" if there is none or it is
// too small, or need is unknown (negative).
func (e *Engine) transientDir(id string, need int64) string {
	root := e.transientRoot()
	if root == "" || need < 0 || !roomFor(root, need) {
		return ""
	}
	d := filepath.Join(root, id)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return ""
	}
	return d
}

// removeTransient removes the transient directory of container id.
func (e *Engine) removeTransient(id string) error {
	root := e.transientRoot()
	if root == "" {
		return nil
	}
	return fsutil.RemoveAll(filepath.Join(root, id))
}

// removeEmptyTransient removes dir if it is empty and directly inside the
// transient root (TmpDir itself is the caller's to keep).
func (e *Engine) removeEmptyTransient(dir string) {
	if root := e.transientRoot(); root != "" && filepath.Dir(dir) == root {
		_ = os.Remove(dir) // fails unless empty
	}
}

// isTmpfs reports whether path is on a tmpfs.
func isTmpfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// roomFor reports whether the file system of dir (or of its closest
// existing parent) and the host's available memory both have room for
// need bytes plus transientSlack.
func roomFor(dir string, need int64) bool {
	for {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err == nil {
			if int64(st.Bavail)*st.Bsize < need+transientSlack {
				return false
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
	avail, err := memAvailable()
	return err == nil && avail >= need+transientSlack
}

// memAvailable returns MemAvailable of /proc/meminfo in bytes.
func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemAvailable")
}

// memoryUsage returns the memory charged to the cgroup of process pid (the
// container's init), an upper bound of what its CRIU images take: cgroup
// v2 memory.current, or v1 memory.usage_in_bytes. It returns -1 if that
// cannot be read.
func memoryUsage(pid int) int64 {
	cg, err := procCgroups(pid)
	if err != nil {
		return -1
	}
	var files []string
	if d := cg.v1("memory"); d != "" {
		files = append(files, filepath.Join(d, "memory.usage_in_bytes"))
	}
	if cg.v2 != "" {
		files = append(files, filepath.Join(cg.v2, "memory.current"))
	}
	for _, file := range files {
		v, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil {
			return n
		}
	}
	return -1
}

// cgroups are the cgroup directories of a process, from
// /proc/<pid>/cgroup: v1 hierarchies by controller, and the v2 (unified)
// one.
type cgroups struct {
	byController map[string]string // v1: controller → /sys/fs/cgroup/<controllers>/<path>
	v2           string            // /sys/fs/cgroup/<path>, or "" without a v2 line
}

// v1 returns the directory of controller's v1 hierarchy, or "".
func (c cgroups) v1(controller string) string { return c.byController[controller] }

func procCgroups(pid int) (cgroups, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return cgroups{}, err
	}
	c := cgroups{byController: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			c.v2 = filepath.Join("/sys/fs/cgroup", parts[2])
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			c.byController[ctrl] = filepath.Join("/sys/fs/cgroup", ctrl, parts[2])
		}
	}
	return c, nil
}
