// Package rootfs captures a container's root file system changes for a
// checkpoint archive and applies them on restore.
//
// # Capture
//
// [Changes] compares the container root (the merged view the container
// sees) with the image root and lists every [Added], [Modified] and
// [Deleted] path. Two paths give the same result:
//
//   - the full walk compares type, mode, owner, size, mtime (directories
//     included), link count, link target, device number and the kept
//     extended attributes, and reads both files when all of that matches
//     and the two are not the same inode: a file rewritten with the same
//     size and mtime is still Modified. (Podman 5.4.2 loses modified files
//     because it stats the change's path on the host instead of in the
//     container root.)
//   - with [ChangesOptions].Upper, only the paths the overlayfs upper
//     directory holds are examined: a character device 0/0 is a deletion,
//     and a directory marked opaque or redirected (trusted.overlay.* or
//     user.overlay.* xattrs) is compared in full against the image.
//
// Mount points in the container root (volumes, bind-mounted files such as
// /etc/hosts, /proc, /dev/shm) are not part of the container's layer: they
// are skipped, with everything below them, whether or not the caller lists
// them in [ChangesOptions].Skip, and nothing is read through them. Paths in
// Skip are neither compared nor reported either. A deleted directory is
// listed once.
//
// [WriteDiff] streams rootfs-diff.tar for the Added and Modified paths:
// deterministic PAX tar, sorted names, hardlinks within the diff kept as
// links, extended attributes as SCHILY.xattr.* records. Device nodes and
// FIFOs are written only when [WriteOptions] asks; sockets never.
// [WriteDeleted] writes deleted.files as podman does: a JSON array of
// paths with a leading slash, such as "/etc/motd".
//
// # Extended attributes
//
// Only user.* (except user.overlay.*) and security.capability are captured
// and restored. trusted.* (including overlayfs's own trusted.overlay.*),
// security.selinux and the other security.* labels, and system.* (POSIX
// ACLs) are ignored: they belong to the host, not to the container.
//
// # Apply
//
// [Apply] removes the deleted paths, then extracts the diff (plain tar, or
// gzip as containerd writes it), into a new container's root. Every path is resolved beneath the root with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV), or one
// component at a time with O_NOFOLLOW and a mount check where openat2 is
// unavailable; every change is then made
// with a *at system call on the parent directory's descriptor, or on the
// file's own descriptor, never by path. So no symbolic link is ever
// followed, neither one already in the root nor one the diff created, and
// nothing outside the root is read, written, linked, chmodded or removed.
// (os.Root is not used because it follows symbolic links inside the root
// and, per its documentation, its Chmod and Chtimes may act on a link
// swapped in meanwhile.)
//
// Apply refuses, and stops at the first such entry:
//
//   - names and deleted paths that are empty, absolute, not clean, contain
//     ".." or NUL, or have a component starting with ".wh." (overlay
//     whiteouts): [ErrInsecurePath]; deleted.files entries may carry one
//     leading slash, as podman writes them;
//   - an entry or deleted path whose parent, in the root, is a symbolic
//     link or not a directory, or that is or lies below a mount point (a
//     volume mounted too early), including removing a directory that holds
//     one: [ErrInsecurePath]. Symbolic links themselves
//     may have any target, absolute or with "..": they are created, never
//     followed;
//   - "." as anything but a directory, and deleting ".": [ErrInsecurePath];
//   - hardlinks whose target is not a regular file extracted earlier from
//     the same diff: [ErrInsecurePath];
//   - device nodes and FIFOs unless [ApplyOptions] allows them, and a
//     character device 0/0 (a whiteout) always: [ErrSpecialFile],
//     [ErrInsecurePath];
//   - duplicate names, a name below an entry that is not a directory,
//     unknown entry types, truncated entries and a malformed stream:
//     [ErrFormat];
//   - more than [MaxEntries] entries, a file over [MaxEntrySize], more
//     than [MaxTotalSize] in total (ApplyOptions may lower these three),
//     names over [MaxNamesSize] in total, paths over [MaxPathLength] or
//     with a component over [MaxNameLength],
//     link targets over [MaxLinkTargetLength], more than [MaxXattrs]
//     extended attributes or one over [MaxXattrSize], more than
//     [MaxDeletedFiles] deleted paths: [ErrTooLarge].
//     Sizes are checked against the header before any byte is written.
//
// The limits that bound what an archive holds are package format's
// (format/limits.go): [ReadDeleted] reads deleted.files through
// format.ReadDeletedFiles and the deleted paths follow
// format.CheckDeletedPath, so what format.Verify and format.Extract
// accept, Apply accepts.
//
// Apply refuses the host's own root directory as root ([ErrInsecurePath]).
//
// Apply allows: replacing an existing file, symbolic link or directory
// (removed with everything below it) by an entry of another type; keeping
// an existing directory when the entry is a directory; creating missing
// parent directories (mode 0755, owned by the caller); deleted paths that
// do not exist.
//
// Setuid and setgid bits: a regular file is created without them; once
// every directory's final mode is set, the bits are restored only if no
// directory above any of the file's names, up to the root, is writable by
// others. Under a world-writable directory (such as /tmp) the bits are
// stripped. Device nodes and FIFOs never get them. Directories keep setgid
// and sticky bits.
//
// Files are created with O_EXCL, owner is set before mode (chown clears
// setuid bits) and mode before extended attributes (chown clears
// security.capability). Directory metadata is set after all entries, so
// read-only directories and directory mtimes come out right; a directory
// the diff does not list gets back the times it had before Apply added or
// removed entries in it. Apply checks its context before each deleted path
// and each entry.
//
// Names are Linux file names: a backslash or a byte that is not UTF-8 is an
// ordinary character, and case matters, so the archive-member rules about
// backslashes and case-folding do not apply here.
//
// [Changes], [WriteDiff] and [Apply] return [errors.ErrUnsupported] on
// systems other than Linux; [DeletedFiles], [WriteDeleted] and
// [ReadDeleted] work everywhere.
package rootfs
