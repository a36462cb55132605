package rootfs

import (
	"errors"
	"fmt"
)

var (
	// ErrInsecurePath reports a diff entry, hardlink target or deleted path
	// that is not local and clean, that names the root itself where that is
	// not allowed, that uses an overlay whiteout name (".wh." prefix), or
	// whose resolution inside the root would have to follow a symbolic
	// link, cross a non-directory or enter a mount point.
	ErrInsecurePath = errors.New("rootfs: insecure path")
	// ErrTooLarge reports a diff or deleted list over one of the limits in
	// limits.go (or the lower ones in ApplyOptions).
	ErrTooLarge = errors.New("rootfs: too large")
	// ErrSpecialFile reports a device node or FIFO in a diff that the
	// caller did not allow (ApplyOptions.Devices, ApplyOptions.FIFOs).
	ErrSpecialFile = errors.New("rootfs: special file not allowed")
	// ErrFormat reports a diff that is not a valid tar stream, has an entry
	// of an unsupported type, a truncated entry, a duplicate name, or a
	// deleted list that is not a JSON array of strings.
	ErrFormat = errors.New("rootfs: invalid diff")
	// ErrChanged reports a file that changed between the walk that listed
	// it and the read that wrote it into a diff. Freeze or stop the
	// container while capturing to get a consistent diff.
	ErrChanged = errors.New("rootfs: file changed while reading")
)

// Error locates a problem on a path. It wraps one of the package's
// sentinels or an operating-system error, so errors.Is(err, ErrInsecurePath)
// and errors.Is(err, fs.ErrNotExist) work on it.
type Error struct {
	// Op is the operation: "changes", "write", "apply", "delete".
	Op string
	// Path is the slash-separated path relative to the root, or empty.
	Path string
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errorf builds an error wrapping sentinel with a formatted detail.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// pathErr wraps err with op and path unless err already is an *Error.
func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: op, Path: name, Err: err}
}
