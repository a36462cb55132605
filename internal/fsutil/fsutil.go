// Package fsutil holds the small file-system helpers of ckpt's engine:
// atomic, durable file replacement, advisory per-file locks (Unix only:
// the rest builds anywhere, for ckptinspect), and removal
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
