//go:build !linux

package format

// bigBuf returns n zeroed bytes and the function that frees them (see
// bigbuf_linux.go): the heap's, here.
func bigBuf(n int) ([]byte, func()) { return make([]byte, n), func() {} }
