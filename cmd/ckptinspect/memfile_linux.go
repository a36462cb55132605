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
