// Package volumes manages named volumes, exports them into checkpoint
// archives as volumes/<name>.tar and imports them from archives, and checks
// recorded bind mounts on the restoring host.
//
// # Layout
//
// A Store keeps each volume in Root/<name>/, as podman does:
//
//	Root/<name>/_data         the content, the directory containers mount
//	Root/<name>/volume.json   metadata: version, name, created_at, driver "local", labels
//
// Names follow format.ValidVolumeName (podman's rule). A volume directory
// without volume.json (an engine that only made _data) is a volume without
// labels. Staging directories (".create-*", ".import-*", ".remove-*") live
// in Root too; their leading dot keeps them apart from every valid name.
//
// # Invariants
//
//   - A volume appears whole or not at all. Create and Import build it in a
//     staging directory beside the volumes, make it durable (syncfs) and
//     rename it into place with renameat2(RENAME_NOREPLACE); Remove renames
//     it away before deleting its content. Concurrent operations on one
//     name (in one process or several) cannot interleave into a mixed
//     volume: one Create or Import wins, the others get ErrExists.
//   - An existing volume is never replaced or modified by Import: ErrExists
//     (the engine's import then says to keep it or remove it first:
//     podman's rule).
//   - A failed Create or Import leaves nothing behind in Root: no volume
//     and no staging directory. Only a killed process can leave a staging
//     directory; Cleanup removes those whose process is gone (each is
//     flock'ed while in use).
//   - Import treats its tar as hostile. It extracts only through
//     rootfs.Apply, which resolves every path beneath the new _data
//     without following symbolic links: nothing outside the volume is
//     written, linked, chmodded or removed; "..", absolute names, links
//     out, hardlinks to anything but a file of the same tar, overlay
//     whiteouts and (unless ImportOptions allows them) device nodes and
//     FIFOs are refused; rootfs's size limits apply. After the tar, the
//     stream is read to its end so a verifying archive reader checks the
//     member's digest before the volume appears.
//   - Export streams the content as a deterministic tar (rootfs.WriteDiff:
//     sorted names, PAX, mode, owner, nanosecond mtime, user.* and
//     security.capability xattrs, symlinks, hardlinks within the volume,
//     devices and FIFOs; sockets left out), never staging it on disk, so
//     format.StreamSource can read it twice. Export followed by Import
//     reproduces the tree, and exporting the copy gives the same bytes.
//   - Bind mounts are records (BindMount), never archive content: restore
//     mounts the target host's own source, and CheckBindSources names every
//     source missing there.
//
// Errors name the operation and the volume ("import volume data: ...") and
// wrap this package's sentinels, rootfs's sentinels for what the tar held,
// or operating-system errors.
//
// Create, Import, Remove, Cleanup and Export need Linux (renameat2, syncfs,
// flock, rootfs); elsewhere they return errors.ErrUnsupported.
package volumes
