package main

import (
	"context"
	"fmt"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/incremental"
)

// checkpointStatsJSON is the --print-stats document of checkpoint:
// podman's shape (same keys) plus the engine's phases.
type checkpointStatsJSON struct {
	Duration   int64                     `json:"podman_checkpoint_duration"`
	Containers []checkpointContainerJSON `json:"container_statistics"`
}

type checkpointContainerJSON struct {
	ID              string                 `json:"Id"`
	RuntimeDuration int64                  `json:"runtime_checkpoint_duration"`
	CRIU            *engine.CRIUStatistics `json:"criu_statistics"`
	Phases          []engine.Phase         `json:"ckpt_phases"`
	Incremental     *incrementalStatsJSON  `json:"ckpt_incremental,omitempty"`
	// PreCopy is the pre-copy method of -P and --with-previous:
	// "criu-pre-dump" or "full-dump+dedup".
	PreCopy engine.PreCopyMethod `json:"ckpt_pre_copy,omitempty"`
	// Frozen is how long an export, or a checkpoint that stopped the
	// container, kept it from running, in microseconds: from freezing it
	// until it was thawed or stopped (before an archive is written).
	Frozen int64 `json:"ckpt_frozen_time,omitempty"`
}

// newCheckpointStats is one container's entry of the --print-stats
// document of a checkpoint or an export.
func newCheckpointStats(r *engine.DumpResult) checkpointContainerJSON {
	return checkpointContainerJSON{
		ID: r.Container.ID, RuntimeDuration: r.Runtime.Microseconds(), CRIU: r.CRIU, Phases: r.Phases,
		Incremental: newIncrementalStats(r.Dedup), PreCopy: r.PreCopy, Frozen: r.Frozen.Microseconds(),
	}
}

// incrementalStatsJSON reports the deduplication of a --with-previous
// checkpoint against its pre-checkpoint (incremental.Stats).
type incrementalStatsJSON struct {
	PagesScanned int64 `json:"pages_scanned"`
	PagesWritten int64 `json:"pages_written"`
	PagesParent  int64 `json:"pages_skipped_parent"`
	BytesBefore  int64 `json:"bytes_before"`
	BytesAfter   int64 `json:"bytes_after"`
}

// newIncrementalStats converts Dedup's statistics; nil stays nil.
func newIncrementalStats(st *incremental.Stats) *incrementalStatsJSON {
	if st == nil {
		return nil
	}
	return &incrementalStatsJSON{
		PagesScanned: st.PagesScanned, PagesWritten: st.PagesWritten, PagesParent: st.PagesParent,
		BytesBefore: st.BytesBefore, BytesAfter: st.BytesAfter,
	}
}

// restoreStatsJSON is the --print-stats document of restore.
type restoreStatsJSON struct {
	Duration   int64                  `json:"podman_restore_duration"`
	Containers []restoreContainerJSON `json:"container_statistics"`
}

type restoreContainerJSON struct {
	ID              string                 `json:"Id"`
	RuntimeDuration int64                  `json:"runtime_restore_duration"`
	CRIU            *engine.CRIUStatistics `json:"criu_statistics"`
	Phases          []engine.Phase         `json:"ckpt_phases"`
}

// selection is the containers a command names: by name or ID (args),
// all of them in state want (-a), or the latest (-l).
type selection struct {
	all, latest bool
	args        []string
	want        engine.Status
}

// eachOp is a command run on each selected container.
type eachOp struct {
	selection
	// printStats prints stats, the document op fills, at the end instead
	// of each container's name.
	printStats bool
	stats      any
	op         func(ref string) error
}

// eachSelected selects the containers of x.selection, runs x.op on each
// in turn, and reports like podman: each container's name as op
// succeeds, or with printStats the stats document at the end. A failing
// container does not stop the others; the exit code is the last
// failure's.
func eachSelected(ctx context.Context, env *cmdEnv, c *command, x *eachOp) int {
	refs, msg, err := selectContainers(ctx, env, &x.selection)
	if msg != "" {
		return usageError(env, c, "%s", msg)
	}
	if err != nil {
		return env.fail(err)
	}
	rc := exitOK
	for _, ref := range refs {
		if err := x.op(ref); err != nil {
			rc = env.fail(err)
			continue
		}
		if !x.printStats {
			fmt.Fprintln(env.stdout, ref)
		}
	}
	if x.printStats {
		if err := writeJSON(env.stdout, x.stats); err != nil {
			return env.fail(err)
		}
	}
	return rc
}

