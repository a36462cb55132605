package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxRemoveDepth bounds how deep RemoveAll descends (each level holds a
// file descriptor).
const maxRemoveDepth = 4096

// openat2 is unix.Openat2; tests replace it to take the path of kernels
// without it.
var openat2 = unix.Openat2

// removePasses bounds how often RemoveAll re-reads a directory that is
// not empty after its entries were removed (something writes into it).
const removePasses = 16

// RemoveAll removes path and everything below it, like os.RemoveAll, but
// never outside the file system it starts on: it first detaches every
// mount at or below path (UnmountAll), then removes with *at calls
// relative to open directories, never following a symbolic link and
// never entering a directory that is a mount point (openat2 with
// RESOLVE_NO_XDEV, and the device compared with the top's). A mount point
// met on the way is an error wrapping [ErrMounted], never a reason to
// descend; what was removed before it stays removed. A path that does not
// exist is not an error.
func RemoveAll(path string) error {
	if path == "" {
		return nil
	}
	clean := filepath.Clean(path)
	if clean == "/" || clean == "." || clean == ".." {
		return fmt.Errorf("remove %s: refusing to remove it", path)
	}
	if _, err := os.Lstat(clean); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := UnmountAll(clean, true); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := removeTree(clean); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// removeTree removes path without unmounting anything: it stops at the
// first mount point.
func removeTree(path string) error {
	parent, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(parent)
	return removeEntry(parent, filepath.Base(path), path, 0, nil)
}

// removeEntry removes name in the directory dirfd (whose path is for
// errors only). dev is the device the removal started on, nil at the top.
func removeEntry(dirfd int, name, path string, depth int, dev *uint64) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		err := unlinkat(dirfd, name, 0)
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("%w: %s", ErrMounted, path)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove", Path: path, Err: err}
		}
		return nil
	}
	if dev != nil && st.Dev != *dev {
		return fmt.Errorf("%w: %s is on another file system", ErrMounted, path)
	}
	if depth >= maxRemoveDepth {
		return fmt.Errorf("remove %s: deeper than %d directories", path, maxRemoveDepth)
	}
	fd, err := openDirNoXdev(dirfd, name, &st)
	if errors.Is(err, unix.EACCES) && makeSearchable(dirfd, name) == nil {
		fd, err = openDirNoXdev(dirfd, name, &st)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	if dev == nil {
		dev = &st.Dev
	}
	err = removeContents(fd, path, depth, dev)
	unix.Close(fd)
	if err != nil {
		return err
	}
	err = unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w: %s", ErrMounted, path)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

// openDirNoXdev opens the directory name in dirfd, refusing a symbolic
// link and a mount point (also a bind mount of the same file system,
// which has the same device): openat2 with RESOLVE_NO_XDEV, or, where
// the kernel lacks openat2, openat with O_NOFOLLOW and the mount IDs of
// statx compared. st is what fstatat found; the opened directory must be
// the same inode.
func openDirNoXdev(dirfd int, name string, st *unix.Stat_t) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_BENEATH,
	}
	fd, err := openat2(dirfd, name, how)
	if errors.Is(err, unix.ENOSYS) {
		fd, err = openDirSameMount(dirfd, name)
	}
	if errors.Is(err, unix.EXDEV) {
		return -1, ErrMounted
	}
	if err != nil {
		return -1, err
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if got.Dev != st.Dev || got.Ino != st.Ino {
		unix.Close(fd)
		return -1, fmt.Errorf("%w: it was replaced while being removed", ErrMounted)
	}
	return fd, nil
}

// openDirSameMount is openDirNoXdev without openat2: the directory's
// mount ID must be its parent's.
func openDirSameMount(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var parent, child unix.Statx_t
	if err := unix.Statx(dirfd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &parent); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &child); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if parent.Mask&child.Mask&unix.STATX_MNT_ID == 0 || parent.Mnt_id != child.Mnt_id {
		unix.Close(fd)
		return -1, unix.EXDEV
	}
	return fd, nil
}

// removeContents removes every entry of the open directory fd.
func removeContents(fd int, path string, depth int, dev *uint64) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		return &os.PathError{Op: "dup", Path: path, Err: err}
	}
	dir := os.NewFile(uintptr(dup), path)
	defer dir.Close()
	for pass := 0; pass < removePasses; pass++ {
		if _, err := dir.Seek(0, io.SeekStart); err != nil {
			return &os.PathError{Op: "seek", Path: path, Err: err}
		}
		seen := 0
		for {
			names, err := dir.Readdirnames(1024)
			for _, n := range names {
				if err := removeEntry(fd, n, filepath.Join(path, n), depth+1, dev); err != nil {
					return err
				}
			}
			seen += len(names)
			if err == io.EOF || len(names) == 0 {
				break
			}
			if err != nil {
				return &os.PathError{Op: "read directory", Path: path, Err: err}
			}
		}
		if seen == 0 {
			return nil
		}
	}
	return fmt.Errorf("remove %s: it keeps filling up", path)
}

// makeSearchable gives the directory name in dirfd mode 0700 (a caller
// that is not root cannot enter a directory of mode 0000 otherwise),
// through an O_PATH descriptor so that a symbolic link put in its place is
// not followed.
func makeSearchable(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), 0o700)
}

// unlinkat is unix.Unlinkat that, refused for want of permission (a
// read-only directory, when not root), makes the directory writable once
// and tries again.
func unlinkat(dirfd int, name string, flags int) error {
	err := unix.Unlinkat(dirfd, name, flags)
	if errors.Is(err, unix.EACCES) {
		if unix.Fchmod(dirfd, 0o700) == nil {
			err = unix.Unlinkat(dirfd, name, flags)
		}
	}
	return err
}
