package rootfs

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"

	"golang.org/x/sys/unix"
)

// Changes lists how the container root merged differs from the image root
// lower: every added, modified and deleted path, sorted by path. lower may
// be empty for an image without files.
//
// Without opts.Upper, Changes walks both trees and compares type, mode,
// owner, size, mtime, link count, kept extended attributes (see the
// package documentation), link targets and device numbers; a regular file
// whose metadata all match is read and compared byte by byte unless it is
// the same inode, or opts.TrustCtime holds and the ctimes match. A
// directory whose only change is its mtime is Modified. With opts.Upper, it
// lists only what the overlay upper directory holds (see ChangesOptions).
// Mount points below merged (volumes, bind-mounted files, /proc) are
// skipped like opts.Skip, whether listed there or not. Sockets are listed
// but WriteDiff leaves them out.
//
// Paths are resolved without following symbolic links. Changes checks ctx
// between entries.
func Changes(ctx context.Context, lower, merged string, opts *ChangesOptions) (_ []Change, err error) {
	defer func() { err = pathErr("changes", "", err) }()
	if opts == nil {
		opts = &ChangesOptions{}
	}
	c := &comparer{ctx: ctx, opts: opts, skip: make(map[string]bool)}
	for _, s := range opts.Skip {
		rel, err := cleanSkip(s)
		if err != nil {
			return nil, err
		}
		c.skip[rel] = true
	}
	if c.merged, err = openDirRoot(merged); err != nil {
		return nil, err
	}
	defer c.merged.close()
	if lower != "" {
		if c.lower, err = openDirRoot(lower); err != nil {
			return nil, err
		}
		defer c.lower.close()
	}
	if opts.Upper != "" {
		if c.upper, err = openDirRoot(opts.Upper); err != nil {
			return nil, err
		}
		defer c.upper.close()
	}
	mst, err := c.merged.lstat(".")
	if err != nil {
		return nil, err
	}
	lst, lok, err := c.lowerStat(".")
	if err != nil {
		return nil, err
	}
	if !lok {
		c.add(".", Modified)
		err = c.addTree(".")
	} else if c.upper != nil {
		if err = c.compareMeta(".", &lst, &mst); err == nil {
			err = c.upperDir(".")
		}
	} else {
		err = c.compare(".", &lst, &mst)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(c.changes, func(a, b Change) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return c.changes, nil
}

type comparer struct {
	ctx                  context.Context
	opts                 *ChangesOptions
	skip                 map[string]bool
	lower, merged, upper *dirRoot // lower and upper may be nil
	changes              []Change
}

func (c *comparer) add(p string, k ChangeKind) {
	c.changes = append(c.changes, Change{Path: p, Kind: k})
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// lowerStat stats p in the image; ok is false if it is not there (or
// cannot be, because a parent is not a directory).
func (c *comparer) lowerStat(p string) (unix.Stat_t, bool, error) {
	if c.lower == nil {
		return unix.Stat_t{}, false, nil
	}
	st, err := c.lower.lstat(p)
	if isNotExist(err) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	return st, true, nil
}

func (c *comparer) names(r *dirRoot, p string) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	return r.readdir(p)
}

// addTree lists every path below the container directory p as Added.
func (c *comparer) addTree(p string) error {
	names, err := c.merged.readdir(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		q := join(p, n)
		if c.skip[q] {
			continue
		}
		st, mount, err := c.merged.lstatMount(q)
		if isNotExist(err) || mount {
			continue // removed since readdir, or not part of the layer
		}
		if err != nil {
			return err
		}
		c.add(q, Added)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := c.addTree(q); err != nil {
				return err
			}
		}
	}
	return nil
}

// compareDir compares the children of the directory p, present in both
// trees, in full.
func (c *comparer) compareDir(p string) error {
	mnames, err := c.merged.readdir(p)
	if err != nil {
		return err
	}
	lnames, err := c.names(c.lower, p)
	if err != nil {
		return err
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(mnames), lnames...))))
	for _, n := range all {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		q := join(p, n)
		if c.skip[q] {
			continue
		}
		_, inMerged := slices.BinarySearch(mnames, n)
		_, inLower := slices.BinarySearch(lnames, n)
		var mst unix.Stat_t
		if inMerged {
			var mount bool
			mst, mount, err = c.merged.lstatMount(q)
			switch {
			case isNotExist(err):
				inMerged = false // removed since readdir
			case err != nil:
				return err
			case mount:
				continue
			}
		}
		switch {
		case !inMerged:
			c.add(q, Deleted)
		case !inLower:
			if err := c.added(q, &mst); err != nil {
				return err
			}
		default:
			lst, err := c.lower.lstat(q)
			if err != nil {
				return err
			}
			if err := c.compare(q, &lst, &mst); err != nil {
				return err
			}
		}
	}
	return nil
}

// added lists p, a container path the image lacks, and its subtree.
func (c *comparer) added(p string, st *unix.Stat_t) error {
	c.add(p, Added)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return c.addTree(p)
	}
	return nil
}

// compare compares p, present in both trees, and recurses into
// directories.
func (c *comparer) compare(p string, lst, mst *unix.Stat_t) error {
	if err := c.compareMeta(p, lst, mst); err != nil {
		return err
	}
	if mst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if lst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return c.addTree(p)
	}
	return c.compareDir(p)
}

