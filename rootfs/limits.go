package rootfs

// Limits on what Apply accepts and WriteDiff writes. ApplyOptions may lower
// the first three; nothing raises any of them.
const (
	// MaxEntries is the largest number of tar entries (of any type) in a
	// diff, and the largest number of paths in a deleted list.
	MaxEntries = 1 << 20
	// MaxEntrySize is the largest size of one regular file in a diff.
	MaxEntrySize = 64 << 30
	// MaxTotalSize is the largest sum of the sizes of all regular files in
	// a diff.
	MaxTotalSize = 256 << 30
	// MaxPathLength is the longest path, in bytes, of a diff entry, a
	// hardlink target or a deleted path (Linux PATH_MAX).
	MaxPathLength = 4096
	// MaxNameLength is the longest single path component, in bytes (Linux
	// NAME_MAX).
	MaxNameLength = 255
	// MaxLinkTargetLength is the longest symbolic link target, in bytes.
	MaxLinkTargetLength = 4096
	// MaxXattrs is the largest number of extended attributes on one entry.
	MaxXattrs = 128
	// MaxXattrSize is the largest size of one extended attribute value
	// (Linux XATTR_SIZE_MAX).
	MaxXattrSize = 64 << 10
	// MaxDeletedFilesSize is the largest deleted.files document ReadDeleted
	// reads.
	MaxDeletedFilesSize = 64 << 20
	// MaxNamesSize is the largest sum of the lengths of all entry names in
	// a diff. Apply keeps every name (to refuse duplicates and to check
	// hardlinks), so this bounds its memory together with MaxEntries.
	MaxNamesSize = 256 << 20
)
