//go:build !linux

package fsutil

import (
	"errors"
	"fmt"
	"os"
)

// The engine that needs mount-safe removal runs on Linux only; elsewhere
// RemoveAll is os.RemoveAll, so the packages that use it still build.

// Mount is one entry of the mount table (Linux only).
type Mount struct {
	ID, Parent                       int
	Dev, Root, Point, FSType, Source string
}

// Mounts is not supported outside Linux.
func Mounts() ([]Mount, error) { return nil, fmt.Errorf("read mount table: %w", errUnsupported) }

// MountsUnder is not supported outside Linux.
func MountsUnder(string, bool) ([]string, error) { return nil, errUnsupported }

// UnmountAll is not supported outside Linux.
func UnmountAll(string, bool) error { return errUnsupported }

// RemoveAll is os.RemoveAll outside Linux.
func RemoveAll(path string) error { return os.RemoveAll(path) }

var errUnsupported = fmt.Errorf("fsutil: mount table: %w", errors.ErrUnsupported)
