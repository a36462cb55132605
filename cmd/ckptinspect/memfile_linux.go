package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memFile returns an anonymous memory file (memfd) and a path that opens
// it, for an archive's plaintext that must never have a name on disk.
func memFile() (*os.File, string, error) {
	fd, err := unix.MemfdCreate("ckpt-unsealed", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, "", fmt.Errorf("memfd: %w", err)
	}
	return os.NewFile(uintptr(fd), "ckpt-unsealed"), fmt.Sprintf("/proc/self/fd/%d", fd), nil
}

// layerFile returns a temporary file for an image's layer, already
// unlinked (nothing is left behind, even if ckptinspect is killed), a
// path that opens it, and what removes it.
func layerFile(dir string) (*os.File, string, func(), error) {
	f, err := os.CreateTemp(dir, "ckptinspect-layer-")
	if err != nil {
		return nil, "", nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return f, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), func() {}, nil
}
