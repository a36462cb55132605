package rootfs

// ChangesOptions configures Changes. The zero value (or nil) compares the
// whole trees, reading file contents whenever metadata cannot prove a file
// unchanged.
type ChangesOptions struct {
	// Upper is the overlayfs upper directory of the container root. When
	// set, Changes only looks at the paths the upper directory lists
	// (whiteouts become deletions, opaque and redirected directories are
	// compared in full against the image), which is exact and much faster
	// than the full walk. Metadata and content are still read from the
	// container root, so metacopy upper files are handled.
	Upper string
	// Skip lists paths whose whole subtree is neither compared nor
	// reported: mount points such as "/proc", "/sys", "/dev", "/dev/shm",
	// "/etc/hosts", volume and bind mount destinations. A leading slash is
	// optional. The caller knows the container's mounts; Changes does not
	// guess them.
	Skip []string
	// TrustCtime treats a regular file whose type, mode, owner, size,
	// mtime, link count, extended attributes and ctime all equal the
	// image's as unchanged without reading it. Only set it when the image
	// and container trees share the inodes (overlay lower layers seen
	// through the container root); copies made by cp -a or rsync can have
	// equal ctimes and different content when made within one clock tick.
	TrustCtime bool
}

// WriteOptions configures WriteDiff. The zero value (or nil) writes
// directories, regular files, symbolic links and hardlinks, and leaves out
// device nodes and FIFOs.
type WriteOptions struct {
	// Devices writes character and block device nodes. A character device
	// 0/0 (an overlay whiteout) is never written.
	Devices bool
	// FIFOs writes named pipes.
	FIFOs bool
}

// ApplyOptions configures Apply. The zero value (or nil) refuses device
// nodes and FIFOs, restores ownership, and uses the package limits.
type ApplyOptions struct {
	// Devices allows character and block device nodes. A character device
	// 0/0 (an overlay whiteout) is refused even then.
	Devices bool
	// FIFOs allows named pipes. They are refused by default because a FIFO
	// where a runtime expects a file (/etc/passwd) makes its open block.
	FIFOs bool
	// NoChown leaves every created file owned by the caller instead of the
	// uid and gid the diff records (for tests and rootless use).
	NoChown bool
	// MaxEntries lowers MaxEntries; zero means MaxEntries.
	MaxEntries int
	// MaxEntrySize lowers MaxEntrySize; zero means MaxEntrySize.
	MaxEntrySize int64
	// MaxTotalSize lowers MaxTotalSize; zero means MaxTotalSize.
	MaxTotalSize int64
}

func (o *ApplyOptions) limits() (entries int, entry, total int64) {
	entries, entry, total = MaxEntries, MaxEntrySize, MaxTotalSize
	if o == nil {
		return
	}
	if o.MaxEntries > 0 && o.MaxEntries < entries {
		entries = o.MaxEntries
	}
	if o.MaxEntrySize > 0 && o.MaxEntrySize < entry {
		entry = o.MaxEntrySize
	}
	if o.MaxTotalSize > 0 && o.MaxTotalSize < total {
		total = o.MaxTotalSize
	}
	return
}
