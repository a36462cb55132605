package criuimg

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// MaxTmpfsContent bounds the uncompressed content of one
// tmpfs-dev-<id>.tar.gz.img (the tar stream CRIU extracts into a restored
// tmpfs mount).
const MaxTmpfsContent = 1 << 30

// MaxTmpfsEntries bounds the number of tar entries in one tmpfs image.
const MaxTmpfsEntries = 1 << 16

// DeviceNumber is a character device's major and minor number.
type DeviceNumber struct{ Major, Minor int64 }

// ContainerDevices are the character devices an OCI runtime creates in a
// container's /dev (runc's defaults), the only device nodes a tmpfs image
// may hold.
var ContainerDevices = []DeviceNumber{
	{1, 3}, // null
	{1, 5}, // zero
	{1, 7}, // full
	{1, 8}, // random
	{1, 9}, // urandom
	{5, 0}, // tty
	{5, 1}, // console
	{5, 2}, // ptmx
}

// IsTmpfsImage reports whether name is the content of a tmpfs mount
// (tmpfs-dev-<id>.tar.gz.img), a gzip-compressed tar that CRIU restores by
// running tar on it as root.
func IsTmpfsImage(name string) bool {
	return strings.HasPrefix(name, "tmpfs-dev-") && strings.HasSuffix(name, ".tar.gz.img")
}

// CheckTmpfs reads the tmpfs image name from r and returns an error
// wrapping ErrImage if tar would make anything a container's tmpfs must
// not hold, or could be led outside it: names that are absolute or climb
// with "..", entries below or over a symbolic link of the same stream, hard links
// to anything but an earlier regular file, block devices and FIFOs,
// character devices other than devices, more than MaxTmpfsEntries entries
// or MaxTmpfsContent bytes. devices nil means ContainerDevices.
func CheckTmpfs(name string, r io.Reader, devices []DeviceNumber) error {
	if devices == nil {
		devices = ContainerDevices
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fileError(name, -1, fmt.Errorf("read gzip header: %w: %w", err, ErrImage))
	}
	defer zr.Close()
	c := tmpfsChecker{devices: devices, links: map[string]bool{}, files: map[string]bool{}}
	tr := tar.NewReader(&capReader{r: zr, n: MaxTmpfsContent})
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err == nil && n >= MaxTmpfsEntries {
			err = fmt.Errorf("more than %d entries: %w", MaxTmpfsEntries, ErrTooLarge)
		}
		if err == nil {
			err = c.check(h)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, tr)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
				err = fmt.Errorf("%w: %w", err, ErrImage)
			}
			return fileError(name, -1, fmt.Errorf("tar entry %d: %w", n, err))
		}
	}
}

// tmpfsChecker holds what CheckTmpfs has seen of one stream.
type tmpfsChecker struct {
	devices []DeviceNumber
	links   map[string]bool // symbolic links, by clean name
	files   map[string]bool // regular files, by clean name
}

func (c *tmpfsChecker) check(h *tar.Header) error {
	name := path.Clean(strings.TrimPrefix(h.Name, "./"))
	if h.Name == "./" || h.Name == "." {
		name = "."
	}
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("%q leaves the mount: %w", h.Name, ErrImage)
	}
	if c.links[name] {
		return fmt.Errorf("%q replaces a symbolic link of the same stream: %w", h.Name, ErrImage)
	}
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if c.links[d] {
			return fmt.Errorf("%q lies below the symbolic link %q: %w", h.Name, d, ErrImage)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
	case tar.TypeReg:
		c.files[name] = true
	case tar.TypeSymlink:
		c.links[name] = true
	case tar.TypeLink:
		target := path.Clean(strings.TrimPrefix(h.Linkname, "./"))
		if !c.files[target] {
			return fmt.Errorf("hard link %q to %q, not an earlier regular file: %w", h.Name, h.Linkname, ErrImage)
		}
	case tar.TypeChar:
		for _, d := range c.devices {
			if d.Major == h.Devmajor && d.Minor == h.Devminor {
				return nil
			}
		}
		return fmt.Errorf("character device %q (%d:%d) is not one a container gets: %w", h.Name, h.Devmajor, h.Devminor, ErrImage)
	default:
		return fmt.Errorf("%q of tar type %q: %w", h.Name, h.Typeflag, ErrImage)
	}
	return nil
}

// capReader reads at most n bytes of r and fails with ErrTooLarge on more.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var one [1]byte
		if k, _ := c.r.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("more than %d bytes: %w", MaxTmpfsContent, ErrTooLarge)
		}
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.n)]
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}
