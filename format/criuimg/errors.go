package criuimg

import (
	"errors"
	"fmt"
)

var (
	// ErrImage reports a structurally invalid image: a bad entry framing, an
	// extra payload that does not fit, or an image set whose images disagree
	// with each other (a missing required image, pagemap and pages files of
	// different sizes, overlapping pagemap entries).
	ErrImage = errors.New("criuimg: invalid image")
	// ErrMagic reports an image whose magic is unknown or is not the one its
	// file name calls for.
	ErrMagic = errors.New("criuimg: wrong magic")
	// ErrTruncated reports an image that ends inside its header, an entry or
	// an entry's extra payload.
	ErrTruncated = errors.New("criuimg: truncated image")
	// ErrTooLarge reports an entry, payload or entry count over one of the
	// limits ([MaxEntrySize], [MaxEntries], [MaxImageSize] or the lower ones in
	// [Limits]).
	ErrTooLarge = errors.New("criuimg: too large")
	// ErrProto reports an entry that is not a valid protobuf message of its
	// type: a bad varint, a field running past the end, an unsupported wire
	// type, or a missing required field.
	ErrProto = errors.New("criuimg: malformed protobuf")
	// ErrMissing reports an image the image set needs but does not contain,
	// or whose contents the caller did not provide.
	ErrMissing = errors.New("criuimg: missing image")
	// ErrParent reports pagemap entries whose pages live in a parent image
	// set (PE_PARENT) although the image set has no parent.
	ErrParent = errors.New("criuimg: pages in missing parent")
)

// Error locates a problem in one image file. It wraps one of the package's
// sentinel errors, so errors.Is(err, ErrTruncated) works on it.
type Error struct {
	// File is the image's file name inside the image directory, such as
	// "core-1.img"; it is empty for a problem of the whole image set (an
	// invalid [CheckOptions] value, too many problems).
	File string
	// Offset is the byte offset in File where the problem was found, or -1
	// when the problem concerns the file as a whole.
	Offset int64
	// Err is the underlying error; it wraps a sentinel of this package.
	Err error
}

// Error returns "<file>: <err>" or "<file> at byte <offset>: <err>", or
// just "<err>" for a problem of the whole image set (empty File).
func (e *Error) Error() string {
	if e.File == "" {
		return e.Err.Error()
	}
	if e.Offset < 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s at byte %#x: %v", e.File, e.Offset, e.Err)
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// fileError wraps err into an *Error for file at off, unless it already is
// one.
func fileError(file string, off int64, err error) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return err
	}
	return &Error{File: file, Offset: off, Err: err}
}
