package volumes

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// errLocked reports a staging directory another operation holds.
var errLocked = errors.New("volumes: staging directory in use")

// renameNoReplace renames oldpath to newpath, failing with an error that
// matches fs.ErrExist if newpath exists (renameat2 RENAME_NOREPLACE): an
// existing volume, even an empty directory, is never replaced.
func renameNoReplace(oldpath, newpath string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE); err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// renameOverEmptyDir renames the directory oldpath onto newpath, an empty
// directory, which rename(2) replaces (os.Rename refuses to).
func renameOverEmptyDir(oldpath, newpath string) error {
	if err := unix.Rename(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// syncFS flushes the file system holding dir (syncfs(2)), so what Apply
// wrote into a staged volume is durable before the volume appears.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// lockDir opens dir without following a symbolic link and takes an
// exclusive flock on it, waiting for a holder to let go. Closing the
// returned file releases the lock.
func lockDir(dir string) (io.Closer, error) {
	return flockDir(dir, unix.LOCK_EX)
}

// tryLockDir is lockDir that fails with errLocked instead of waiting.
func tryLockDir(dir string) (io.Closer, error) {
	return flockDir(dir, unix.LOCK_EX|unix.LOCK_NB)
}

func flockDir(dir string, how int) (io.Closer, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	for {
		err = unix.Flock(fd, how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return f, nil
}
