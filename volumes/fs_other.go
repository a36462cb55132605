//go:build !linux

package volumes

import (
	"errors"
	"io"
)

// errLocked reports a staging directory another operation holds.
var errLocked = errors.New("volumes: staging directory in use")

// renameNoReplace needs renameat2(RENAME_NOREPLACE); elsewhere it returns
// errors.ErrUnsupported.
func renameNoReplace(oldpath, newpath string) error { return errors.ErrUnsupported }

// renameOverEmptyDir is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func renameOverEmptyDir(oldpath, newpath string) error { return errors.ErrUnsupported }

// syncFS needs syncfs(2); elsewhere it returns errors.ErrUnsupported.
func syncFS(dir string) error { return errors.ErrUnsupported }

// lockDir is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported, so Create, Import and Remove do too.
func lockDir(dir string) (io.Closer, error) { return nil, errors.ErrUnsupported }

// tryLockDir is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func tryLockDir(dir string) (io.Closer, error) { return nil, errors.ErrUnsupported }
