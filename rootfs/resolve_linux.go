package rootfs

import (
	"errors"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// useOpenat2 selects openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) for path
// resolution. When false, or when the kernel or a seccomp filter refuses
// openat2, paths are resolved one component at a time with
// openat(O_NOFOLLOW), which gives the same guarantee. Tests clear it to
// cover the fallback.
var useOpenat2 = true

// dirRoot is a directory file descriptor under which paths are resolved
// without ever following a symbolic link, leaving it, or entering a mount
// point below it.
type dirRoot struct {
	fd  int
	dev uint64 // st_dev of the root, for kernels without STATX_ATTR_MOUNT_ROOT
}

func openDirRoot(dir string) (*dirRoot, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	return &dirRoot{fd: fd, dev: uint64(st.Dev)}, nil
}

// isMount reports whether base in dfd (dfd itself if base is empty) is the
// root of a mount: a volume, a bind-mounted file or directory, /proc. It
// uses STATX_ATTR_MOUNT_ROOT (Linux 5.8); on older kernels it can only
// tell a directory on another device.
func (r *dirRoot) isMount(dfd int, base string) (bool, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if base == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var stx unix.Statx_t
	if err := unix.Statx(dfd, base, flags, unix.STATX_TYPE, &stx); err != nil {
		return false, &os.PathError{Op: "statx", Path: base, Err: err}
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	return stx.Mode&unix.S_IFMT == unix.S_IFDIR && unix.Mkdev(stx.Dev_major, stx.Dev_minor) != r.dev, nil
}

func (r *dirRoot) close() error { return unix.Close(r.fd) }

// resolveErr turns the errors of a no-symlink resolution into
// ErrInsecurePath where they mean a symlink, an escape or a non-directory
// on the way.
func resolveErr(name string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return errorf(ErrInsecurePath, "%s: resolution would follow a symbolic link", name)
	case errors.Is(err, unix.EXDEV):
		return errorf(ErrInsecurePath, "%s: resolution would leave the root or cross a mount point", name)
	case errors.Is(err, unix.ENOTDIR):
		return errorf(ErrInsecurePath, "%s: a path component is a symbolic link or not a directory", name)
	}
	return &os.PathError{Op: "openat", Path: name, Err: err}
}

// open opens name, a checked relative path (or "."), beneath r with flags
// plus O_NOFOLLOW|O_CLOEXEC. No symbolic link is followed and no mount
// point entered, in the parents or the last component.
func (r *dirRoot) open(name string, flags int) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if name == "." {
		fd, err := unix.Openat(r.fd, ".", flags, 0)
		if err != nil {
			return -1, resolveErr(name, err)
		}
		return fd, nil
	}
	if useOpenat2 {
		how := &unix.OpenHow{
			Flags:   uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		}
		for range 8 {
			fd, err := unix.Openat2(r.fd, name, how)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if err == unix.ENOSYS || err == unix.EPERM {
				// No openat2, or a seccomp filter refusing it
				// (container runtimes answer unknown syscalls with
				// EPERM): the walk below gives the same guarantee
				// and reports any real permission error.
				break
			}
			if err != nil {
				return -1, resolveErr(name, err)
			}
			return fd, nil
		}
	}
	return r.walk(name, flags, false)
}

// walk resolves name one component at a time, refusing mount points as
// RESOLVE_NO_XDEV does. With create, name is a directory, and it and its
// missing parents are made with mode 0755.
func (r *dirRoot) walk(name string, flags int, create bool) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	parts := strings.Split(name, "/")
	dfd := r.fd
	closeDir := func() {
		if dfd != r.fd {
			unix.Close(dfd)
		}
	}
	defer closeDir()
	for i, p := range parts {
		f := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags
		}
		fd, err := openatRetry(dfd, p, f)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(dfd, p, 0o755); err == nil || err == unix.EEXIST {
				fd, err = openatRetry(dfd, p, f)
			}
		}
		if err != nil {
			return -1, resolveErr(name, err)
		}
		if m, err := r.isMount(fd, ""); m || err != nil {
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			return -1, resolveErr(name, unix.EXDEV)
		}
		if i == len(parts)-1 {
			return fd, nil
		}
		closeDir()
		dfd = fd
	}
	return -1, errorf(ErrInsecurePath, "empty path")
}

func openatRetry(dfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// parent opens the directory holding name (a checked relative path, not
// ".") as an O_PATH descriptor and returns it with name's last component.
// With create, missing parent directories are made (mode 0755, owned by
// the caller), none of them through a symbolic link.
func (r *dirRoot) parent(name string, create bool) (int, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	flags := unix.O_PATH | unix.O_DIRECTORY
	fd, err := r.open(dir, flags)
	if err != nil && create && errors.Is(err, unix.ENOENT) {
		fd, err = r.walk(dir, flags, true)
	}
	if err != nil {
		return -1, "", err
	}
	return fd, base, nil
}

// removeAllAt removes base in the directory dfd and, if it is a
// directory, everything below it. It never follows a symbolic link: a link
// is removed, not its target. A missing base is not an error. rel is base's
// path relative to the root; visit, if not nil, is called with the relative
// path of each entry below it before it is removed, and its error stops the
// removal.
// A mount point is never entered: removing one is ErrInsecurePath.
func (r *dirRoot) removeAllAt(dfd int, base, rel string, visit func(string) error) error {
	return r.removeTree(dfd, base, rel, visit, 0)
}

func (r *dirRoot) removeTree(dfd int, base, rel string, visit func(string) error, depth int) error {
	err := unix.Unlinkat(dfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return &os.PathError{Op: "unlinkat", Path: rel, Err: err}
	}
	if depth > MaxPathLength/2 {
		return errorf(ErrTooLarge, "directory tree deeper than %d", MaxPathLength/2)
	}
	fd, err := openatRetry(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "openat", Path: rel, Err: err}
	}
	d := os.NewFile(uintptr(fd), base)
	defer d.Close()
	if m, err := r.isMount(fd, ""); m || err != nil {
		if err != nil {
			return err
		}
		return errorf(ErrInsecurePath, "%s is a mount point", rel)
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: rel, Err: err}
	}
	for _, n := range names {
		child := rel + "/" + n
		if visit != nil {
			if err := visit(child); err != nil {
				return err
			}
		}
		if err := r.removeTree(fd, n, child, visit, depth+1); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlinkat", Path: rel, Err: err}
	}
	return nil
}
