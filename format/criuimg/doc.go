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
// [CheckImages] checks the images of one image directory that the dump
// leads to and reports every problem, each naming its image file (the
// structure here, what the images make CRIU do below); the stale images
// ([FindStale], below) it leaves unchecked and lists in [Report.Stale]:
//
//   - every image with a known name has its magic and header prefix, and
//     its entries (when its contents are given) are framed correctly; files
//     with other names are not judged (they may be a newer CRIU's images);
//   - inventory.img and pstree.img exist and decode; the images version is
//     2 (v1.1); pstree.img passes [CheckPstree] and no thread is in two
//     live tasks;
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
// # What CRIU is asked to do
//
// The images are instructions to a root process, so [CheckImages] also
// checks what they make CRIU do, with an allow-list (docs/FORMAT.md rule
// 14a):
//
//   - the process tree ([CheckPstree], the one check the inspector uses
//     too): at most [MaxTasks] tasks and [MaxThreads] threads, pids from 1
//     to [MaxPID] and unique, every task reaching the root (the first)
//     through its parents with no cycle, the root's parent outside the
//     tree, group and session leaders consistent; the threads of live
//     tasks in range too (a zombie's thread list is garbage, as CRIU
//     leaves it);
//   - memory: the VMAs of every mm image are non-empty, page-aligned and
//     disjoint, so that pagemap entries bounded by them (above) are bounded
//     (a count of 2^40 pages is refused);
//   - files CRIU reopens: every regular file of files.img has a path
//     [CheckFilePath] accepts (absolute, clean, no NUL, at most
//     [MaxPathLength]); each remap of remap-fpath.img is of a regular file,
//     through a regular file or an existing ghost file; a ghost file is at
//     most [MaxGhostFileSize] and is a regular file, directory, symbolic
//     link, FIFO or a character device every container has (only its first
//     [GhostHeadSize] bytes are read);
//   - mounts (mountpoints-<id>.img, at most [MaxMounts] each): a tree of
//     unique ids with one root at "/", children at or below their parents,
//     no cycle, clean mountpoints. The root mount of the root task's
//     namespace (ids-<root pid>.img names it) is bound by CRIU from the
//     engine's root directory and may be anything. Every other mount is
//     external (its key not one of CRIU's own, which take the source from
//     the image), or one CRIU makes: a clean root, a bind source in the
//     namespace (same device, root holding its root), no option naming a
//     host path, and a type a container may get from an archive: tmpfs,
//     devpts, mqueue; proc at /proc and read-only parts of it over
//     themselves; read-only sysfs at /sys; read-only cgroup and cgroup2
//     below /sys/fs/cgroup; binds of the container's root or of external
//     mounts. A fresh proc at /proc needs /proc/sys read-only. A
//     [MountPolicy] ([CheckOptions.Mounts], built by [RuncMountPolicy] from
//     the engine's OCI spec) is stricter: the root task's namespace must be
//     there, every mount of it must be one the spec declares, and the
//     masked and read-only paths that exist on the restoring host must be
//     there.
//
// [Needs] says how much of each image [CheckImages] needs.
//
// # Stale images
//
// CRIU overwrites the images of the tasks it dumps and deletes none, and
// podman dumps a container into the same directory every time, so an
// image directory may hold images of processes that exited before the
// last dump; CRIU never reads them. [FindStale] finds them from
// pstree.img, the inventory and the images they reference: per-thread
// images (core, creds, signal-p) of an id that is no task or thread of
// pstree.img, per-task images (mm, pagemap, ids, fs, ...) of a pid it does
// not list or of a zombie, fdinfo images of no live task's files id, and
// pages images no live pagemap names (a pages image a live and a stale
// pagemap both name is the live one's). What it cannot decide is live:
// nothing is stale without a readable pstree.img, no fdinfo image without
// the inventory and every live task's ids, no pages image while a live
// task's pagemap is missing or unreadable. A stale image is never a
// problem, whatever it holds.
//
// A report holds at most [MaxProblemsPerFile] problems per file and
// [MaxProblems] in all, plus one problem saying how many were left out.
// Whether a parent image set holds the pages a child takes from it is
// checked across two sets by [CheckParent].
package criuimg
