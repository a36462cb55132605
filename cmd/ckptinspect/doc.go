// Command ckptinspect shows, inspects, verifies, diffs and fuzzes
// checkpoint archives offline: ckpt v1 archives and the legacy archives of
// podman, CRI-O and containerd. It never runs CRIU and needs no root.
//
// Usage:
//
//	ckptinspect show ARCHIVE... [--json | --format table|json] [--full] [--verify]
//	ckptinspect inspect ARCHIVE... [--ps-tree] [--ps-tree-cmd] [--ps-tree-env] [-p PID]
//	        [--files] [--sockets] [--mounts] [--stats] [--metadata] [--all]
//	        [--json | --format tree|json] [--parent FILE]...
//	ckptinspect memparse ARCHIVE [--pid N] [-s STRING | -r REGEX] [-c N]
//	        [--json | --format table|json] [--parent FILE]...
//	ckptinspect verify ARCHIVE... [--json | --format text|json] [--require-manifest] [--parent FILE]...
//	ckptinspect diff A B [--json | --format tree|json] [--parent FILE]...
//	ckptinspect fuzz SEED... [--duration D | --iterations N] [--seed S] [--sealed] [--out DIR]
//	        [--json | --format text|json]
//	ckptinspect completion bash|zsh|fish
//
// Completion (the hidden `ckptinspect __complete`) and the man pages
// (`ckptinspect __man DIR`) are made from the command table (gen.go,
// internal/cligen).
//
// show prints one row per archive, led by its FILE (the path as given). Of
// a ckpt archive it reads the manifest, and config.dump for the creation
// time only when at most 64 MiB of members come before it (or with
// --full or --verify): otherwise CREATED is "-". Of an archive without
// manifest it reads the tar headers, config.dump and spec.dump, hashing
// nothing: an uncompressed file by seeking from header to header, a
// compressed one only up to config.dump and spec.dump unless --full, its
// sizes then "-". A figure left unread is "-" with a note on stderr
// ("show: note: FILE: ... show --full") and listed in the JSON's
// "unknown". inspect, memparse and
// diff read each archive once; CRIU images are bounded before they are
// decoded and pages are copied to a private temporary directory only when
// memory contents are needed. verify reports every problem in one pass.
//
// Checkpoint chains: show's CHAIN column tells a full checkpoint, a
// pre-checkpoint, or an incremental one ("delta of <parent manifest
// digest> depth N", its size the delta's). --parent FILE, repeatable,
// nearest parent first, gives inspect, memparse, diff and verify the
// parent archives of an incremental checkpoint: the chain is checked
// (format.CheckChain) before use, and memory marked in parent is read from
// them. Without it that memory is reported as "in parent (not given)".
//
// Sealed archives (docs/FORMAT.md §11): show, inspect, memparse, verify
// and diff take --decrypt-key FILE (repeatable: SSH private keys, age
// identity files). A sealed archive given such a key is decrypted, and
// authenticated, whole into an anonymous memory file (a memfd, never a
// file on disk; Linux only) and read as the archive inside, under the
// name given. Without a key show lists it with FORMAT and VERIFIED
// "sealed", its figures "-", and a note naming its recipients and the
// flag; the others refuse it (exit 2) naming the flag, or, with keys of
// none of its recipients, the recipients.
//
// Checkpoint images: wherever an ARCHIVE (or --parent FILE) goes, a
// checkpoint image may be given: an oci-archive or docker-archive file, an
// OCI layout directory (told apart from archives by their contents), or a
// reference oci:DIR[:NAME], oci-archive:FILE[:NAME], docker-archive:FILE,
// docker://REF (with --tls-verify and --authfile, podman's) or
// containers-storage:[GRAPHROOT]NAME; or containerd 1.x's checkpoint image,
// containerd:DIR[@sha256:DIGEST] or its OCI layout directory, written as
// the archive it holds (format.ContainerdCheckpoint: every blob's digest
// checked). An OCI image's one layer is copied out,
// decompressed, into an unlinked temporary file (internal/imagexfer:
// layout bounds, the manifest's, config's and layer's digests checked)
// and read as the archive it holds, under the name given. An image
// without a checkpoint annotation, or whose layer is no checkpoint
// archive, is refused in one line ("not a checkpoint image: ..."), never
// shown as an empty archive: exit 1, or 2 for verify and diff.
//
// Exit codes: 0 success (verify: clean; diff: identical), 1 failure
// (verify: problems found; diff: differences; fuzz: a finding), 2 usage or
// trouble reading an archive (verify and diff, as diff(1)).
//
// Every command that prints data takes --json and --format json, the same
// thing: one document with "version": 1, whose types are documented in
// package inspect (fuzz's: seed, execs, elapsedSeconds, execsPerSecond,
// findings). --json with --format of the human format is a usage error.
// Human output may change between releases; scripts should use JSON.
package main
