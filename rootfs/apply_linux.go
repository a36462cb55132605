package rootfs

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Apply restores a container root: it removes the deleted paths from the
// directory root, then extracts diff (a rootfs-diff.tar stream; nil means
// none; plain or gzip-compressed, as containerd writes it) into it. root
// should be a new container's root holding the image,
// as the container will see it: a plain directory or a mounted overlay, not
// an overlay upper directory (deletions are removals, not whiteouts).
// Nothing else may write to it meanwhile.
//
// Every path is resolved beneath root without following any symbolic
// link, so no entry and no deleted path can reach outside root; see the
// package documentation for what is refused. Apply checks ctx before each
// deleted path and each entry. On error, root is left partly restored and
// should be discarded.
func Apply(ctx context.Context, root string, diff io.Reader, deleted []string, opts *ApplyOptions) (err error) {
	if opts == nil {
		opts = &ApplyOptions{}
	}
	maxEntries, maxEntry, maxTotal := opts.limits()
	if limit := min(maxEntries, MaxDeletedFiles); len(deleted) > limit {
		return &Error{Op: "delete", Err: errorf(ErrTooLarge, "%d deleted paths, limit %d", len(deleted), limit)}
	}
	rels := make([]string, 0, len(deleted))
	for _, p := range deleted {
		rel, err := cleanDeleted(p)
		if err != nil {
			return &Error{Op: "delete", Path: p, Err: err}
		}
		rels = append(rels, rel)
	}
	r, err := openDirRoot(root)
	if err != nil {
		return &Error{Op: "apply", Err: err}
	}
	defer r.close()
	if err := notHostRoot(r); err != nil {
		return &Error{Op: "apply", Path: root, Err: err}
	}
	a := &applier{
		r:          r,
		opts:       opts,
		maxEntries: maxEntries,
		maxEntry:   maxEntry,
		maxTotal:   maxTotal,
		seen:       make(map[string]struct{}),
		regular:    make(map[string]string),
		setid:      make(map[string]*setidFile),
		touched:    make(map[string][2]unix.Timespec),
	}
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := a.remove(rel); err != nil {
			return pathErr("delete", rel, err)
		}
	}
	if diff == nil {
		return a.finish(ctx)
	}
	diff, err = maybeGunzip(diff)
	if err != nil {
		return &Error{Op: "apply", Err: err}
	}
	tr := tar.NewReader(diff)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &Error{Op: "apply", Err: fmt.Errorf("%w: read tar: %w", ErrFormat, err)}
		}
		a.entries++
		if a.entries > maxEntries {
			return &Error{Op: "apply", Path: hdr.Name, Err: errorf(ErrTooLarge, "more than %d entries", maxEntries)}
		}
		if err := a.entry(tr, hdr); err != nil {
			return pathErr("apply", hdr.Name, err)
		}
	}
	return a.finish(ctx)
}

// maybeGunzip returns r decompressed if it starts with the gzip magic:
// containerd writes rootfs-diff.tar gzip-compressed despite its name. The
// decompressed size needs no cap of its own: Apply reads only as far as the
// tar stream's limits allow.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil // an empty or short stream fails in the tar reader
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: read gzip header: %w", ErrFormat, err)
	}
	zr.Multistream(false)
	return zr, nil
}

// remove removes rel and everything below it. A missing path is not an
// error; a parent that is a symbolic link or not a directory is
// ErrInsecurePath.
func (a *applier) remove(rel string) error {
	pfd, base, err := a.r.parent(rel, false)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := a.touch(pfd, path.Dir(rel)); err != nil {
		return err
	}
	return a.r.removeAllAt(pfd, base, rel, nil)
}

