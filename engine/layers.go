package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/rootfs"
	"github.com/ckpt/ckpt/volumes"
)

// layerMember is an archive member made from the container's layer or
// volumes.
type layerMember struct {
	name string
	src  format.Source
	sum  *format.Sum // of src's content, if known
}

// layerMembers returns the members for c's container layer changes
// (rootfs-diff.tar, deleted.files; not with o.IgnoreRootfs) and named
// volumes (volumes/<name>.tar; not with o.IgnoreVolumes), each made once
// now into a file in the first of dirs that has room for it (a tmpfs
// that fills up gives way to the next), summed on the way so the archive
// writer reads it once.
func (e *Engine) layerMembers(ctx context.Context, c *Container, o *ExportOptions, dirs ...string) ([]layerMember, error) {
	var ms []layerMember
	if !o.IgnoreRootfs {
		rms, unmount, err := e.rootfsMembers(ctx, c)
		if err != nil {
			return nil, err
		}
		// The image stays mounted until the changes are copied.
		defer unmount()
		ms = append(ms, rms...)
	}
	if !o.IgnoreVolumes {
		st := e.volumeStore()
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				ms = append(ms, layerMember{name: volumes.MemberName(m.Name), src: st.Source(ctx, m.Name)})
			}
		}
	}
	if err := copyMembers(ms, dirs); err != nil {
		return nil, err
	}
	return ms, nil
}

// rootfsMembers returns the members for c's container layer changes,
// read against its image, which stays mounted until unmount is called.
func (e *Engine) rootfsMembers(ctx context.Context, c *Container) (ms []layerMember, unmount func(), err error) {
	s, err := e.storeOpen()
	if err != nil {
		return nil, nil, err
	}
	lower, err := s.MountImage(c.ImageID, nil, "")
	if err != nil {
		return nil, nil, fmt.Errorf("mount image %s: %w", c.Image, err)
	}
	unmount = func() { _, _ = s.UnmountImage(c.ImageID, false) }
	opts := &rootfs.ChangesOptions{Skip: []string{"/proc", "/sys", "/dev"}}
	for _, m := range c.Mounts {
		opts.Skip = append(opts.Skip, m.Destination)
	}
	if s.GraphDriverName() == "overlay" {
		if sc, err := s.Container(c.ID); err == nil {
			upper := filepath.Join(e.storageRoot(), "overlay", sc.LayerID, "diff")
			if fi, err := os.Stat(upper); err == nil && fi.IsDir() {
				opts.Upper = upper
			}
		}
	}
	changes, err := rootfs.Changes(ctx, lower, c.Rootfs, opts)
	if err != nil {
		unmount()
		return nil, nil, fmt.Errorf("list container layer changes: %w", err)
	}
	wo := &rootfs.WriteOptions{FIFOs: true}
	root := c.Rootfs
	ms = append(ms, layerMember{name: format.RootfsDiffName, src: format.StreamSource(func(w io.Writer) error {
		return rootfs.WriteDiff(ctx, w, root, changes, wo)
	})})
	if del := rootfs.DeletedFiles(changes); len(del) > 0 {
		var b strings.Builder
		if err := rootfs.WriteDeleted(&b, changes); err != nil {
			unmount()
			return nil, nil, err
		}
		ms = append(ms, layerMember{name: format.DeletedFilesName, src: format.BytesSource([]byte(b.String()))})
	}
	return ms, unmount, nil
}

// copyMembers copies each member's content into a file in the first of
// dirs that has room for it, and makes the member that file, with its
// sum.
func copyMembers(ms []layerMember, dirs []string) error {
	for i, m := range ms {
		var err error
		for _, dir := range dirs {
			if err = os.MkdirAll(dir, 0o700); err != nil {
				break
			}
			file := filepath.Join(dir, strconv.Itoa(i))
			var sum format.Sum
			if sum, err = copySource(file, m.src); err == nil {
				ms[i].src, ms[i].sum = format.FileSource(file), &sum
				break
			}
			_ = os.Remove(file)
			if !errors.Is(err, syscall.ENOSPC) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", m.name, err)
		}
	}
	return nil
}

// copySource writes the content of src to a new file and returns its sum.
func copySource(file string, src format.Source) (_ format.Sum, err error) {
	rc, err := src.Open()
	if err != nil {
		return format.Sum{}, err
	}
	defer rc.Close()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return format.Sum{}, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	sm := format.NewSummer()
	_, err = io.CopyBuffer(io.MultiWriter(f, sm), struct{ io.Reader }{rc}, make([]byte, 1<<20))
	return sm.Sum(), err
}
