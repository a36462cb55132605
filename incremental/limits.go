package incremental

const (
	// MaxPagemapSize is the largest pagemap image (pagemap-<pid>.img) the
	// package reads into memory: 128 MiB, above the largest pagemap
	// criuimg accepts (criuimg.MaxEntries entries of about 20 bytes).
	// Pagemaps of real processes are kilobytes.
	MaxPagemapSize = 128 << 20
	// MaxMetadataSize is the largest metadata image (inventory, pstree,
	// core, mm, files, fdinfo, ids) read to check an image set: 64 MiB.
	MaxMetadataSize = 64 << 20
	// DefaultChunkSize is the number of bytes of pages read from the final
	// image set, and from its parent, in one read: 1 MiB.
	DefaultChunkSize = 1 << 20
	// DefaultParallelism is the number of tasks deduplicated at once when
	// Options.Parallelism is 0.
	DefaultParallelism = 4
)
