package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// WriteDiff writes rootfs-diff.tar to w: a tar stream (PAX format, ended
// with the tar trailer; w is not closed) of the Added and Modified paths of
// changes, read from the container root root. It writes directories,
// regular files, symbolic links, hardlinks (a regular file whose inode
// already appeared earlier in the stream becomes a link to that first
// name), and device nodes and FIFOs only when opts allows them; sockets
// are left out. Each entry records mode, uid, gid, mtime (nanoseconds) and
// the kept extended attributes as SCHILY.xattr.* records; user and group
// names, atime and ctime are not recorded. Entries are sorted by name, so
// the same tree gives the same bytes.
//
// WriteDiff refuses, with ErrInsecurePath or ErrTooLarge, any name Apply
// would refuse. A file that changes type or shrinks while being read fails
// with ErrChanged. It checks ctx before each entry and streams file
// contents without buffering them.
func WriteDiff(ctx context.Context, w io.Writer, root string, changes []Change, opts *WriteOptions) (err error) {
	if opts == nil {
		opts = &WriteOptions{}
	}
	var names []string
	for _, c := range changes {
		if c.Kind == Added || c.Kind == Modified {
			names = append(names, c.Path)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > MaxEntries {
		return &Error{Op: "write", Err: errorf(ErrTooLarge, "%d entries, limit %d", len(names), MaxEntries)}
	}
	var nameBytes int64
	for _, n := range names {
		if err := checkName(n); err != nil {
			return &Error{Op: "write", Path: n, Err: err}
		}
		if nameBytes += int64(len(n)); nameBytes > MaxNamesSize {
			return &Error{Op: "write", Err: errorf(ErrTooLarge, "entry names over %d bytes in total", MaxNamesSize)}
		}
	}
	r, err := openDirRoot(root)
	if err != nil {
		return &Error{Op: "write", Err: err}
	}
	defer r.close()
	dw := &diffWriter{tw: tar.NewWriter(w), r: r, opts: opts, links: make(map[fileID]string)}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := dw.entry(n); err != nil {
			return pathErr("write", n, err)
		}
	}
	return pathErr("write", "", dw.tw.Close())
}

type fileID struct {
	dev, ino uint64
}

type diffWriter struct {
	tw    *tar.Writer
	r     *dirRoot
	opts  *WriteOptions
	links map[fileID]string // first name written for an inode with several links
	total int64
}

func (d *diffWriter) entry(name string) error {
	st, mount, err := d.r.lstatMount(name)
	if err != nil {
		if isNotExist(err) || errors.Is(err, ErrInsecurePath) {
			return errorf(ErrChanged, "%v", err)
		}
		return err
	}
	if mount {
		return errorf(ErrInsecurePath, "%s is a mount point", name)
	}
	hdr := &tar.Header{Name: name, Format: tar.FormatPAX}
	var f *os.File // open for directories and regular files
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name = name + "/"
		file, err := d.r.openChecked(name, &st)
		if err != nil {
			return err
		}
		defer file.Close()
		f = file
	case unix.S_IFREG:
		id := fileID{dev: st.Dev, ino: st.Ino}
		if first, ok := d.links[id]; ok && st.Nlink > 1 {
			// The inode's metadata goes on the link too: Apply ignores
			// it, but containers/storage (podman) applies it to the
			// shared inode.
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			setHeaderMeta(hdr, &st)
			return d.tw.WriteHeader(hdr)
		}
		file, err := d.r.openChecked(name, &st)
		if err != nil {
			return err
		}
		defer file.Close()
		f = file
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		if hdr.Size > MaxEntrySize {
			return errorf(ErrTooLarge, "file of %d bytes, limit %d", hdr.Size, int64(MaxEntrySize))
		}
		if MaxTotalSize-d.total < hdr.Size {
			return errorf(ErrTooLarge, "files over %d bytes in total", int64(MaxTotalSize))
		}
		d.total += hdr.Size
		if st.Nlink > 1 {
			d.links[id] = name
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = d.r.readlink(name); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if !d.opts.Devices || st.Rdev == 0 && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			return nil
		}
		hdr.Typeflag = tar.TypeBlock
		if st.Mode&unix.S_IFMT == unix.S_IFCHR {
			hdr.Typeflag = tar.TypeChar
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		if !d.opts.FIFOs {
			return nil
		}
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets
	}
	setHeaderMeta(hdr, &st)
	return d.write(hdr, f, name)
}

// write writes hdr, with the extended attributes of f (a directory or
// regular file, or nil), and a regular file's contents.
func (d *diffWriter) write(hdr *tar.Header, f *os.File, name string) error {
	if f != nil {
		xs, err := xattrs(int(f.Fd()), name)
		if err != nil {
			return err
		}
		for k, v := range xs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = make(map[string]string)
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	n, err := io.Copy(d.tw, io.LimitReader(f, hdr.Size))
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return errorf(ErrChanged, "shrank from %d to %d bytes while being read", hdr.Size, n)
	}
	return nil
}

// setHeaderMeta records mode, owner and mtime (with nanoseconds, as a PAX
// record) from st.
func setHeaderMeta(hdr *tar.Header, st *unix.Stat_t) {
	hdr.Mode = int64(st.Mode & 0o7777)
	hdr.Uid = int(st.Uid)
	hdr.Gid = int(st.Gid)
	hdr.ModTime = time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec))
}
