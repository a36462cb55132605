//go:build !unix

package format

import (
	"fmt"
	"io"
	"os"
)

// openRegular opens name and checks that it is a regular file (a symlink
// swapped in between the check and the open is not detected here).
func openRegular(name string) (io.ReadCloser, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return os.Open(name)
}
