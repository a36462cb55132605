package criuimg

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// File limits: what CRIU recreates from the images (ghost files of
// deleted files) is bounded, and every path it opens is one it can open
// only inside the container.
const (
	// MaxPathLength is the longest path, in bytes, of a file or mount
	// (Linux PATH_MAX).
	MaxPathLength = 4096
	// MaxGhostFileSize is the largest ghost file (a deleted file CRIU
	// recreates, ghost-file-<id>.img) in bytes: its image and its declared
	// size. CRIU's own default limit (--ghost-limit) is 1 MiB.
	MaxGhostFileSize = 64 << 20
	// GhostHeadSize is how much of a ghost file image [CheckImages] reads:
	// its header and first entry, which CRIU keeps small.
	GhostHeadSize = 4096
)

// File type bits of a mode (S_IFMT).
const (
	modeType  = 0o170000
	modeReg   = 0o100000
	modeDir   = 0o040000
	modeLink  = 0o120000
	modeFifo  = 0o010000
	modeChar  = 0o020000
	modeBlock = 0o060000
)

// harmlessDevice reports whether rdev (old encoding, major<<8|minor, as
// CRIU stores a ghost file's device) is a character device every
// container has: null, zero, full, random, urandom, tty, ptmx or a pty.
func harmlessDevice(rdev uint32) bool {
	if rdev > 0xffff {
		return false
	}
	major, minor := rdev>>8, rdev&0xff
	switch major {
	case 1:
		return minor == 3 || minor == 5 || minor == 7 || minor == 8 || minor == 9
	case 5:
		return minor == 0 || minor == 2
	}
	return major >= 136 && major <= 143
}

// CheckFilePath checks a path CRIU opens or creates from an image (a
// reg_file_entry name, a mount's mountpoint or root): absolute, clean (no
// "." or ".." element, no repeated or trailing slash), without NUL and at
// most [MaxPathLength] bytes. CRIU strips the leading slash and opens the
// rest relative to the root of the restored mount namespace, so a ".."
// would lead out of the container; and it reads the path as a C string,
// so a NUL would make it open another file than the one checked. Errors
// wrap [ErrImage].
func CheckFilePath(p string) error {
	switch {
	case len(p) > MaxPathLength:
		return fmt.Errorf("check path of %d bytes: longer than %d: %w", len(p), MaxPathLength, ErrImage)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("check path %q: NUL byte: %w", p, ErrImage)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("check path %q: not absolute: %w", p, ErrImage)
	case path.Clean(p) != p:
		return fmt.Errorf("check path %q: not clean (a . or .. element, or extra slashes): %w", p, ErrImage)
	}
	return nil
}

// checkRemaps checks remap-fpath.img and the ghost files it names: each
// remap is of a regular file of files.img; a linked remap goes through
// another regular file (whose path fileSet checked); a ghost file exists,
// is at most [MaxGhostFileSize] and is a regular file, directory, symbolic
// link, FIFO or one of the character devices every container has (CRIU
// makes a device node of a device, and a container must not get another
// from an archive).
func (c *checker) checkRemaps(names []string) {
	const name = "remap-fpath.img"
	for _, n := range names {
		if m, kind := ExpectedMagic(n); kind == KindProto && m == "GHOST_FILE" {
			c.checkGhost(n)
		}
	}
	data, ok := c.content(name, "")
	if !ok {
		return
	}
	remaps, err := ReadRemaps(data)
	if c.failed(name, err) {
		return
	}
	regs := c.regs(name + " names remapped files")
	for _, r := range remaps {
		if regs != nil && !regs[r.OrigID] {
			c.add(name, fmt.Errorf("check remap of file %d: not a regular file of files.img: %w", r.OrigID, ErrImage))
		}
		switch r.RemapType {
		case RemapLinked:
			if regs != nil && !regs[r.RemapID] {
				c.add(name, fmt.Errorf("check remap of file %d: link %d is not a regular file of files.img: %w", r.OrigID, r.RemapID, ErrImage))
			}
		case RemapGhost:
			g := "ghost-file-" + strconv.FormatUint(uint64(r.RemapID), 10) + ".img"
			if _, ok := c.files[g]; !ok {
				c.add(g, fmt.Errorf("find image: remap of file %d names it: %w", r.OrigID, ErrMissing))
			}
		case RemapProcfs:
		default:
			c.add(name, fmt.Errorf("check remap of file %d: remap type %d: %w", r.OrigID, r.RemapType, ErrImage))
		}
	}
}

// regs returns the ids of the regular files of files.img, or nil if it is
// missing (reported with why) or unreadable.
func (c *checker) regs(why string) map[uint32]bool {
	if c.fileSet(why) == nil {
		return nil
	}
	return c.regFiles
}

// checkGhost checks one ghost file image from its head.
func (c *checker) checkGhost(name string) {
	fi := c.files[name]
	if c.bad[name] {
		return
	}
	if fi.Size > MaxGhostFileSize {
		c.add(name, fmt.Errorf("check ghost file: image of %d bytes, more than %d: %w", fi.Size, MaxGhostFileSize, ErrTooLarge))
		return
	}
	if int64(len(fi.Data)) < min(fi.Size, GhostHeadSize) {
		c.add(name, fmt.Errorf("read ghost file: %d of its first %d bytes provided: %w", len(fi.Data), min(fi.Size, GhostHeadSize), ErrMissing))
		return
	}
	g, err := ReadGhostFile(name, fi.Data[:min(int64(len(fi.Data)), GhostHeadSize)])
	if c.failed(name, err) {
		return
	}
	if g.Size > MaxGhostFileSize {
		c.add(name, fmt.Errorf("check ghost file: size %d, more than %d: %w", g.Size, MaxGhostFileSize, ErrTooLarge))
	}
	switch g.Mode & modeType {
	case modeReg, modeDir, modeLink, modeFifo:
	case modeChar:
		if !harmlessDevice(g.Rdev) {
			c.add(name, fmt.Errorf("check ghost file: character device %d:%d, not one of a container's own: %w", g.Rdev>>8, g.Rdev&0xff, ErrImage))
		}
	case modeBlock:
		c.add(name, fmt.Errorf("check ghost file: block device %d:%d: %w", g.Rdev>>8, g.Rdev&0xff, ErrImage))
	default:
		c.add(name, fmt.Errorf("check ghost file: file type of mode %#o: %w", g.Mode, ErrImage))
	}
}
