// Package criuimg is a small reader of CRIU image files (images v1.1, as
// written by CRIU 3.x and 4.x) that is safe on hostile input. The format
// verifier uses it to check the CRIU images inside a checkpoint archive,
// and the inspector to show them. It imports only the standard library and
// go-criu's generated magic table: no protobuf runtime, no os/exec.
// go-criu's own decoders allocate from sizes found in the file; this
// package does not, so an image must pass through it before it reaches
// them.
//
// # Image layout
//
// An image file starts with a header: the u32 little-endian [MagicCommon]
// (or [MagicService] for stats-* and irmap-cache) followed by the image's
// own magic, except inventory.img, which starts directly with
// [MagicInventory]. [ExpectedMagic] maps CRIU's image file names
// (criu/image-desc.c) to magics; [Magic] checks a header. Raw images
// (pages-<id>.img and the ip/iptables/tar dumps) have no header.
//
// After the header come entries: a u32 little-endian size, then a protobuf
// message of that size. In some images an extra payload follows an entry,
// its size taken from the entry: pipes-data and fifo-data (bytes),
// sk-queues (length), tcp-stream (inq_len + outq_len), bpfmap-data
// (keys_bytes + values_bytes), ipcns-sem (2*nsems rounded up to 8),
// ipcns-shm (size rounded up to 4, unless in_pagemaps), ipcns-msg (qnum
// messages of u32 size, ipc_msg and msize bytes rounded up to 8) and
// ghost-file (after the first entry, either chunk entries each followed by
// len bytes, or the file contents up to the end of the image). [Reader]
// returns each entry's message and skips the payloads.
//
// # Invariants and limits
//
//   - Every size read from an image is checked against the bytes left in
//     the image before anything is read or allocated; a size that does not
//     fit is [ErrTruncated], never a short read or a panic.
//   - An entry's message is at most [MaxEntrySize] bytes, an image holds at
//     most [MaxEntries] entries; [Limits] can lower both. Over a limit is
//     [ErrTooLarge].
//   - The protobuf decoder reads varints of at most 10 bytes that fit in 64
//     bits, field numbers 1 to [MaxFieldNumber], wire types 0, 1, 2 and 5
//     (groups are rejected), and length-delimited fields no longer than the
//     bytes left; anything else is [ErrProto]. Unknown fields are skipped.
//     Nesting is fixed by the typed decoders, so hostile nesting cannot
//     recurse. A repeated field keeps at most [MaxRepeated] values, and its
//     slice grows only with values present in the data.
//   - Required fields of the decoded messages (proto2 "required") must be
//     present, as CRIU's protobuf-c and crit require.
//   - Images that CRIU writes with one entry (inventory, core, mm, ids) must
//     hold exactly one.
//   - Every error of a [Reader], of the Read functions and of [CheckImages]
//     names the image file and, where it applies, the byte offset: an
//     *[Error] wrapping one of the package's sentinel errors. The Decode
//     functions, which see one message and no file, return errors wrapping
//     [ErrProto] or [ErrTooLarge].
//
// # Image set checks
//
// [CheckImages] checks one image directory and reports every problem, each
// naming its image file:
//
//   - every image with a known name has its magic and header prefix, and
//     its entries (when its contents are given) are framed correctly; files
//     with other names are not judged (they may be a newer CRIU's images);
//   - inventory.img and pstree.img exist and decode; the images version is
//     2 (v1.1); pstree.img lists at least one task, no pid twice, no thread
//     in two tasks, and every task but the root has its parent in the tree;
//   - every task has core-<pid>.img with a task core; a zombie (task state
//     [TaskDead]) needs nothing else. An alive or stopped task lists itself
//     among its threads and has core-<tid>.img for every thread,
//     mm-<pid>.img, pagemap-<pid>.img, ids-<pid>.img (unless its core
//     embeds the ids, as old images do) and fdinfo-<files_id>.img
//     (fdinfo-<pid>.img without fdinfo_per_id), all decoding; files.img
//     decodes, lists no id twice, and holds the file of every descriptor in
//     the fdinfo images and every mm image's exe_file_id;
//   - every pagemap image (pagemap-<pid>, pagemap-shmem-<id>,
//     pagemap-secretmem-<id>) decodes; its entries have known flags, not
//     both [PEParent] and [PEPresent], at least one page, page-aligned
//     addresses, no overflow, ascending non-overlapping ranges, and lie
//     within the VMAs of mm-<pid>.img; [PEParent] entries in an image set
//     without parent are [ErrParent];
//   - pages-<pages_id>.img exists for every pagemap, holds exactly the
//     pages of the entries that are [PEPresent] and not [PEParent] (lazy
//     pages are counted when CRIU marks them present, as it does unless it
//     dumps for a lazy-pages server), times the page size
//     ([CheckOptions.PageSize], default [DefaultPageSize]); no two pagemaps
//     share a pages_id and every pages image is named by a pagemap.
//
// A report holds at most [MaxProblemsPerFile] problems per file and
// [MaxProblems] in all, plus one problem saying how many were left out.
// Whether a parent image set holds the pages a child takes from it is
// checked across two sets by [CheckParent].
package criuimg