// touch records the times of the directory dir (open as pfd) before Apply
// first adds or removes an entry in it, so finish can put them back on
// directories the diff has no entry for.
func (a *applier) touch(pfd int, dir string) error {
	if _, ok := a.touched[dir]; ok {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	a.touched[dir] = [2]unix.Timespec{st.Atim, st.Mtim}
	return nil
}

type meta struct {
	mode     uint32
	uid, gid int
	atime    time.Time
	mtime    time.Time
	xattrs   map[string][]byte
}

type dirMeta struct {
	name string
	meta
}

// setidFile is a regular file whose setuid or setgid bits were held back
// until Apply knows the final modes of the directories holding it.
type setidFile struct {
	mode  uint32
	names []string
}

type applier struct {
	r                  *dirRoot
	opts               *ApplyOptions
	maxEntries         int
	maxEntry, maxTotal int64
	entries            int
	total              int64
	nameBytes          int64
	seen               map[string]struct{}         // every entry name, to refuse duplicates
	regular            map[string]string           // regular file entry -> first name of its inode
	setid              map[string]*setidFile       // first name -> held-back mode
	dirs               []dirMeta                   // directory metadata, applied at the end
	touched            map[string][2]unix.Timespec // directory -> times before Apply changed it
}

// entryName returns the checked name of a tar entry. Directories may end in
// one slash; "." and "./" name the root.
func entryName(hdr *tar.Header) (string, error) {
	n := hdr.Name
	if hdr.Typeflag == tar.TypeDir && len(n) > 1 && strings.HasSuffix(n, "/") {
		n = n[:len(n)-1]
	}
	if err := checkName(n); err != nil {
		return "", err
	}
	if n == "." && hdr.Typeflag != tar.TypeDir {
		return "", errorf(ErrInsecurePath, "entry of type %q would replace the root", hdr.Typeflag)
	}
	return n, nil
}

func headerMeta(hdr *tar.Header) (meta, error) {
	m := meta{
		mode:  uint32(hdr.Mode) & 0o7777,
		uid:   hdr.Uid,
		gid:   hdr.Gid,
		atime: hdr.AccessTime,
		mtime: hdr.ModTime,
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-2 || int64(hdr.Gid) > 1<<32-2 {
		return m, errorf(ErrFormat, "owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	n := 0
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		n++
		if n > MaxXattrs {
			return m, errorf(ErrTooLarge, "more than %d extended attributes", MaxXattrs)
		}
		if len(name) > MaxNameLength || len(v) > MaxXattrSize {
			return m, errorf(ErrTooLarge, "extended attribute %.64q of %d bytes", name, len(v))
		}
		if !keepXattr(name) {
			continue
		}
		if m.xattrs == nil {
			m.xattrs = make(map[string][]byte)
		}
		m.xattrs[name] = []byte(v)
	}
	return m, nil
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := entryName(hdr)
	if err != nil {
		return err
	}
	if _, dup := a.seen[name]; dup {
		return errorf(ErrFormat, "duplicate entry %q", name)
	}
	a.nameBytes += int64(len(name))
	if a.nameBytes > MaxNamesSize {
		return errorf(ErrTooLarge, "entry names over %d bytes in total", MaxNamesSize)
	}
	a.seen[name] = struct{}{}
	m, err := headerMeta(hdr)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.dir(name, m)
	case tar.TypeReg, tar.TypeGNUSparse:
		return a.file(name, m, tr, hdr.Size)
	case tar.TypeSymlink:
		return a.symlink(name, m, hdr.Linkname)
	case tar.TypeLink:
		return a.hardlink(name, hdr.Linkname)
	case tar.TypeFifo:
		if !a.opts.FIFOs {
			return errorf(ErrSpecialFile, "FIFO")
		}
		return a.special(name, m, unix.S_IFIFO, 0)
	case tar.TypeChar, tar.TypeBlock:
		if !a.opts.Devices {
			return errorf(ErrSpecialFile, "device node")
		}
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor > 1<<32-1 {
			return errorf(ErrFormat, "device %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		typ := uint32(unix.S_IFBLK)
		if hdr.Typeflag == tar.TypeChar {
			if hdr.Devmajor == 0 && hdr.Devminor == 0 {
				return errorf(ErrInsecurePath, "character device 0/0 is an overlay whiteout")
			}
			typ = unix.S_IFCHR
		}
		return a.special(name, m, typ, unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	}
	return errorf(ErrFormat, "unsupported entry type %q", hdr.Typeflag)
}

// prepare makes room for name in the directory pfd: a directory stays when
// a directory is wanted, anything else there is removed (a directory with
// everything below it). It reports whether a directory was kept.
func (a *applier) prepare(pfd int, base, name string, wantDir bool) (bool, error) {
	if err := a.touch(pfd, path.Dir(name)); err != nil {
		return false, err
	}
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "fstatat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if wantDir {
			return true, nil
		}
		return false, a.r.removeAllAt(pfd, base, name, a.clash)
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return false, &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	return false, nil
}

// clash refuses to remove, while replacing a directory, an entry this diff
// already extracted: a diff must not hold both a file and a directory
// entry below it.
func (a *applier) clash(rel string) error {
	if _, ok := a.seen[rel]; ok {
		return errorf(ErrFormat, "entry %q is below an entry that is not a directory", rel)
	}
	return nil
}

func (a *applier) dir(name string, m meta) error {
	if name != "." {
		pfd, base, err := a.r.parent(name, true)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		kept, err := a.prepare(pfd, base, name, true)
		if err != nil {
			return err
		}
		if !kept {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return &os.PathError{Op: "mkdirat", Path: name, Err: err}
			}
		}
	}
	// Extended attributes go on now, so that only the small part of the
	// metadata waits in memory for finish.
	if len(m.xattrs) > 0 {
		fd, err := a.r.open(name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		err = setXattrs(fd, m.xattrs)
		unix.Close(fd)
		if err != nil {
			return err
		}
		m.xattrs = nil
	}
	a.dirs = append(a.dirs, dirMeta{name: name, meta: m})
	return nil
}

func (a *applier) file(name string, m meta, r io.Reader, size int64) (err error) {
	if size < 0 {
		return errorf(ErrFormat, "negative size %d", size)
	}
	if size > a.maxEntry {
		return errorf(ErrTooLarge, "file of %d bytes, limit %d", size, a.maxEntry)
	}
	if a.maxTotal-a.total < size {
		return errorf(ErrTooLarge, "files over %d bytes in total", a.maxTotal)
	}
	a.total += size
	pfd, base, err := a.r.parent(name, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if _, err := a.prepare(pfd, base, name, false); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "openat", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	n, err := io.Copy(f, io.LimitReader(formatReader{r}, size+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return errorf(ErrFormat, "truncated after %d of %d bytes", n, size)
		}
		return fmt.Errorf("write file: %w", err)
	}
	if n != size {
		return errorf(ErrFormat, "%d bytes of content, header says %d", n, size)
	}
	mode := m.mode
	if mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		// Held back until the directories' final modes are known.
		a.setid[name] = &setidFile{mode: mode, names: []string{name}}
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	if err := a.setMeta(fd, m, mode); err != nil {
		return err
	}
	a.regular[name] = name
	return setTimes(pfd, base, name, m)
}

// formatReader marks errors reading the diff (a corrupt gzip stream, a
// truncated tar) as ErrFormat, to tell them from errors writing the file.
type formatReader struct{ r io.Reader }

func (fr formatReader) Read(p []byte) (int, error) {
	n, err := fr.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: read diff: %w", ErrFormat, err)
	}
	return n, err
}

// setMeta sets owner, then mode (chown clears setuid bits), then extended
// attributes (chown clears security.capability) on an open file.
func (a *applier) setMeta(fd int, m meta, mode uint32) error {
	if !a.opts.NoChown {
		if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return setXattrs(fd, m.xattrs)
}

func setXattrs(fd int, xattrs map[string][]byte) error {
	for _, k := range slices.Sorted(maps.Keys(xattrs)) {
		if err := unix.Fsetxattr(fd, k, xattrs[k], 0); err != nil {
			return fmt.Errorf("set extended attribute %s: %w", k, err)
		}
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// setTimes sets the times of base in pfd, not following a symbolic link.
func setTimes(pfd int, base, name string, m meta) error {
	ts := []unix.Timespec{timespec(m.atime), timespec(m.mtime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: name, Err: err}
	}
	return nil
}

func (a *applier) symlink(name string, m meta, target string) error {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return errorf(ErrFormat, "symbolic link target %q", target)
	}
	if len(target) > MaxLinkTargetLength {
		return errorf(ErrTooLarge, "symbolic link target of %d bytes, limit %d", len(target), MaxLinkTargetLength)
	}
	pfd, base, err := a.r.parent(name, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if _, err := a.prepare(pfd, base, name, false); err != nil {
		return err
	}
	// The target is stored, never resolved: Apply resolves no symbolic
	// link, so an absolute or "../" target cannot lead anywhere.
	if err := unix.Symlinkat(target, pfd, base); err != nil {
		return &os.PathError{Op: "symlinkat", Path: name, Err: err}
	}
	if !a.opts.NoChown {
		if err := unix.Fchownat(pfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: name, Err: err}
		}
	}
	return setTimes(pfd, base, name, m)
}

func (a *applier) hardlink(name, target string) error {
	if err := checkName(target); err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	first, ok := a.regular[target]
	if !ok {
		return errorf(ErrInsecurePath, "hardlink target %q is not a regular file earlier in the diff", target)
	}
	ofd, obase, err := a.r.parent(target, false)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	defer unix.Close(ofd)
	var st unix.Stat_t
	if err := unix.Fstatat(ofd, obase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fstatat", Path: target, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errorf(ErrInsecurePath, "hardlink target %q is no longer a regular file", target)
	}
	pfd, base, err := a.r.parent(name, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if _, err := a.prepare(pfd, base, name, false); err != nil {
		return err
	}
	// Flags 0: link the file itself, never what a symbolic link names.
	if err := unix.Linkat(ofd, obase, pfd, base, 0); err != nil {
		return &os.PathError{Op: "linkat", Path: name, Err: err}
	}
	a.regular[name] = first
	if s := a.setid[first]; s != nil {
		s.names = append(s.names, name)
	}
	return nil
}

func (a *applier) special(name string, m meta, typ uint32, dev uint64) error {
	pfd, base, err := a.r.parent(name, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if _, err := a.prepare(pfd, base, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, base, typ|0o600, int(dev)); err != nil {
		return &os.PathError{Op: "mknodat", Path: name, Err: err}
	}
	if !a.opts.NoChown {
		if err := unix.Fchownat(pfd, base, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: name, Err: err}
		}
	}
	// Special files never keep setuid or setgid bits.
	if err := chmodAt(pfd, base, name, m.mode&^(unix.S_ISUID|unix.S_ISGID)); err != nil {
		return err
	}
	return setTimes(pfd, base, name, m)
}

// chmodAt changes the mode of base in pfd without following a symbolic
// link (fchmodat2, Linux 6.6). On older kernels it checks that base is not
// a link first; nothing else writes to the root during Apply, so the check
// holds.
func chmodAt(pfd int, base, name string, mode uint32) error {
	err := unix.Fchmodat(pfd, base, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return errorf(ErrInsecurePath, "%s became a symbolic link", name)
			}
			err = unix.Fchmodat(pfd, base, mode, 0)
		}
	}
	if err != nil {
		return &os.PathError{Op: "fchmodat", Path: name, Err: err}
	}
	return nil
}

// finish sets directory metadata (after all their entries are written, so
// modes and mtimes stick) and gives setuid and setgid bits back to the
// files allowed to keep them.
func (a *applier) finish(ctx context.Context) error {
	inDiff := make(map[string]bool, len(a.dirs))
	for _, d := range a.dirs {
		inDiff[d.name] = true
	}
	for _, dir := range slices.Sorted(maps.Keys(a.touched)) {
		if inDiff[dir] {
			continue
		}
		if err := a.restoreTimes(dir, a.touched[dir]); err != nil {
			return pathErr("apply", dir, err)
		}
	}
	for i := len(a.dirs) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := a.dirs[i]
		if err := a.dirMeta(d); err != nil {
			return pathErr("apply", d.name, err)
		}
	}
	ww := make(map[string]bool)
	firsts := make([]string, 0, len(a.setid))
	for k := range a.setid {
		firsts = append(firsts, k)
	}
	slices.Sort(firsts)
	for _, first := range firsts {
		s := a.setid[first]
		keep := true
		for _, n := range s.names {
			bad, err := a.underWorldWritable(n, ww)
			if err != nil {
				return pathErr("apply", n, err)
			}
			keep = keep && !bad
		}
		if !keep {
			continue
		}
		pfd, base, err := a.r.parent(first, false)
		if err != nil {
			return pathErr("apply", first, err)
		}
		err = chmodAt(pfd, base, first, s.mode)
		unix.Close(pfd)
		if err != nil {
			return pathErr("apply", first, err)
		}
	}
	return nil
}

// restoreTimes puts back the times a directory had before Apply added or
// removed entries in it. A directory that is gone since, or was replaced by
// something else, is skipped.
func (a *applier) restoreTimes(dir string, ts [2]unix.Timespec) error {
	fd, err := a.r.open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, ErrInsecurePath) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "utimensat", Path: dir, Err: err}
	}
	return nil
}

func (a *applier) dirMeta(d dirMeta) error {
	fd, err := a.r.open(d.name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := a.setMeta(fd, d.meta, d.mode); err != nil {
		return err
	}
	ts := []unix.Timespec{timespec(d.atime), timespec(d.mtime)}
	if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "utimensat", Path: d.name, Err: err}
	}
	return nil
}

