//go:build !linux

package rootfs

import (
	"context"
	"errors"
	"io"
)

// Changes is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func Changes(ctx context.Context, lower, merged string, opts *ChangesOptions) ([]Change, error) {
	return nil, &Error{Op: "changes", Err: errors.ErrUnsupported}
}

// WriteDiff is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func WriteDiff(ctx context.Context, w io.Writer, root string, changes []Change, opts *WriteOptions) error {
	return &Error{Op: "write", Err: errors.ErrUnsupported}
}

// Apply is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func Apply(ctx context.Context, root string, diff io.Reader, deleted []string, opts *ApplyOptions) error {
	return &Error{Op: "apply", Err: errors.ErrUnsupported}
}
