//go:build !linux

package main

import (
	"errors"
	"os"
)

// memFile: elsewhere there is no anonymous file to open by path, and a
// named one would put the plaintext on disk.
func memFile() (*os.File, string, error) {
	return nil, "", errors.New("opening a sealed archive needs Linux (an anonymous memory file)")
}
