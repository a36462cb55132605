package fsutil

import "os"

// File returns the open lock file, for a child process to inherit (for
// example through exec.Cmd.ExtraFiles) so that the lock stays held while
// the child runs, even if this process dies: a flock belongs to the open
// file, and is released when its last descriptor is closed, or at once by
// [Lock.Unlock]. It returns nil for a nil or unlocked Lock.
func (l *Lock) File() *os.File {
	if l == nil {
		return nil
	}
	return l.f
}