// compareMeta adds p as Modified if it differs between the trees; it does
// not look below directories.
func (c *comparer) compareMeta(p string, lst, mst *unix.Stat_t) error {
	same, err := c.same(p, lst, mst)
	if err != nil {
		return err
	}
	if !same {
		c.add(p, Modified)
	}
	return nil
}

func (c *comparer) same(p string, l, m *unix.Stat_t) (bool, error) {
	typ := m.Mode & unix.S_IFMT
	if l.Mode != m.Mode || l.Uid != m.Uid || l.Gid != m.Gid || l.Mtim != m.Mtim {
		return false, nil
	}
	switch typ {
	case unix.S_IFREG:
		if l.Size != m.Size || l.Nlink != m.Nlink {
			return false, nil
		}
	case unix.S_IFLNK:
		lt, err := c.lower.readlink(p)
		if err != nil {
			return false, err
		}
		mt, err := c.merged.readlink(p)
		if err != nil {
			return false, err
		}
		return lt == mt, nil
	case unix.S_IFCHR, unix.S_IFBLK:
		return l.Rdev == m.Rdev, nil
	case unix.S_IFDIR:
	default:
		return true, nil
	}
	lx, err := c.lower.xattrsOf(p, l)
	if err != nil {
		return false, err
	}
	mx, err := c.merged.xattrsOf(p, m)
	if err != nil {
		return false, err
	}
	if !maps.Equal(lx, mx) {
		return false, nil
	}
	if typ != unix.S_IFREG {
		return true, nil
	}
	if l.Dev == m.Dev && l.Ino == m.Ino {
		return true, nil
	}
	if c.opts.TrustCtime && l.Ctim == m.Ctim {
		return true, nil
	}
	return c.sameContent(p, l, m)
}

func (c *comparer) sameContent(p string, l, m *unix.Stat_t) (bool, error) {
	lf, err := c.lower.openChecked(p, l)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	mf, err := c.merged.openChecked(p, m)
	if err != nil {
		return false, err
	}
	defer mf.Close()
	lb := make([]byte, 64<<10)
	mb := make([]byte, 64<<10)
	for {
		if err := c.ctx.Err(); err != nil {
			return false, err
		}
		ln, lerr := io.ReadFull(lf, lb)
		mn, merr := io.ReadFull(mf, mb)
		if !bytes.Equal(lb[:ln], mb[:mn]) {
			return false, nil
		}
		if lerr != nil || merr != nil {
			if (lerr == io.EOF || lerr == io.ErrUnexpectedEOF) && lerr == merr {
				return true, nil
			}
			if lerr != nil && lerr != io.EOF && lerr != io.ErrUnexpectedEOF {
				return false, lerr
			}
			if merr != nil && merr != io.EOF && merr != io.ErrUnexpectedEOF {
				return false, merr
			}
			return false, nil
		}
	}
}

// Overlay upper directory markers, in the trusted.* namespace (root) and
// the user.* one (mount option userxattr).
var (
	opaqueXattrs   = []string{"trusted.overlay.opaque", "user.overlay.opaque"}
	redirectXattrs = []string{"trusted.overlay.redirect", "user.overlay.redirect"}
)

// overlayMarks reports whether the upper directory p is opaque (hides the
// image's directory) or redirected (shows another image directory).
func (c *comparer) overlayMarks(p string) (opaque, redirect bool, err error) {
	fd, err := c.upper.open(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return false, false, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 8)
	for _, k := range opaqueXattrs {
		n, err := unix.Fgetxattr(fd, k, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			opaque = true
		}
	}
	for _, k := range redirectXattrs {
		if _, err := unix.Fgetxattr(fd, k, nil); err == nil {
			redirect = true
		}
	}
	return opaque, redirect, nil
}

// upperDir lists the changes below p as the upper directory records them.
// p is a directory in the container and in the image.
func (c *comparer) upperDir(p string) error {
	opaque, redirect, err := c.overlayMarks(p)
	if err != nil {
		return err
	}
	if opaque || redirect {
		return c.compareDir(p)
	}
	names, err := c.upper.readdir(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		q := join(p, n)
		if c.skip[q] {
			continue
		}
		ust, err := c.upper.lstat(q)
		if err != nil {
			return err
		}
		lst, inLower, err := c.lowerStat(q)
		if err != nil {
			return err
		}
		mst, mount, err := c.merged.lstatMount(q)
		inMerged := err == nil
		if err != nil && !isNotExist(err) {
			return err
		}
		if mount {
			continue
		}
		whiteout := ust.Mode&unix.S_IFMT == unix.S_IFCHR && ust.Rdev == 0
		switch {
		case whiteout || !inMerged:
			if inLower {
				c.add(q, Deleted)
			}
		case !inLower:
			if err := c.added(q, &mst); err != nil {
				return err
			}
		case mst.Mode&unix.S_IFMT == unix.S_IFDIR && lst.Mode&unix.S_IFMT == unix.S_IFDIR:
			if err := c.compareMeta(q, &lst, &mst); err != nil {
				return err
			}
			if err := c.upperDir(q); err != nil {
				return err
			}
		default:
			if err := c.compare(q, &lst, &mst); err != nil {
				return err
			}
		}
	}
	return nil
}