// selectContainers applies podman's rule for -a/-l/names and returns the
// references to act on, or a usage message.
func selectContainers(ctx context.Context, env *cmdEnv, s *selection) ([]string, string, error) {
	n := 0
	for _, b := range []bool{s.all, s.latest, len(s.args) > 0} {
		if b {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, "you must provide at least one name or id", nil
	case n > 1:
		return nil, "--all, --latest and containers cannot be used together", nil
	case s.latest:
		c, err := env.eng.Latest(ctx)
		if err != nil {
			return nil, "", err
		}
		return []string{c.ID}, "", nil
	case s.all:
		list, err := env.eng.List(ctx)
		if err != nil {
			return nil, "", err
		}
		var refs []string
		for _, c := range list {
			if c.Status == s.want {
				refs = append(refs, c.ID)
			}
		}
		return refs, "", nil
	}
	return s.args, "", nil
}

func checkpointCmd() *command {
	c := &command{
		name:     "checkpoint",
		synopsis: "checkpoint running containers with CRIU",
		usage:    "ckpt checkpoint [flags] CONTAINER... | -a | -l   (--export FILE: one container)",
		desc: `Dumps each container's processes with CRIU (through runc) into
<root>/containers/<id>/checkpoint and stops the container, which can then be
restored with 'ckpt restore'. With --leave-running it keeps running.
If CRIU fails the container keeps running and the error quotes CRIU's log.

-P/--pre-checkpoint takes a pre-checkpoint for pre-copy migration into
<root>/containers/<id>/pre-checkpoint while the container keeps running;
--with-previous then takes the final checkpoint, in which only the pages
changed since remain (the others are marked in parent). How depends on
'ckpt check': with memory tracking (soft-dirty) -P is a CRIU pre-dump and
the final dump names it as parent, so the final freeze is short, as with
podman; without, -P is a full dump and the final full dump's pages equal
to the pre-checkpoint's are dropped: the final freeze is as long as a full
dump's, the final transfer as small. Without memory tracking -P may be
repeated: each further pre-checkpoint is a delta against the previous one
(kept in pre-checkpoint.<k>), at most 16 in a chain; a full checkpoint or
a restore ends the chain. --print-stats reports the method as
"ckpt_pre_copy" and each deduplication as "ckpt_incremental". -P and
--with-previous cannot be used together.

With --create-image IMAGE it checkpoints one container as --export does
and commits the archive into the image store as the checkpoint image IMAGE:
one layer holding the archive's members (its manifest first, so the image
stays verifiable), with podman's io.podman.annotations.checkpoint.* and
CRI-O's checkpoint annotations. Push it with 'ckpt image push', save it
with 'ckpt image save --format oci-archive' (a docker-archive, which keeps
no annotations, is refused) and restore it with 'ckpt restore IMAGE' on any
host. Not with --export, -P or --with-previous.

With --export FILE it writes one container's checkpoint, container layer
changes and named volumes into a verified archive for 'ckpt restore
--import' on another host. The container is frozen for the dump only
(to a tmpfs with the global --tmpdir): then it stops (or, with -R,
runs on, its layer and volumes copied first) while the archive is written
beside FILE, synced and renamed. If the export fails or is interrupted
there is no FILE and the container keeps running (restored from its dump
if it was stopped). See docs/MIGRATION.md.

With --export - it writes a streamed archive to stdout in one pass, the
container frozen until its last byte (ckpt checkpoint -e - web | ssh HOST
ckpt restore -i -); then it stops (-R: runs on). A broken pipe leaves it
running; a plain pipe has no way back, so a target failing after the last
byte cannot keep it. --confirm-cmd CMD pipes the archive into the shell
command CMD instead and stops the container only once CMD exits 0 (the
target restored it); otherwise it is thawed and runs on:
  ckpt checkpoint -e - --confirm-cmd 'ssh HOST ckpt restore -i -' web

--print-stats prints one JSON document in podman's shape (durations in
microseconds) with the engine's phases added as "ckpt_phases".`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		all := fs.BoolP("all", "a", false, "checkpoint all running containers")
		latest := fs.BoolP("latest", "l", false, "checkpoint the most recently created container")
		var xo engine.ExportOptions
		o := &xo.CheckpointOptions
		fs.BoolVarP(&o.LeaveRunning, "leave-running", "R", false, "leave the container running after checkpointing")
		fs.BoolVar(&o.TCPEstablished, "tcp-established", false, "checkpoint established TCP connections")
		fs.BoolVar(&o.FileLocks, "file-locks", false, "checkpoint file locks")
		fs.BoolVarP(&o.Keep, "keep", "k", false, "keep CRIU's log and statistics files")
		fs.BoolVarP(&o.PreCheckpoint, "pre-checkpoint", "P", false, "take a pre-checkpoint; the container keeps running")
		fs.BoolVar(&o.WithPrevious, "with-previous", false, "final checkpoint: keep only the pages changed since the pre-checkpoint")
		printStats := fs.Bool("print-stats", false, "print statistics as JSON")
		xf := addExportFlags(fs, &xo)
		createImage := fs.String("create-image", "", "checkpoint one container into the checkpoint image `IMAGE` in the image store (for ckpt image push/save and restore IMAGE)")
		rest, code := parse(c, env, fs, args, 0, -1)
		if code >= 0 {
			return code
		}
		if o.PreCheckpoint && o.WithPrevious {
			return usageError(env, c, "--pre-checkpoint and --with-previous cannot be used together")
		}
		sel := selection{all: *all, latest: *latest, args: rest, want: engine.StatusRunning}
		if fs.Changed("create-image") {
			return runCreateImage(ctx, env, c, &imageRun{fs: fs, flags: xf, image: *createImage, opts: xo, sel: sel, printStats: *printStats})
		}
		if xf.used(fs) {
			return runExport(ctx, env, c, &exportRun{fs: fs, flags: xf, opts: xo, sel: sel, printStats: *printStats})
		}
		stats := checkpointStatsJSON{Containers: []checkpointContainerJSON{}}
		return eachSelected(ctx, env, c, &eachOp{selection: sel, printStats: *printStats, stats: &stats, op: func(ref string) error {
			res, err := env.eng.Checkpoint(ctx, ref, o)
			if err != nil {
				return err
			}
			stats.Duration += res.Total.Microseconds()
			stats.Containers = append(stats.Containers, newCheckpointStats(&res.DumpResult))
			return nil
		}})
	}
	return c
}

func restoreCmd() *command {
	c := &command{
		name:     "restore",
		synopsis: "restore checkpointed containers",
		usage:    "ckpt restore [flags] CONTAINER... | -a | -l | --import FILE [--name NAME] | [--name NAME] IMAGE",
		desc: `Restores each checkpointed container in place from its CRIU images; it
runs again with its memory, open files and output pipes as they were, and
logs, exec, stop and checkpoint work as before. The images are removed after
a successful restore unless --keep. If CRIU fails the container stays
checkpointed (restorable) and the error quotes CRIU's log.

With --import FILE (- reads stdin) it restores a new container from an archive made by
'checkpoint --export', by podman, or by the kubelet through CRI-O or
containerd (restored as a standalone container: a note says what of the pod
is lost): the archive is verified into a staging
directory first, the spec is generated here, the base image must already be
in the store (ckpt image pull, load or import; nothing is pulled by restore), and a
CPU the checkpoint cannot run on is refused. Nothing of the archive reaches
this host unless a flag says so: each bind mount the container had needs a
path of this host (-v SRC:DST) or --ignore-binds (an empty one), and a
container that used its host's network needs --network host, and processes
that held capabilities beyond ckpt's default set need them granted with
--cap-add (a containerd pod's: CAP_NET_RAW,CAP_MKNOD,CAP_AUDIT_WRITE)
(docs/SECURITY.md). A failed import leaves nothing behind. --name restores a copy under a new name and ID. A final checkpoint
taken --with-previous needs its pre-checkpoint archives: give each with
--import-previous FILE, in any order; a missing, extra or mismatched one is
refused before anything is restored.

Given one IMAGE that is no container but a checkpoint image in the store
(checkpoint --create-image, image pull/load), it restores a new container
from it as --import does from an archive, with the same checks and the
--import flags (--name, -v, ...). An image that is not a checkpoint is
refused.

IMAGE may also be containerd:DIR@sha256:DIGEST, a containerd 1.x checkpoint
image (ctr containers checkpoint --task [--image] [--rw]) read from the
content store of the containerd root DIR (or an OCI layout's blobs), DIGEST
its index's (ctr images ls), every blob's digest checked.

--print-stats prints one JSON document in podman's shape (durations in
microseconds) with the engine's phases added as "ckpt_phases".`,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		all := fs.BoolP("all", "a", false, "restore all checkpointed containers")
		latest := fs.BoolP("latest", "l", false, "restore the most recently created container")
		var o engine.RestoreOptions
		fs.BoolVarP(&o.Keep, "keep", "k", false, "keep the checkpoint images and CRIU's log")
		fs.BoolVar(&o.TCPEstablished, "tcp-established", false, "restore established TCP connections")
		fs.BoolVar(&o.TCPClose, "tcp-close", false, "restore but close established TCP connections")
		fs.BoolVar(&o.FileLocks, "file-locks", false, "restore file locks")
		printStats := fs.Bool("print-stats", false, "print statistics as JSON")
		imf := addImportFlags(fs)
		rest, code := parse(c, env, fs, args, 0, -1)
		if code >= 0 {
			return code
		}
		ir := &importRun{c: c, fs: fs, flags: imf, o: &o, all: *all, latest: *latest, args: rest, printStats: *printStats}
		if img := imageArg(ctx, env, ir); img != "" {
			ir.image, ir.args = img, nil
			return runImport(ctx, env, ir)
		}
		if imf.used(fs) {
			return runImport(ctx, env, ir)
		}
		if o.TCPEstablished && o.TCPClose {
			return usageError(env, c, "--tcp-established and --tcp-close cannot be used together")
		}
		stats := restoreStatsJSON{Containers: []restoreContainerJSON{}}
		sel := selection{all: *all, latest: *latest, args: rest, want: engine.StatusCheckpointed}
		return eachSelected(ctx, env, c, &eachOp{selection: sel, printStats: *printStats, stats: &stats, op: func(ref string) error {
			res, err := env.eng.Restore(ctx, ref, &o)
			if err != nil {
				return err
			}
			stats.Duration += res.Total.Microseconds()
			stats.Containers = append(stats.Containers, restoreContainerJSON{
				ID: res.Container.ID, RuntimeDuration: res.Runtime.Microseconds(), CRIU: res.CRIU, Phases: res.Phases,
			})
			return nil
		}})
	}
	return c
}
