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
	// pstree, pagemap, core) that Verify decodes; pages images are never
	// decoded.
	MaxParsedImageSize = 64 << 20
)
