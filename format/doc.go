// Package format reads, writes, verifies and safely extracts ckpt checkpoint
// archives, format versions 1 and 2 (streamed), and reads podman, CRI-O and containerd
// checkpoint archives in a legacy mode. docs/FORMAT.md is the normative
// description; this comment lists the rules the code enforces.
//
// An archive is a tar stream, compressed with zstd (default), gzip, or not
// at all; readers detect the compression by its magic bytes. Each
// compression is a codec in a file of its own (codec_*.go), registered in
// compress.go, which applies its reader's limits and its writer's framing.
//
// Invariants of a v1 archive, enforced by [Writer] and checked by [Reader]:
//
//   - The first member is [ManifestName], at most [MaxManifestSize] bytes of
//     JSON that [ParseManifest] accepts: a known major [Version], no unknown
//     fields, no trailing data. In compressed archives it fills a compression
//     frame of its own, so reading it decodes nothing else ([NewFileWriter]
//     writes that frame last, into room reserved for it and padded by a
//     skippable frame of zeros, the one skippable frame a reader accepts). [Writer] cuts
//     the rest in frames of 8 MiB of tar stream (the last one shorter),
//     compressed independently and in parallel, or stored (zstd raw
//     blocks, gzip stored blocks) when samples of the frame do not
//     compress; where it cuts and what it stores depend on the data
//     alone, so the output does not depend on the concurrency.
//   - Every other member is a regular file listed in the manifest, in the
//     manifest's order (sorted by name), with the listed size and sha256
//     digest. No member is missing, unlisted or repeated. The only other
//     entries are one directory entry per parent directory of a listed
//     member, before its first member (checkpointctl needs checkpoint/);
//     there are no link, device, FIFO or sparse entries.
//   - Names pass [CheckName] (relative, clean, valid UTF-8, at most
//     [MaxNameLength] bytes and [MaxNameDepth] elements), have a [Kind] other
//     than [KindOther], and no two differ only in case.
//   - Tar headers are normalized: mode 0600 (directories 0700), owner 0:0
//     without names, every modification time equal to the manifest's
//     creation time, no access or change time, link name or device
//     numbers, USTAR or PAX (never GNU) headers, and PAX records only
//     "path" for a name USTAR cannot hold and "size" for a member of 8 GiB
//     or more (no extended attributes, times, comments or charsets). The
//     same inputs and options give the same bytes.
//   - The tar stream ends with its two zero blocks; only zero padding (at
//     most [MaxTrailingPadding] bytes) may follow.
//
// Invariants of a streamed archive (version 2, [StreamVersion]), enforced
// by [StreamWriter] and checked by [Reader], for a writer that cannot go
// back (a pipe):
//
//   - The manifest comes first, in its frame, as in v1, with version 2 and
//     no members. The last member is [IndexName], in a frame of its own
//     with the end blocks: the manifest member's digest and every member,
//     in archive order, with size and digest ([Index]). Members come in
//     any order, each once, with v1's names, kinds, limits and normalized
//     headers; directory entries only for checkpoint/, pre-checkpoint/ and
//     volumes/, each once.
//   - A pages image ([MayHaveParts]) may be stored as consecutive entries
//     of its name, its parts, of at most [PartSize] bytes: its size is
//     known only once CRIU has written it. [Reader] gives each part a
//     [Header] with Part 0, 1, ...; [Extract] appends them.
//   - A member's digest is checked when the index is read, at the end:
//     Read returns io.EOF at a member's end unverified, and Next fails at
//     the index for any member whose size or digest differ, that is
//     missing, unlisted or out of order, or for an archive without index.
//     [Extract] removes everything on that error, as on any other.
//   - gzip is not used: a streamed archive is zstd or plain.
//     [ReadIndexAt] finds the index in the last 512 KiB of a file (the
//     last frame, decoding to the index's entry and the end blocks and
//     naming the manifest read first), so a summary reads under 1 MiB.
//
// Readers treat every archive as hostile: sizes are bounded by the limits
// in limits.go before anything is allocated, zstd windows and decoder memory
// are capped, skippable zstd frames and gzip extra fields or comments (bytes
// no digest covers) are refused, each member is read through a verifying reader that checks
// size and digest at EOF, and a failed check is an error, never a warning.
// Legacy archives (no manifest) get the same structural checks; their
// manifest is synthesized from the tar headers and [Reader.Legacy] reports
// them as unverifiable (their headers may carry PAX records, which nothing
// applies). With [ReaderOptions.Skim] a legacy archive is listed with the
// same checks, but what the caller does not read is not hashed: seeked
// past in an uncompressed file, decompressed and dropped otherwise. [Extract] writes only below its target directory,
// through os.Root, creating regular files and directories with fixed modes;
// owners and modes from the archive are not trusted.
//
// Contents. [Verify] and [Extract] judge what the members hold with one
// checker (images.go), so an archive one reports a problem for the other
// refuses, naming the member; [CheckImageDir] applies the image checks to
// a directory on disk:
//
//   - every CRIU image set with criuimg.CheckImages (docs/FORMAT.md rule
//     14a): framing and consistency, the process tree, VMAs and pagemaps,
//     the paths of the files CRIU reopens, ghost files and remaps, and
//     the mount namespaces by an allow-list, or by the stricter
//     criuimg.MountPolicy of the restoring engine ([ImageOptions.Mounts]);
//     the stale images the dump does not lead to (criuimg.FindStale, rule
//     14b) are not checked and are no problem: [Report.Stale] lists them,
//     and [CheckImageDir] removes them with [ImageOptions.RemoveStale];
//   - deleted.files through [ReadDeletedFiles], read as a stream: at most
//     [MaxDeletedFilesSize] bytes and [MaxDeletedFiles] paths, each
//     accepted by [CheckDeletedPath];
//   - config.dump, spec.dump, network.status, stats-dump, cpuinfo.img at
//     most [MaxMetadataSize] each.
//
// Both keep at most [MaxParsedImagesTotal] bytes of images in memory (each
// at most [MaxParsedImageSize]) and read the archive once. Extract bounds
// what it writes with [ExtractOptions.MaxWrite] and the free space the
// caller reports ([ExtractOptions.FreeSpace], [ErrNoSpace]): a v1 archive
// whose manifest declares more is refused before anything is written, a
// legacy archive at the member that would go over.
//
// [Sniff] names a file that is not a checkpoint archive for what it looks
// like (text, a root filesystem tar, an OCI or Docker image archive), so
// that a reader's error can say so ([ErrNotCheckpoint]). It reads only the
// file's first bytes and its tar headers (at most [SniffHeaders]; at most
// [SniffBytes] of a decompressed stream), never a member's contents. A
// sealed archive (package format/seal) it knows by its first line,
// [SealedMagic]: this package reads none, format/seal opens them.
//
// A containerd 1.x checkpoint image ([OpenContainerdCheckpoint],
// containerd.go) is read from a content store's blobs by its index's
// digest, through os.Root (no symbolic link leads out): the index and
// the small blobs (at most [MaxContainerdIndexSize], [MaxContainerdEntries]
// entries, only containerd's checkpoint media types) are checked against
// their descriptors' sizes and digests before use, the CRIU tar and the rw
// layer as [ContainerdCheckpoint.WriteArchive] streams them into a legacy
// archive, which fails with [ErrChecksum] at a mismatch; the CRIU tar may
// hold only regular files at its top level. Every reader of archives then
// applies its own checks to that stream.
//
// The limits on contents are this package's (limits.go) and
// format/criuimg's: the engine's rootfs and volumes packages and package
// inspect use the same constants, so every reader accepts the same
// archives.
//
// Package format imports only the standard library, the zstd and gzip
// codecs of github.com/klauspost/compress, go-criu's magic table and
// internal/fileio (huge-page buffers, itself standard library only); it
// never imports the engine or os/exec (depcheck_test.go).
package format
