package format

// Limits on what a Reader accepts. Each can be lowered, not raised, per
// reader with ReaderOptions. A writer refuses to produce anything over them.
const (
	// MaxManifestSize is the largest manifest member, in bytes.
	MaxManifestSize = 4 << 20
	// MaxMembers is the largest number of entries in the outer archive.
	MaxMembers = 50_000
	// MaxMemberSize is the largest single member, in bytes.
	MaxMemberSize = 64 << 30
	// MaxTotalSize is the largest sum of member sizes, in bytes.
	MaxTotalSize = 256 << 30
	// MaxNameLength is the longest member name, in bytes.
	MaxNameLength = 255
	// MaxNameDepth is the largest number of path elements in a member name.
	MaxNameDepth = 8
	// MaxParentDepth is the longest chain of parent (pre-checkpoint)
	// archives a checkpoint may depend on.
	MaxParentDepth = 16
	// MaxTrailingPadding is how many zero bytes may follow the tar end
	// blocks (tar pads to a record size; 10 KiB is common).
	MaxTrailingPadding = 1 << 20
	// MaxDecoderWindow is the largest zstd window a reader accepts.
	MaxDecoderWindow = 32 << 20
	// MaxDecoderMemory is the most memory a zstd decoder may allocate.
	MaxDecoderMemory = 128 << 20
	// MaxParsedImageSize is the largest CRIU metadata image (inventory,
	// pstree, pagemap, core, mountpoints...) that Verify and Extract
	// decode; pages images are never decoded.
	MaxParsedImageSize = 64 << 20
	// MaxParsedImagesTotal is the most CRIU metadata Verify and Extract
	// keep in memory for one archive, the sum of the images they decode.
	// An archive over it is refused: its image set cannot be checked.
	MaxParsedImagesTotal = 256 << 20
)

// Limits on member contents, checked by Verify and Extract and applied by
// every other reader of the members (the engine's rootfs and volumes
// packages, package inspect), so that all of them accept the same
// archives.
const (
	// MaxMetadataSize is the largest config.dump, spec.dump,
	// network.status, stats-dump, cpuinfo.img and deleted.files: readers
	// keep them in memory.
	MaxMetadataSize = 16 << 20
	// MaxDeletedFilesSize is the largest deleted.files document.
	MaxDeletedFilesSize = MaxMetadataSize
	// MaxDeletedFiles is the largest number of paths in deleted.files.
	// The engine keeps every path while it applies the list, so this and
	// MaxDeletedFilesSize bound that memory.
	MaxDeletedFiles = 1 << 16
	// MaxPathLength is the longest path inside a container, in bytes, of
	// a deleted path or an inner tar's entry (Linux PATH_MAX).
	MaxPathLength = 4096
	// MaxPathElement is the longest element of such a path (Linux
	// NAME_MAX).
	MaxPathElement = 255
	// MaxInnerEntries is the largest number of entries of an inner tar
	// (rootfs-diff.tar, volumes/<name>.tar, devshm-checkpoint.tar).
	MaxInnerEntries = 1 << 20
)
