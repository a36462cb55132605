package rootfs

import "github.com/ckpt/ckpt/format"

// Limits on what Apply accepts and WriteDiff writes. ApplyOptions may lower
// the first three; nothing raises any of them. Those that bound what an
// archive holds are package format's (format/limits.go), so that the
// verifier, the extractor, the inspector and the engine accept the same
// archives.
const (
	// MaxEntries is the largest number of tar entries (of any type) in a
	// diff (format.MaxInnerEntries).
	MaxEntries = format.MaxInnerEntries
	// MaxEntrySize is the largest size of one regular file in a diff.
	MaxEntrySize = 64 << 30
	// MaxTotalSize is the largest sum of the sizes of all regular files in
	// a diff.
	MaxTotalSize = 256 << 30
	// MaxPathLength is the longest path, in bytes, of a diff entry, a
	// hardlink target or a deleted path (Linux PATH_MAX,
	// format.MaxPathLength).
	MaxPathLength = format.MaxPathLength
	// MaxNameLength is the longest single path component, in bytes (Linux
	// NAME_MAX, format.MaxPathElement).
	MaxNameLength = format.MaxPathElement
	// MaxLinkTargetLength is the longest symbolic link target, in bytes.
	MaxLinkTargetLength = 4096
	// MaxXattrs is the largest number of extended attributes on one entry.
	MaxXattrs = 128
	// MaxXattrSize is the largest size of one extended attribute value
	// (Linux XATTR_SIZE_MAX).
	MaxXattrSize = 64 << 10
	// MaxDeletedFilesSize is the largest deleted.files document ReadDeleted
	// reads (format.MaxDeletedFilesSize).
	MaxDeletedFilesSize = format.MaxDeletedFilesSize
	// MaxDeletedFiles is the largest number of paths in a deleted list,
	// read or applied (format.MaxDeletedFiles).
	MaxDeletedFiles = format.MaxDeletedFiles
	// MaxNamesSize is the largest sum of the lengths of all entry names in
	// a diff. Apply keeps every name (to refuse duplicates and to check
	// hardlinks), so this bounds its memory together with MaxEntries.
	MaxNamesSize = 256 << 20
)
