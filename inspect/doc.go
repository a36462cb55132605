// Package inspect reads checkpoint archives offline — ckpt v1 archives and
// the legacy archives of podman, CRI-O and containerd — and builds the
// views `ckptinspect` prints: a one-line summary ([Show]), the process
// tree with command lines, environment, open files and sockets, the
// spec's mounts, CRIU's statistics and the metadata ([Inspect]), memory
// usage, hexdumps and searches ([Archive.MemoryUsage], [Archive.HexDump],
// [Archive.Search]), verification ([Verify], on format.Verify and
// format.CheckChain) and differences ([DiffArchives]).
//
// # Reading
//
// Every archive is read once. [Show] of a v1 archive reads its manifest
// (format.ReadManifest decodes the first compression frame, a few KiB
// whatever the archive's size) and streams on to config.dump, for the
// container's creation time, only when at most [MaxShowScan] bytes of
// members (the CRIU images) come before it, or with ShowOptions.Full or
// Verify; a failure there leaves the creation time unknown. Of a legacy
// archive Show reads the tar headers and config.dump and spec.dump, with
// format's Skim (nothing else read or hashed): an uncompressed file from
// header to header by seeking, a compressed stream only up to those two
// (podman writes them first) unless ShowOptions.Full, its member sizes
// then unknown. Figures Show leaves unread are named in Summary.Unknown,
// never reported as zero. A sealed archive Show reads as the archive
// inside with ShowOptions.Identities, by random access (seal.OpenAt:
// only the chunks read are decrypted, each authenticated), and lists
// as sealed without them. [Load] streams the archive through
// format's verifying reader and keeps what its [LoadOptions] select: the
// small metadata members in memory (at most [MaxSmallFile] each), the CRIU
// metadata images in memory (at most [MaxImageSize] each and
// [MaxImagesTotal] together), the pages images in a private temporary
// directory (mode 0700, removed by [Archive.Close]) only when memory
// contents are needed, and a digest per file of the inner tars (rootfs
// diff, volumes) without storing them.
//
// # Checkpoint chains
//
// An incremental checkpoint (manifest "parent", FORMAT.md §3) stores only
// the pages that changed; its pagemaps mark the others in parent
// (PE_PARENT), and they live in the parent archive, a pre-checkpoint
// (images under pre-checkpoint/) or, deeper, another increment. [Show]
// reports the chain from the manifest alone: a pre-checkpoint, or the
// parent's manifest digest and depth, the checkpoint size then being the
// delta's. [LoadOptions.Parents] (InspectOptions.Parents,
// DiffOptions.Parents; `--parent FILE`, repeatable, nearest first) gives
// the parent archives: their manifests are read first and the chain is
// checked with format.CheckChain (manifest digest, image-set digest,
// depth; errors wrap format.ErrParent) before anything else of them is
// read; then each is read once, like the child, keeping its images and
// pages, and memory marked in parent is read from the nearest parent by
// address, recursively, as CRIU's restore resolves it. Command lines,
// environments, hexdumps, searches and memory diffs then see the full
// memory. Without the parents, such memory is never shown as zeros or
// silently missing: hexdumps print "<start>-<end>  N page(s) in parent (not
// given)" ([ErrParentNotGiven]), Process.MemoryNote says the command line
// or environment is in parent, memparse's table adds an IN PARENT column
// (MemUsage.InParent), searches skip it with a note on stderr, and a diff
// lists it under Diff.Notes ("Not compared") and is not identical.
//
// # Hostile images
//
// CRIU images are untrusted. go-criu's decoders allocate from sizes found
// in the file, so no image reaches them directly: every image passes
// format/criuimg's bounded reader first, which checks each entry's size
// against the bytes left in the image and against its caps, then each
// entry (at most criuimg.MaxEntrySize bytes) is decoded with go-criu's
// protobuf types (crit/images) or criuimg's own decoders. A process tree is
// built only when criuimg.CheckPstree, the verifier's check, accepts it
// (no cycle, no duplicate PID, every task reaching the root), so inspect
// and verify refuse the same trees; pagemaps with overlapping, misaligned
// or out-of-file ranges, and files referenced by no table are errors or
// "unknown", never panics. [DecodeImage] exposes this path; the fuzz
// target FuzzInspectImage exercises it.
//
// # Stale images
//
// Images of processes that had exited before the last dump (podman dumps a
// container into the same directory each time; criuimg.FindStale,
// docs/FORMAT.md rule 14b) are dropped by [Load] once the images are read
// ([Archive.Stale]): the process tree, memory, files and diffs come from
// the dump's images only, and memparse of a stale pid says so. [Verify]
// notes each stale image ([StaleNote]) and lists it in VerifyResult.Stale;
// it is never a problem.
//
// # Limits
//
// The inspector's limits are the verifier's: [MaxSmallFile] is
// format.MaxMetadataSize, [MaxImageSize] and [MaxImagesTotal] are
// format.MaxParsedImageSize and format.MaxParsedImagesTotal,
// [MaxTarEntries] is format.MaxInnerEntries, and deleted.files is read by
// format.ReadDeletedFiles (at most format.MaxDeletedFiles paths), as the
// engine reads it.
//
// # JSON documents
//
// Every report has a JSON form, written by `--json` or, the same,
// `--format json` (every ckptinspect command that prints data takes both).
// Each is one object with
// "version": [JSONVersion] (1) and the fields of its type:
//
//   - show: [ShowJSON] {"version", "archives": [[Summary]]}; a Summary has
//     path, name, id, image, imageID, runtime, created, checkpointed (RFC
//     3339, omitted when unknown; see [Info] for their sources), engine ("ckpt", "Podman", "CRI-O",
//     "containerd"), format ("ckpt v1", "legacy"), checkpointSize,
//     memoryPagesSize, rootfsDiffSize (bytes), verified ("yes", "no",
//     "unverifiable", "unchecked"), problems, unknown (the fields above
//     left unset because reading them needs `show --full`: checkpointSize,
//     memoryPagesSize, rootfsDiffSize of a compressed legacy archive,
//     created of a big v1 archive; omitted when none), and for checkpoint chains
//     preCheckpoint (true for a pre-checkpoint archive) and parent (the
//     manifest's {"manifest", "images", "depth"} of an incremental
//     checkpoint, whose checkpointSize is then the delta's size), both
//     omitted for a full checkpoint. The human table starts with a FILE
//     column (the path as given); its CHAIN column says "full",
//     "pre-checkpoint" or "delta of sha256:<12 hex> depth N".
//   - inspect: [InspectJSON] {"version", "archives": [[Inspection]]}; an
//     Inspection is a Summary plus processTree ([Process]: pid, ppid, pgid,
//     sid, threads, comm, state, cmdline, env, memoryNote (why cmdline or
//     env is missing: in a parent not given), files ([File]: fd, type,
//     path), sockets ([Socket]), children), mounts ([Mount]), stats
//     ([DumpStats]), metadata ([Metadata]) and staleImages ([StaleImage],
//     with the process tree; omitted when none).
//   - memparse: [MemparseJSON] {"version", "path", "processes": [[MemUsage]]}
//     or "matches": [[Match]]. A MemUsage has pid, comm, memory (stored in
//     this archive), shared, and inParent (pages in parent of an
//     incremental checkpoint, omitted when 0).
//   - verify: [VerifyJSON] {"version", "archives": [[VerifyResult]]}: path,
//     format, legacy, manifestDigest, problems (one string each, naming the
//     member), notes, stale ([StaleImage]: member, reason; omitted when
//     none).
//   - diff: [DiffJSON] {"version", "a", "b", "identical", "fields"
//     ([FieldChange]), "processes" ([ProcChange]), "files" and "sockets"
//     ([ItemChange]), "memory" ([MemChange] per process and mapping),
//     "memoryTotal", "rootfs" ([FileChange]), "notes" (what could not be
//     compared: memory in a parent not given; omitted when none)}.
//
// Fields are only added within a version; removing or changing one bumps
// [JSONVersion]. The human (tree and table) output may change at any time.
//
// Package inspect depends on format, format/criuimg and go-criu's
// protobuf image types; never on the engine (depcheck_test.go).
package inspect
