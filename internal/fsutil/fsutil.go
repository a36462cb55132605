// Package fsutil holds the small file-system helpers of ckpt's engine:
// atomic, durable file replacement, advisory per-file locks, and removal
// of trees that CRIU or runc wrote into.
//
// Invariants:
//   - [WriteFileAtomic] leaves either the old or the new content, never a
//     mix, also after a crash.
//   - [RemoveAll] never removes anything outside the file system the tree
//     starts on: it detaches the mounts at or below the tree first, then
//     removes without following symbolic links and without entering a
//     mount point; a mount it cannot detach, or one that appears meanwhile,
//     stops it with [ErrMounted]. (CRIU that dies mid-restore leaves its
//     cgroup yard, a tmpfs holding every host cgroup hierarchy, mounted in
//     its work directory: os.RemoveAll would walk into the host's cgroups.)
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	// ErrLocked reports that a lock is held by someone else.
	ErrLocked = errors.New("fsutil: lock is held")
	// ErrMounted reports a mount point that a removal met or could not
	// unmount: the removal stopped there rather than cross it.
	ErrMounted = errors.New("fsutil: a mount point is in the way")
)

// WriteFileAtomic replaces path with data durably: it writes a temporary
// file in the same directory, fsyncs it, renames it over path and fsyncs
// the directory. A reader sees either the old or the new content, never a
// mix, and after a crash the new content is either fully there or absent.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Lock is an exclusive flock(2) on a file. The lock file records the
// holder's pid and purpose so that a refused caller can say who holds it.
// The kernel drops the lock when the holder exits, so a crashed holder
// never leaves a stale lock behind.
type Lock struct {
	f      *os.File
	shared bool // a SharedLock, which records no holder
}

// TryLock takes the exclusive lock on path without waiting. If another
// process holds it, the error wraps [ErrLocked] and names the holder's pid
// and purpose as recorded in the file.
func TryLock(path, purpose string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w by %s", ErrLocked, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+purpose+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

func readHolder(f *os.File) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	s := strings.TrimSpace(string(b[:n]))
	pid, purpose, ok := strings.Cut(s, " ")
	if !ok || pid == "" {
		return "another process"
	}
	return fmt.Sprintf("pid %s (%s)", pid, purpose)
}

// Unlock releases the lock. It is safe to call on a nil Lock and more than once.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	if !l.shared {
		_ = l.f.Truncate(0)
	}
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// SharedLock takes a shared lock on path, waiting while someone holds it
// exclusively. Many may hold it shared at once; [TryLock] fails while any
// does.
func SharedLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f, shared: true}, nil
}

// WaitLock takes the exclusive lock on path, waiting for other holders.
// It is for short critical sections (such as reserving a name); use
// [TryLock] for long operations that should refuse instead of queueing.
func WaitLock(path, purpose string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+purpose+"\n"), 0)
	}
	return &Lock{f: f}, nil
}
