// Package engine is ckpt's minimal container engine: it runs containers
// from a containers/storage image store under runc and checkpoints and
// restores them in place with CRIU (driven by runc).
//
// # Layout
//
// Everything lives under [Engine.Root] (default /var/lib/ckpt):
//
//	containers/<id>/state.json           the container's state ([Container]), replaced atomically
//	containers/<id>/lock                 flock(2) held by the one operation in progress
//	containers/<id>/config.json          the OCI spec; the directory is runc's bundle
//	containers/<id>/ctr.log              the container's stdout and stderr (k8s-file records)
//	containers/<id>/exit.json            written by the monitor when init exits
//	containers/<id>/op.json              the record of the operation in progress (journal.go)
//	containers/<id>/start.json           the monitor's record of its last start or restore
//	containers/<id>/checkpoint/          CRIU images of the last checkpoint
//	containers/<id>/pre-checkpoint/      the latest pre-checkpoint (checkpoint -P)
//	containers/<id>/pre-checkpoint.<k>/  level k < n of a chain of n pre-checkpoints
//	containers/<id>/work/                CRIU's dump.log, restore.log and statistics
//	import/staging-*/                    an import's staging directory (or under TmpDir)
//	import/staging-*.json                its record; staging-*.lock its lock
//	containers/<id>/export-images/       images of a -R or streamed export, until it is written
//	                                     (a streamed export's pages-*.img are FIFOs there)
//	logs/<time>-<id12>/                  restore.log and runc.log of failed restores
//	volumes/<name>/_data                 named volumes
//	storage/                             containers/storage graph root (StorageRoot)
//	image-tmp/                           blobs of image transfers, unpacked oci-archives, blob cache
//
// Runtime state (runc's --root and the storage run root) is under
// [Engine.RunRoot], by default /run/ckpt-<hash of Root>, and containers'
// cgroups under /ckpt-<hash of Root>/<id> in every hierarchy, so two
// engines with different roots never share anything. (Containers of an
// older ckpt keep the cgroup /ckpt/<id> their record does not name.)
//
// # Invariants
//
//   - state.json is only written with write-temp, fsync, rename, fsync-dir;
//     a reader never sees a partial record.
//   - Every operation that changes a container (run, start, restart, stop,
//     rm, checkpoint, restore) holds the container's lock and refuses with [ErrBusy] if
//     another holds it; it never waits behind it.
//   - A running container has a monitor: `ckpt __monitor` ([RunMonitor]),
//     a detached child subreaper that created the container's stdio as
//     pipes, runs runc, copies the output to ctr.log as podman's k8s-file
//     records (a time, the stream, F or P, the text: logfmt.go; appended,
//     so a restore continues the history an archive brought), reaps init
//     and writes exit.json once the output is in ctr.log. It never takes
//     the lock while the container runs: the exit record is merged into
//     the state when it is read, if it comes from the current monitor.
//     CRIU can dump the container because its stdio are pipes (not host
//     files); on restore runc re-wires them to the new monitor's pipes.
//     The container's stdin is at EOF unless it was run with OpenStdin:
//     then it is the attached caller's pipe ([RunOptions.Stdin]), or a
//     pipe the monitor keeps open and nothing writes to (also after a
//     restore).
//   - A container run with Terminal (-t) has a pseudo-terminal instead:
//     runc sends its master over a console socket (tty.go) and the monitor
//     holds it, copying its output to ctr.log (as stdout, with the
//     terminal's \r\n) and to an attached caller's pipe, and the caller's
//     stdin and window sizes to it. CRIU dumps the terminal's slave end
//     with the container; a restore (in place or of an import, which
//     takes Terminal from the archive's spec) hands runc a new console
//     socket and the new monitor holds the new master.
//   - A container run with Remove (--rm) is removed by its monitor after
//     it exited: once the attached caller has closed [RunOptions.Hold],
//     under the container's lock (waiting for an operation that holds it),
//     if it exited under that monitor or an export stopped it. An in-place
//     checkpoint of such a container is refused, as by podman.
//   - With network "none" the engine creates the container's network
//     namespace itself, brings loopback up in it and pins it at
//     RunRoot/netns/<id>; the spec joins it by path. runc then hands it to
//     CRIU as an external namespace, and a restore goes back into the same
//     namespace with loopback up, so established loopback TCP connections
//     survive (--tcp-established). runc alone would restore a fresh netns
//     with loopback down. rm unpins it; a restore after a reboot pins a
//     new one.
//   - A checkpoint (in place, -P or export) of a container one of whose
//     processes is stopped by a signal (state T) is refused before runc
//     runs ([ErrUnsupported], naming the process and `kill -CONT`): CRIU's
//     seize of a stopped task in the frozen cgroup would hang until its
//     time limit (stopped.go). A listening socket with connections not yet
//     accepted makes CRIU refuse ("In-flight connection"); the error's hint
//     says so.
//   - A failed checkpoint leaves the container running; a failed restore
//     leaves it checkpointed with its images ([*StateError] says so, an
//     import's says it was rolled back). Errors from runc and CRIU are
//     [*ExitError] values naming the log file and quoting its last errors
//     (read from the last 256 KiB only); a failed restore's logs move to
//     Root/logs, where the rollback of an import does not remove them,
//     and an error never names a log that is not there.
//   - Checkpoint, export, restore, run (and start, journalled as a run)
//     and import journal themselves
//     (journal.go): an operation writes its record (op.json; an import's
//     in import/, because it makes volumes before its container exists)
//     before its first change, naming what it will make, and removes it
//     once it has finished or undone its work. A record whose lock is
//     free belongs to a ckpt process that was killed, and every command
//     that loads a container (List, hence ps, inspect, logs, and lock,
//     hence restore, rm, checkpoint, ...; a new import) reconciles it
//     first (reconcile.go), so after a kill -9 at any point the next
//     command finds: a container a dump stopped, checkpointed with that
//     dump's images (restorable); one whose init still runs, running,
//     thawed, without the images of a dump it did not record; a container
//     a monitor started or restored, running under that monitor; one it
//     did not, as it was (created, checkpointed); an import whose
//     container was not restored, undone entirely (container, storage
//     layer, netns, the volumes it made, staging directory); no
//     temporary archive, layer copy, CPU probe or CRIU configuration.
//     `runc checkpoint` inherits the container's lock and the monitor
//     holds it until it has written start.json, so a dump or restore a
//     killed process started finishes first ([ErrBusy] meanwhile, saying
//     so).
//   - An import from a stream ([Engine.ImportStream], restore -i -) reads
//     it once, front to back, and stops reading at its first failure, so
//     that the writer of a pipe sees it break; it refuses from the
//     declared manifest what it can (architecture, base image, name or
//     ID in use) before the pages, and makes the same checks as a file's
//     import after. A streamed export with [ExportOptions.Confirm] keeps
//     its container frozen and alive after the last byte until Confirm
//     returns: nil stops it, an error thaws it ([ErrNotConfirmed]).
//   - CKPT_TEST_STOP_AT (testStopEnv) is the fault tests' hook: it only
//     stops the process (SIGSTOP) at a named point; SIGCONT goes on.
//   - Nothing the engine removes leads outside the tree removed: trees
//     runc or CRIU wrote into are removed with fsutil.RemoveAll (mounts
//     below detached first, no mount point entered, no symbolic link
//     followed), and `runc delete` (which removes runc's state directory
//     with os.RemoveAll) runs only after what runc left mounted there and
//     below the container's root is unmounted (teardown.go). A failed
//     restore also unmounts CRIU's cgroup yard, kills and removes the
//     container's cgroups (only the engine's own, per-root ones) and the
//     /tmp/.criu.mntns.* directory its CRIU's log names.
//   - runc checkpoint and runc restore, and the CRIU under them, run in a
//     process group of their own that is killed past [CRIULimits] (time
//     proportional to the work, log size): [ErrTimeout], [ErrLogLimit].
//     A cancelled context stops a restore (the monitor is told with
//     SIGTERM, its session killed if it does not stop) and leaves the
//     container checkpointed, or an import rolled back; a dump is never
//     interrupted by it (only by the limits). A monitor ignores SIGTERM
//     once its container runs.
//   - What a killed operation left is removed by the next one (besides
//     what reconcile undoes): staging directories whose lock is free and
//     that no record names, and, under a container's lock, a dead
//     export's cpuinfo-*, export-images/ and layer copies. Close
//     removes the default run root once the root has no container and no
//     other process has the store open (shared lock on Root/runroot.lock).
//   - Checkpoint and restore refuse to start without root ([ErrNotRoot]) or
//     CRIU 4.0 or newer ([ErrCRIUMissing]).
//   - Pre-checkpoints form a chain (precopy.go): level 1 is a full dump,
//     each later -P (PreCopyDedup) is a full dump deduplicated against the
//     level below and links parent -> ../pre-checkpoint.<k>; the final
//     checkpoint links checkpoint/parent -> ../pre-checkpoint. Every level
//     stays on disk while [Container.PreCheckpoint] records it, and is
//     checked (images digest, parent link) before an in-place restore. A
//     chain is at most format.MaxParentDepth deep; a -P beyond is refused.
//     A failed -P leaves the chain as it was; a full checkpoint and an
//     in-place restore end it. An import stages the chain it is given in
//     the same layout, after ordering and checking the archives by their
//     manifests alone.
//
// # Migration
//
// [Engine.Export] writes a running container's checkpoint, layer changes
// and named volumes into a v1 archive atomically; the container is frozen
// for the dump only (thawed, or stopped and restored in place from its
// dump if the archive fails), and an archive path it cannot write to
// (a missing directory) is refused before the container is looked up;
// [Engine.Import] restores such an archive, or a podman one, or a kubelet
// checkpoint of CRI-O or containerd (kubelet.go: a standalone container
// named after its Kubernetes name, ImportResult.PodLost saying what of the
// pod is not restored), as a new container after verifying it into a
// staging directory, generating the spec locally and checking the CPU, and
// rolls everything back on failure. The container's capabilities are the
// default set plus only those the user grants (ImportOptions.CapAdd),
// never the archive's; an archive whose record says its processes held
// more is refused with RemedyCapAdd.
// A file that is no checkpoint archive at all is named for what it looks
// like (format.Sniff: text, a root filesystem tar, an image archive) before
// anything is extracted, and [Engine.ImageImport] refuses image and
// checkpoint archives likewise ([ErrNotRootfs]).
// A streamed export (ExportOptions.Stream or Output, stream.go) writes a
// version-2 archive in one pass, possibly to a pipe: the pages images
// flow from CRIU through FIFOs into it during the dump; the container
// stays frozen (from CRIU's pre-dump action, CRIU leaving it so) until
// the archive is complete, then is killed and recorded exited (without LeaveRunning); any
// failure, a reader gone included, thaws it and it runs on.
// A sealed export (ExportOptions.SealTo, format/seal) encrypts the archive
// as it is written, to the file or the stream; a sealed import
// (ImportOptions.Identities, sealed.go) opens the envelope's header with
// the keys before the staging directory is made, and a payload that fails
// to authenticate later fails the extraction, which removes the staging.
// Each level of a pre-copy chain may be sealed: the import checks the keys
// against every --import-previous archive too before staging anything.
// docs/MIGRATION.md describes them.
//
// # Images
//
// [Engine.ImagePull], [Engine.ImagePush], [Engine.ImageLoad] and
// [Engine.ImageSave] copy images with containers/image (transport.go,
// imagexfer.go): registries (docker://), OCI layouts and archives,
// docker-archives and other containers/storage stores (podman's,
// containers-storage:[GRAPHROOT]NAME, opened for the copy and shut down
// after it). Invariants:
//
//   - An image in the store has its config's digest as ID and keeps its
//     manifest and config: [Engine.Run] without a command runs the image's
//     entrypoint and command with its environment, working directory and
//     user where [RunOptions] leave them unset (imageconfig.go; podman's
//     rules). An import's container takes its process from the archive's
//     record, never from the image. ImageImport's images have no manifest
//     and cannot be pushed or saved.
//   - Images from outside are untrusted archives: containers/image checks
//     every blob's digest and size and bounds manifests and configs; ckpt
//     adds the limits of package internal/imagexfer (shared with
//     ckptinspect) before it reads a layout (index.json
//     and oci-layout regular and at most MaxLayoutIndex bytes, at most
//     MaxLayoutManifests manifests per index, each manifest and nested
//     index a regular blob of at most MaxLayoutIndex bytes with the
//     digest its index lists, nothing but
//     directories and regular files under blobs/), unpacks an oci-archive itself (at most
//     MaxArchiveMembers members, directories and regular files with local
//     names, written through os.Root), refuses a layer a layout or archive
//     would fetch from a URL, and, after the copy, a layer whose tar names
//     or hard link targets lead out of the layer or that holds a device
//     node. A refused or failed pull
//     removes the image (unless it was there before) and every layer it
//     added that nothing uses; [ErrHostileImage] names what was refused.
//   - ImageSave writes an archive beside its target and renames it after
//     fsync; a failed save leaves no file there.
//   - No signature policy is applied (podman's default policy.json accepts
//     any image as well); credentials are read as podman reads them.
//   - A checkpoint image (checkpointimage.go) is an image of one layer
//     whose tar stream is a whole uncompressed archive, manifest first,
//     with podman's and CRI-O's checkpoint annotations on its OCI
//     manifest. [Engine.CheckpointImage] writes the archive with Export
//     under image-tmp and copies an OCI layout of it into the store as a
//     pull does (every check of a pull runs); a failed commit restores a
//     container the export stopped. [Engine.RestoreImage] refuses an
//     image without a checkpoint annotation ([ErrNotCheckpointImage]) or
//     with more than one layer, and streams the layer as the store gives
//     it back (the bytes whose digest the copy checked against the
//     config's diff ID) into an import: the same extraction, limits and
//     checks as an archive file, nothing of it read from the image's
//     mounted file system.
//   - A containerd 1.x checkpoint image ([TransportContainerd],
//     containerd.go) is read from containerd's content store by its
//     index's digest, never from its metadata database, every blob's size
//     and digest checked (format.OpenContainerdCheckpoint), and streamed
//     into an import as a legacy archive (its WriteArchive); nothing of it
//     enters the image store.
//
// # Life cycle and volumes
//
// [Engine.Start] starts a created or exited container afresh: same bundle,
// same container layer, a new monitor (runc's state of the last run
// deleted first); it refuses a checkpointed one, which only
// [Engine.Restore] resumes. A failed start leaves the container as it
// was, its last exit code kept. [Engine.Wait] polls the record until the
// container is neither running nor created. Named volumes (volume.go)
// are the volumes package's store; one is in use while any container
// record mounts it, and [Engine.VolumeRemove] with force removes those
// containers first.
//
// # Seams for import
//
// [Engine.Create] makes a container (storage layer, netns, bundle) without
// starting it; [RestoreOptions.ImageDir] restores any container that is not
// running from CRIU images kept elsewhere (never removed), and
// [RunOptions.ID] keeps a checkpointed container's ID. An import verifies
// its archive into a staging directory, calls Create, fills the container
// layer at [Container.Rootfs], then Restore with ImageDir; on failure it
// calls [Engine.Remove].
//
// # Errors
//
// Errors wrap the sentinels of errors.go, matched with [errors.Is]; none
// is matched by its text. An error an option (or a step first) would get
// past is a [*RemedyError], returned unwrapped: its Remedy names the
// option, and its message gives the advice in this package's terms
// (ImportOptions.Name, Engine.TmpDir), which a command line words in its
// flags instead (cmd/ckpt). What a failed operation left of its container
// is a [*StateError]; what its undo could not undo, an [*UndoError].
//
// Every method takes a context first; external tools run with
// exec.CommandContext, except the monitor, which must outlive the call.
// Command lines are built by small functions that the tests check
// against fake runc and criu scripts.
package engine
