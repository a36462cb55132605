// Package incremental makes a full CRIU dump incremental after the fact:
// it deduplicates the pages of a final image set against an earlier full
// dump of the same process tree, so that pre-copy checkpoints work on
// kernels without soft-dirty memory tracking (every arm64 host, and the
// amd64 kernels built without it), where `criu pre-dump` and podman's
// --pre-checkpoint fail.
//
// The engine takes the pre-checkpoint as a plain full dump that leaves the
// container running (`criu dump --leave-running`), and the final
// checkpoint as a plain full dump; [Dedup] then rewrites the final image
// set so that it stores only the pages that changed, and links it to the
// pre-checkpoint with a "parent" symlink, exactly as CRIU's own pre-dump
// chains are laid out (`--prev-images-dir`, podman's
// checkpoint/parent -> ../pre-checkpoint). `criu restore` reads the chain
// unchanged. The final dump's freeze is not shorter than a full dump's,
// but what must be shipped after it is small.
//
// The package is independent of the engine: it reads and writes image
// directories only, and imports nothing of this module but format and
// format/criuimg.
//
// # Algorithm
//
// For each task of the final image set (each pagemap-<pid>.img; shared
// memory pagemaps are left alone), Dedup walks the pagemap entries in
// order. Entries whose pages are not stored in the final set (already in
// parent, or lazy without data) are copied as they are. For an entry whose
// pages are stored, it reads its pages in chunks (Options.ChunkSize, 1 MiB
// by default) from the pages file, reads the parent's pages at the same
// addresses, and compares page by page with bytes.Equal. A page equal to
// the parent's becomes part of a PE_PARENT run; any other page, and any
// page the parent has no data for, stays stored and keeps the entry's
// flags (PE_PRESENT, PE_PRESENT|PE_LAZY). CRIU marks anonymous private
// pages PE_PRESENT|PE_LAZY in every dump: they are stored pages, and are
// deduplicated like the others; a run in parent carries PE_PARENT alone,
// as CRIU writes its own in-parent holes. Each entry is split into such
// runs; entries are never merged, so every new entry lies inside an entry
// CRIU wrote. The kept pages go, in order, to a new pages file; the new
// entries to a new pagemap, encoded as CRIU 4.x encodes it (pagemap_head
// {pages_id}; pagemap_entry {vaddr, compat_nr_pages = 0, flags, nr_pages},
// without in_parent), framed by the PAGEMAP magics and u32 sizes.
//
// The parent's pages are looked up by address in the parent's own pagemap.
// Pages the parent itself marks PE_PARENT are resolved further up through
// the parent's "parent" link, recursively (at most format.MaxParentDepth
// levels; a cyclic chain is an error): a page found anywhere in the chain
// can be referenced, because CRIU's restore follows the same chain. A page
// not found in the chain is kept. The engine relies on this for chains of
// pre-checkpoints: each -P after the first is deduplicated against the
// previous level, itself a delta, and the final against the latest. Pages are compared at the same virtual
// address only: a mapping that moved between the two dumps is compared
// with whatever the parent had at the new address, so it is mostly kept.
// Zero pages are pages like the others (CRIU stores none it does not
// have to).
//
// Tasks are deduplicated in parallel (Options.Parallelism); each holds
// three chunk buffers, so memory stays bounded by Parallelism × 3 ×
// ChunkSize plus the decoded pagemaps, whatever the size of the process
// (BenchmarkDedup measures speed and resident memory). The context is
// checked between chunks.
//
// # Invariants
//
//   - At every moment finalDir is a valid image set that CRIU restores to
//     the same memory. Dedup first checks both image sets with
//     criuimg.CheckImages, then writes every task's new pages and pagemap
//     to temporary files (".dedup-*") in finalDir; until all are written,
//     finalDir is untouched, and any error removes them. Then it creates
//     the parent link (harmless while nothing refers to it), and per task
//     renames the new pages file to a fresh pages-<id>.img (an id no file
//     has, so the old pages file stays valid), renames the new pagemap
//     over pagemap-<pid>.img (the switch), and removes the old pages file.
//     Files are fsynced before, and the directory after, each rename
//     (unless Options.NoSync). A crash can leave a temporary or an
//     unreferenced pages file behind, never a pagemap naming missing pages.
//   - A page marked PE_PARENT is byte-identical to the page the parent
//     chain holds at the same address: it is only marked after the two
//     were compared.
//   - Pages, flags and addresses not marked PE_PARENT are as CRIU wrote
//     them; the other images of the set are not touched.
//   - No file is written in place, so hard links to the old files (a copy
//     of the full dump, as the tests keep) still see the full dump.
//
// # Reading chains
//
// [MemoryDiff] and [Equal] compare the private memory of two image sets
// page by page, each resolved through its chain of parent links as CRIU's
// restore does; the tests use them to prove that a deduplicated chain holds
// the same memory as the full dump it came from, and that a restored
// process holds it too. [ImagesDigest] computes format.ImagesDigest for
// an image directory on disk, so that the engine can record
// format.Parent.Images for chains it builds in place.
//
// # Limits
//
//   - Images are trusted no more than criuimg trusts them: pagemaps are
//     decoded through criuimg (bounded entries and sizes), at most
//     [MaxPagemapSize] bytes; entries must be page-aligned, sorted,
//     disjoint, and a pages file must hold exactly the pages its pagemap
//     stores. The parent chain is at most format.MaxParentDepth deep.
//   - Shared memory (pagemap-shmem-*, pagemap-secretmem-*) is not
//     deduplicated.
//   - Dedup cannot shorten the final freeze: it runs after the final dump.
//     Where the kernel has soft-dirty tracking, CRIU's own pre-dump with
//     --track-mem does that, and should be preferred.
//   - The page size is the dumping host's (Options.PageSize, by default
//     this host's); CRIU images do not record it.
//   - Dedup assumes parentDir and finalDir are dumps of the same process
//     tree, with the same pids (as in a PID namespace or a container). A
//     task of the final set that the parent does not have keeps all its
//     pages; pages of a different process that happen to be equal at the
//     same address would be deduplicated, and restore correctly, since
//     equality is all that restore needs.
package incremental
