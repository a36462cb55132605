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

// layerFile returns a temporary file for an image's layer, a path that
// opens it, and what removes it (there is no /proc/self/fd here).
func layerFile(dir string) (*os.File, string, func(), error) {
	f, err := os.CreateTemp(dir, "ckptinspect-layer-")
	if err != nil {
		return nil, "", nil, err
	}
	name := f.Name()
	return f, name, func() { _ = os.Remove(name) }, nil
}
