//go:build !linux

package fileio

import "errors"

// HugeBuffer returns n zeroed bytes and the function that frees them
// (see hugebuf_linux.go): the heap's, here.
func HugeBuffer(n int) ([]byte, func()) { return make([]byte, n), func() {} }

// HugeBuffers fails off Linux: there is no O_DIRECT to align for.
func HugeBuffers(k, size int) ([][]byte, func(), error) {
	return nil, nil, errors.ErrUnsupported
}
