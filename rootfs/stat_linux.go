package rootfs

import (
	"errors"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// lstatMount is lstat that also reports whether name is a mount point.
// The root itself is not a mount point below the root.
func (r *dirRoot) lstatMount(name string) (unix.Stat_t, bool, error) {
	if name == "." {
		st, err := r.lstat(name)
		return st, false, err
	}
	var st unix.Stat_t
	pfd, base, err := r.parent(name, false)
	if err != nil {
		return st, false, err
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, false, &os.PathError{Op: "fstatat", Path: name, Err: err}
	}
	m, err := r.isMount(pfd, base)
	return st, m, err
}

// lstat returns the status of name beneath r without following a symbolic
// link anywhere.
func (r *dirRoot) lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if name == "." {
		if err := unix.Fstat(r.fd, &st); err != nil {
			return st, &os.PathError{Op: "fstat", Path: name, Err: err}
		}
		return st, nil
	}
	pfd, base, err := r.parent(name, false)
	if err != nil {
		return st, err
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "fstatat", Path: name, Err: err}
	}
	return st, nil
}

// readlink returns the target of the symbolic link name beneath r.
func (r *dirRoot) readlink(name string) (string, error) {
	pfd, base, err := r.parent(name, false)
	if err != nil {
		return "", err
	}
	defer unix.Close(pfd)
	buf := make([]byte, MaxLinkTargetLength+1)
	n, err := unix.Readlinkat(pfd, base, buf)
	if err != nil {
		return "", &os.PathError{Op: "readlinkat", Path: name, Err: err}
	}
	if n > MaxLinkTargetLength {
		return "", errorf(ErrTooLarge, "%s: symbolic link target over %d bytes", name, MaxLinkTargetLength)
	}
	return string(buf[:n]), nil
}

// readdir returns the sorted names in the directory name beneath r.
func (r *dirRoot) readdir(name string) ([]string, error) {
	fd, err := r.open(name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// openChecked opens the regular file or directory name beneath r and checks
// that it is the object st describes.
func (r *dirRoot) openChecked(name string, st *unix.Stat_t) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		flags |= unix.O_DIRECTORY
	}
	fd, err := r.open(name, flags)
	if err != nil {
		if errors.Is(err, ErrInsecurePath) || errors.Is(err, unix.ENOENT) {
			return nil, errorf(ErrChanged, "%s: %v", name, err)
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		f.Close()
		return nil, errorf(ErrChanged, "%s was replaced", name)
	}
	*st = now
	return f, nil
}

// xattrs returns the extended attributes keepXattr selects on the open
// file fd.
func xattrs(fd int, name string) (map[string]string, error) {
	size, err := unix.Flistxattr(fd, nil)
	if err == unix.ENOTSUP || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "flistxattr", Path: name, Err: err}
	}
	buf := make([]byte, size+256)
	size, err = unix.Flistxattr(fd, buf)
	if err != nil {
		return nil, &os.PathError{Op: "flistxattr", Path: name, Err: err}
	}
	var out map[string]string
	val := make([]byte, MaxXattrSize)
	for _, k := range strings.Split(string(buf[:size]), "\x00") {
		if k == "" || !keepXattr(k) {
			continue
		}
		n, err := unix.Fgetxattr(fd, k, val)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "fgetxattr " + k, Path: name, Err: err}
		}
		if out == nil {
			out = make(map[string]string)
		}
		if len(out) >= MaxXattrs {
			return nil, errorf(ErrTooLarge, "%s: more than %d extended attributes", name, MaxXattrs)
		}
		out[k] = string(val[:n])
	}
	return out, nil
}

// xattrsOf opens name (a regular file or directory) and returns its kept
// extended attributes; other types have none that are kept.
func (r *dirRoot) xattrsOf(name string, st *unix.Stat_t) (map[string]string, error) {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
	default:
		return nil, nil
	}
	f, err := r.openChecked(name, st)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return xattrs(int(f.Fd()), name)
}

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT)
}
