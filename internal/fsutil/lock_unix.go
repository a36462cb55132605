//go:build unix

package fsutil

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

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

// File returns the open lock file, for a child process to inherit (for
// example through exec.Cmd.ExtraFiles) so that the lock stays held while
// the child runs, even if this process dies: a flock belongs to the open
// file, and is released when its last descriptor is closed, or at once by
// [Lock.Unlock]. It returns nil for a nil or unlocked Lock.
func (l *Lock) File() *os.File {
	if l == nil {
		return nil
	}
	return l.f
}