// underWorldWritable reports whether any directory above name (up to and
// including the root) is writable by others.
func (a *applier) underWorldWritable(name string, cache map[string]bool) (bool, error) {
	for dir := path.Dir(name); ; dir = path.Dir(dir) {
		ww, ok := cache[dir]
		if !ok {
			fd, err := a.r.open(dir, unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return false, err
			}
			var st unix.Stat_t
			err = unix.Fstat(fd, &st)
			unix.Close(fd)
			if err != nil {
				return false, &os.PathError{Op: "fstat", Path: dir, Err: err}
			}
			ww = st.Mode&0o002 != 0
			cache[dir] = ww
		}
		if ww {
			return true, nil
		}
		if dir == "." {
			return false, nil
		}
	}
}

// notHostRoot refuses a root that is the file system root of this process:
// a mistaken "/" must not turn deleted.files into a host-wide rm -rf.
func notHostRoot(r *dirRoot) error {
	var st, host unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: ".", Err: err}
	}
	if err := unix.Stat("/", &host); err != nil {
		return &os.PathError{Op: "stat", Path: "/", Err: err}
	}
	if st.Dev == host.Dev && st.Ino == host.Ino {
		return errorf(ErrInsecurePath, "refusing to apply to the host's root directory")
	}
	return nil
}
