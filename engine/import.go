package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/internal/fileio"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/rootfs"
	"github.com/ckpt/ckpt/volumes"
)

// ImportOptions configures [Engine.Import]; the zero value restores the
// archive's container under its recorded name and ID, with its layer
// changes and named volumes, as `podman container restore --import` does.
type ImportOptions struct {
	// RestoreOptions are the restore's (TCPEstablished, TCPClose,
	// FileLocks, Keep), except ImageDir, which must be empty: the import
	// restores from its staging directory. Keep keeps the extracted CRIU
	// images (as the container's checkpoint directory) and CRIU's
	// restore.log; TCPEstablished cannot be used with Name.
	RestoreOptions
	// Name restores the container under this name with a new ID, so one
	// archive can be restored many times. Not with TCPEstablished (two
	// copies cannot own one connection).
	Name string
	// IgnoreRootfs does not apply the archive's container layer changes.
	IgnoreRootfs bool
	// IgnoreVolumes does not import the archive's named volumes: volumes
	// of those names are used as they are on this host (created empty if
	// missing). Without it an existing volume of the same name is an
	// error.
	IgnoreVolumes bool
	// Binds give the checkpoint's bind mounts paths of this host, by
	// destination (-v SRC:DST[:ro]). The archive's own bind sources are
	// never used: every bind mount it records must be mapped here or
	// dropped with IgnoreBinds, otherwise the import is refused with
	// ErrHostResource naming each one.
	Binds []BindMap
	// IgnoreBinds restores every bind mount not mapped in Binds as an
	// empty directory (or file) of the engine's.
	IgnoreBinds bool
	// CapAdd grants the container capabilities beyond the engine's
	// default set, which the archive's processes held (containerd's
	// default set has CAP_NET_RAW, CAP_MKNOD and CAP_AUDIT_WRITE more);
	// an import needing one not granted is refused with RemedyCapAdd.
	CapAdd []string
	// Network is the user's --network: NetworkHost is required to restore
	// a checkpoint that ran in its host's network namespace; "" keeps a
	// private one.
	Network string
	// IgnoreStaticIP and IgnoreStaticMAC are accepted for podman
	// compatibility; ckpt containers have no static addresses (network
	// "none" or "host"), so there is nothing to ignore.
	IgnoreStaticIP, IgnoreStaticMAC bool
	// Progress, if set, is called with the archive bytes read so far and
	// the archive's size.
	Progress func(read, total int64)
	// Phase, if set, is called with the name of each step that follows
	// reading the archive, as it begins: "check", "volumes", "create",
	// "apply_rootfs", "restore" (CRIU), "record" (the journal's phases).
	Phase func(name string)
	// Previous are the pre-checkpoint archives (checkpoint -P --export) a
	// final checkpoint taken --with-previous depends on (podman's
	// --import-previous, which may be repeated), in any order: the whole
	// chain when -P was taken more than once. They are ordered by the
	// manifests' parent references and the chain checked with
	// format.CheckChain before any of them is extracted; a missing,
	// extra, repeated or mismatched one is refused. Each is then verified
	// and extracted like the archive, before anything is created.
	Previous []string
	// Identities open a sealed archive (format/seal): SSH private keys or
	// age identities. A sealed archive without one that opens it is
	// refused (seal.ErrNoKey, seal.ErrWrongKey) before anything is made;
	// an unsealed one ignores them.
	Identities []age.Identity
	// Trust, if set, requires the archive (and each of Previous) to be
	// sealed and signed by one of these keys: the signature is checked
	// over the whole file before anything is made (seal.ErrUnsigned,
	// seal.ErrUntrusted, seal.ErrSignature). Without it a signed archive's
	// signature is checked all the same, and its signer reported
	// (ImportResult.Signer).
	// ImportStream refuses it (a stream cannot be checked whole first).
	Trust seal.Trust
}

// ImportResult describes an import.
type ImportResult struct {
	// Container is the restored, running container.
	Container *Container
	// Manifest is the archive's manifest (synthesized for legacy archives).
	Manifest *format.Manifest
	// Legacy reports an archive without a manifest (podman, CRI-O,
	// containerd): its structure was checked but it carried no digests.
	Legacy bool
	// Signer names the key that signed a signed archive (checked), or "".
	Signer string
	// Kube is the pod of a kubelet checkpoint archive (CRI-O, containerd),
	// restored as a standalone container; PodLost says what of the pod
	// was not restored.
	Kube    *format.Kube
	PodLost []string
	// Restore is the restore's own result.
	Restore *RestoreResult
	// Total is the whole operation's duration.
	Total time.Duration
	// Phases are the steps, in order.
	Phases []Phase
}

// ErrIncompatible reports an archive taken on a machine this host cannot
// restore (another architecture, or a CPU missing features the source had).
var ErrIncompatible = errors.New("engine: checkpoint incompatible with this host")

// Import restores a container from a checkpoint archive at path, written
// by [Engine.Export] or by podman (legacy archives), treating the archive
// as if it came from a stranger:
//
//   - A file without a manifest that is no checkpoint archive at all (text,
//     a root filesystem tar, an image archive: format.Sniff) is refused
//     with format.ErrNotCheckpoint, saying what it looks like, before
//     anything is extracted.
//   - The whole archive is extracted into a staging directory under Root
//     and every member verified (format.Extract) before any container
//     record, name, storage layer or volume is created.
//   - The OCI spec is generated locally from the recorded process (command
//     and environment) and named volumes; spec.dump's hooks, namespace
//     paths, devices and capabilities are never used. What would give the
//     container something of this host comes from the user's options
//     only: each recorded bind mount gets the source of a matching
//     [ImportOptions.Binds] entry or, with IgnoreBinds, an empty stand-in
//     (the archive's sources are never mounted), and the host's network
//     needs [ImportOptions.Network] "host"; otherwise ErrHostResource.
//   - The base image must be in the local store; it is never pulled.
//   - The architecture recorded must match, and `criu cpuinfo check` must
//     accept this CPU, before CRIU restores anything.
//
// Then it imports the named volumes, creates the container (new ID with
// Name), applies the layer changes (rootfs.Apply) and restores from the
// extracted images. On failure nothing is left behind: no container,
// storage layer, volume or staging directory; a failed restore is a
// [*StateError] whose Left is LeftRolledBack. An error an option would
// get past is a [*RemedyError]. If the process is killed, the next
// command undoes the import likewise, unless the container was restored
// already (then it runs; journal.go).
func (e *Engine) Import(ctx context.Context, path string, o *ImportOptions) (_ *ImportResult, err error) {
	if o == nil {
		o = &ImportOptions{}
	}
	defer func() {
		if err != nil {
			err = wrapf(err, "import %s", path)
		}
	}()
	if err := o.check(); err != nil {
		return nil, err
	}
	if err := e.preflight(ctx); err != nil {
		return nil, err
	}
	signed, err := checkSealed(path, o.Identities, o.Trust)
	if err != nil {
		return nil, err
	}
	for _, p := range o.Previous {
		if _, err := checkSealed(p, o.Identities, o.Trust); err != nil {
			return nil, wrapf(err, "previous checkpoint %s", p)
		}
	}
	x, err := e.beginImport(path, nil, o)
	if err != nil {
		return nil, err
	}
	x.signed = signed
	// Once everything made is undone (or the import is done).
	defer x.end()
	return x.run(ctx)
}

// check refuses options that contradict each other.
func (o *ImportOptions) check() error {
	switch {
	case o.Name != "" && o.TCPEstablished:
		return fmt.Errorf("%w: TCPEstablished cannot be used with Name (two copies cannot own one connection)", ErrOptions)
	case o.TCPEstablished && o.TCPClose:
		return fmt.Errorf("%w: TCPEstablished and TCPClose cannot be used together", ErrOptions)
	case o.ImageDir != "":
		return fmt.Errorf("%w: ImageDir is set by Import (it restores from its staging directory)", ErrOptions)
	}
	return nil
}

// importJob is one import in progress: what its phases find and make,
// each filled by the phase that finds or makes it.
type importJob struct {
	// signed is the archive's checked signature, or nil.
	signed *seal.Signed
	e      *Engine
	path   string
	o      *ImportOptions
	// layer, if set, is the archive's source instead of the file at path,
	// which then only names it (a checkpoint image's layer).
	layer *layerSource
	// start and pt time the import and its phases.
	start time.Time
	pt    *phaseTimer
	// warmed waits for warmStore, started with the import.
	warmed func()

	// staging is the staging directory, locked by stagingLock; j is the
	// import's record; keepStaging leaves the directory in place at the
	// end (kept images that could not be moved).
	staging     string
	stagingLock *fsutil.Lock
	j           *journal
	keepStaging bool
	// undo holds the undo steps of what the phases made.
	undo undoStack

	declared *format.Manifest // the archive's manifest, not trusted (nil: none)
	// cpuEarly, if set, gets the result of `criu cpuinfo check` run on
	// a streamed archive's cpuinfo.img as soon as it was extracted.
	cpuEarly chan error
	res      *ImportResult // the manifest verified, then the result
	rec      *importRecord // what the archive's record asks for
	plan     *importPlan   // what the checks decided
	vols     []string      // the container's -v specs: named volumes, then binds
	c        *Container    // the container made
}

// beginImport makes the staging directory (on a tmpfs if the archive's
// declared size fits there) and journals the import in it.
func (e *Engine) beginImport(path string, layer *layerSource, o *ImportOptions) (*importJob, error) {
	x := &importJob{e: e, path: path, layer: layer, o: o, start: time.Now(), pt: newPhaseTimer()}
	if layer != nil {
		x.declared = layer.declared()
	} else {
		x.declared = readDeclared(path, o.Identities)
	}
	need := int64(-1) // unknown: stage on disk
	if x.declared != nil && len(o.Previous) == 0 && !o.Keep {
		// (Kept images move to the container directory: on the same
		// file system.)
		need = x.declared.TotalSize()
	}
	var err error
	if x.staging, x.stagingLock, err = e.newStaging(need); err != nil {
		return nil, err
	}
	x.j, err = beginOp(e.importRecordPath(x.staging), opRecord{Op: opImport, Phase: "extract", Staging: x.staging})
	if err != nil {
		x.removeStaging()
		return nil, err
	}
	x.j.notify = o.Phase
	x.warmed = e.warmStore()
	return x, nil
}

// end removes the import's record, then its staging directory.
func (x *importJob) end() {
	x.warmed()
	x.j.end()
	x.removeStaging()
}

func (x *importJob) removeStaging() {
	if !x.keepStaging {
		_ = fsutil.RemoveAll(x.staging)
	}
	_ = os.Remove(x.staging + ".lock")
	x.stagingLock.Unlock()
	x.e.removeEmptyTransient(filepath.Dir(x.staging))
}

// run runs the import's phases in order. Each pushes the undo of what it
// made; if a phase fails, they run, last first.
func (x *importJob) run(ctx context.Context) (_ *ImportResult, err error) {
	defer func() {
		x.undo.unwindOn(&err)
		err = rolledBack(err)
	}()
	for _, phase := range []func(context.Context) error{
		x.verify,  // open+verify: extract into staging
		x.check,   // record, grants, image policy, CPU, base image, name
		x.stage,   // volumes
		x.create,  // container, layer changes, bundle, mount policy
		x.restore, // CRIU
	} {
		if err := phase(ctx); err != nil {
			return nil, err
		}
	}
	return x.commit(), nil
}

// rolledBack returns err, the import's error once its undo ran, saying
// that a failed restore was rolled back: Restore's *StateError says the
// container stays checkpointed, but it is gone. If undoing the import
// failed too (an *UndoError), what is left is unknown.
func rolledBack(err error) error {
	switch x := err.(type) {
	case *StateError:
		if x.Left == LeftCheckpointed {
			return &StateError{Err: x.Err, Left: LeftRolledBack}
		}
	case *UndoError:
		if se, ok := x.Err.(*StateError); ok && se.Left == LeftCheckpointed {
			return &UndoError{Err: &StateError{Err: se.Err, Left: LeftUnknown}, Undo: x.Undo}
		}
	}
	return err
}

// verify checks the archive's declared memory pages against this host
// (or, without a manifest, refuses a file that is no checkpoint archive,
// format.ErrNotCheckpoint), then verifies and extracts the archive into staging, and the
// pre-checkpoint archives it depends on (nothing else is made).
func (x *importJob) verify(ctx context.Context) error {
	if x.declared != nil {
		if err := checkMemory(x.declared); err != nil {
			return err
		}
	} else if x.layer == nil {
		// No manifest: name a file that is no checkpoint archive at all
		// for what it is, before extracting it (a layer's image said
		// checkpoint; Extract checks the rest).
		if err := notCheckpoint(x.path); err != nil {
			return err
		}
	}
	m, legacy, md, err := x.extract(ctx)
	if err != nil {
		return err
	}
	x.res = &ImportResult{Manifest: m, Legacy: legacy}
	if x.signed != nil {
		x.res.Signer = x.signed.Signer()
	}
	x.pt.done("extract")
	x.j.phase("check")

	if m.ImagesDir() != format.CheckpointDir {
		return remedy(fmt.Errorf("%w: the archive is a pre-checkpoint", ErrUnsupported), RemedyImportFinal, x.path)
	}
	switch {
	case m.Parent != nil && len(x.o.Previous) == 0:
		return remedy(fmt.Errorf("%w: the archive depends on %s (parent %s)", format.ErrParent, chainNoun(m.Parent.Depth), m.Parent.Manifest), RemedyPrevious, "")
	case m.Parent == nil && len(x.o.Previous) > 0:
		return remedy(fmt.Errorf("%w: the archive is a full checkpoint and depends on no pre-checkpoint", format.ErrParent), RemedyNoPrevious, "")
	case len(x.o.Previous) > 0:
		if err := extractPrevious(ctx, x.o.Previous, x.o.Identities, x.staging, format.Link{Manifest: m, Digest: md}); err != nil {
			return err
		}
		x.pt.done("extract_previous")
	}
	return nil
}

// extract verifies and extracts the archive into staging and returns its
// manifest (synthesized for a legacy archive) and the manifest's digest.
func (x *importJob) extract(ctx context.Context) (_ *format.Manifest, legacy bool, _ format.Digest, _ error) {
	r, size, closeReader, err := x.open()
	if err != nil {
		return nil, false, "", err
	}
	defer closeReader()
	if x.o.Progress != nil {
		r = &progressReader{r: r, total: size, progress: x.o.Progress}
	}
	r, stop, err := unsealAhead(r, x.o.Identities)
	if err != nil {
		return nil, false, "", err
	}
	defer stop()
	eo := &format.ExtractOptions{FreeSpace: stagingSpace(x.staging)}
	x.checkCPUEarly(ctx, eo)
	zr, err := format.Extract(ctx, r, x.staging, eo)
	if err != nil {
		if x.cpuEarly != nil {
			<-x.cpuEarly // no CRIU outlives the import
		}
		return nil, false, "", extractError(err, x.staging)
	}
	defer zr.Close()
	return zr.Manifest(), zr.Legacy(), zr.ManifestDigest(), nil
}

// checkCPUEarly makes the extraction of a streamed archive run `criu
// cpuinfo check` on its cpuinfo.img, in a goroutine, once the next member
// begins (cpuinfo.img is then written), so that it overlaps the pages:
// ckpt writes it first. The result counts only if the archive verifies
// (check waits for it then); a failure there is checked again.
func (x *importJob) checkCPUEarly(ctx context.Context, eo *format.ExtractOptions) {
	if x.declared == nil || x.declared.Version != format.StreamVersion {
		return
	}
	ch := make(chan error, 1)
	seen, started := false, false
	eo.Filter = func(h *format.Header) bool {
		switch {
		case h.Name == format.CPUInfoName:
			seen = true
		case seen && !started:
			started = true
			x.cpuEarly = ch
			go func() { ch <- x.e.checkCompatible(ctx, x.staging, x.declared) }()
		}
		return true
	}
}

// open opens the archive (the file at path, or the layer) and returns it,
// its size and what closes it.
func (x *importJob) open() (io.Reader, int64, func(), error) {
	if x.layer != nil {
		r, err := x.layer.reader()
		if err != nil {
			return nil, 0, nil, err
		}
		return r, x.layer.size, x.layer.close, nil
	}
	f, err := os.Open(x.path)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s is not a regular file", x.path)
	}
	r, closeReader := fileio.NewSequentialReader(f, fi.Size())
	return r, fi.Size(), func() { closeReader(); f.Close() }, nil
}

// check reads the archive's record and checks what it asks of this host
// (CPU, CRIU images, base image, binds, network, name) against the
// user's options, before anything is made.
func (x *importJob) check(ctx context.Context) error {
	x.warmed() // the store is used from here on
	rec, err := readRecord(x.staging, x.res.Legacy)
	if err != nil {
		return err
	}
	if x.cpuEarly == nil || <-x.cpuEarly != nil || checkArch(x.res.Manifest) != nil {
		// Not checked while the archive was read, or refused then: the
		// check decides (and names the problem) now.
		if err := x.e.checkCompatible(ctx, x.staging, x.res.Manifest); err != nil {
			return err
		}
	}
	x.pt.done("cpu_check")
	if _, err := os.Stat(filepath.Join(x.staging, format.CheckpointDir, "inventory.img")); err != nil {
		return fmt.Errorf("%w: the archive has no CRIU images (checkpoint/inventory.img)", format.ErrFormat)
	}
	plan, err := x.e.planImport(ctx, x.staging, rec, x.o)
	if err != nil {
		return err
	}
	x.rec, x.plan = rec, plan
	x.res.Kube, x.res.PodLost = rec.Kube, rec.Lost
	x.pt.done("checks")
	return nil
}

// stage imports the archive's named volumes (unless IgnoreVolumes), each
// recorded before it is made and removed again on failure, and lists the
// container's volumes and granted binds.
func (x *importJob) stage(ctx context.Context) error {
	// From here on, everything made is undone on failure, and recorded
	// before it is made.
	x.j.phase("volumes")
	st := x.e.volumeStore()
	for _, v := range x.rec.Volumes {
		spec := v.Name + ":" + v.Destination
		if v.ReadOnly {
			spec += ":ro"
		}
		x.vols = append(x.vols, spec)
		if x.o.IgnoreVolumes {
			continue
		}
		made, err := x.importVolume(ctx, st, v.Name)
		if err != nil {
			return err
		}
		if made {
			x.undo.push("remove volume "+v.Name, removeVolume(st, v.Name))
		}
	}
	for _, b := range x.plan.binds {
		spec := b.Source + ":" + b.Destination
		for _, opt := range b.Options {
			if opt == "ro" {
				spec += ":ro"
			}
		}
		x.vols = append(x.vols, spec)
	}
	x.pt.done("volumes")
	return nil
}

// importVolume imports the staged volume name, if the archive has it
// (not an export with IgnoreVolumes), into st; made says it did.
func (x *importJob) importVolume(ctx context.Context, st *volumes.Store, name string) (made bool, err error) {
	vf, err := os.Open(filepath.Join(x.staging, filepath.FromSlash(volumes.MemberName(name))))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer vf.Close()
	if err := x.j.recordVolume(st, name); err != nil {
		return false, err
	}
	var vr io.Reader = vf
	if x.res.Legacy {
		vr = stripDotSlash(vf)
	}
	err = st.Import(ctx, vr, name, &volumes.ImportOptions{FIFOs: true})
	if errors.Is(err, volumes.ErrExists) {
		return false, remedy(err, RemedyIgnoreVolumes, name)
	}
	return err == nil, err
}

// removeVolume is the undo of a volume the import made.
func removeVolume(st *volumes.Store, name string) func() error {
	return func() error {
		if err := st.Remove(context.Background(), name, true); err != nil && !errors.Is(err, volumes.ErrNotFound) {
			return err
		}
		return nil
	}
}

// create creates the container (with the volumes still missing, empty),
// applies the archive's layer changes, adds the engine-made binds to its
// bundle and checks the CRIU images against the bundle's mounts.
func (x *importJob) create(ctx context.Context) error {
	st := x.e.volumeStore()
	for _, v := range x.rec.Volumes {
		if ok, err := st.Exists(v.Name); err == nil && !ok {
			// Create makes it empty; undo that too.
			x.undo.push("remove volume "+v.Name, removeVolume(st, v.Name))
			if err := x.j.recordVolume(st, v.Name); err != nil {
				return err
			}
		}
	}
	x.j.phase("create")
	c, err := x.e.Create(ctx, x.plan.image, &RunOptions{
		Name: x.plan.name, ID: x.plan.id, Env: x.rec.Env, Volumes: x.vols, Network: x.plan.network,
		Entrypoint: x.rec.Entrypoint, Command: x.rec.Command[len(x.rec.Entrypoint):],
		WorkDir: x.rec.WorkDir, Hostname: x.rec.Hostname, MemoryLimit: x.rec.MemoryLimit, user: x.rec.User, capAdd: x.plan.capAdd, masked: x.rec.Masked,
		Terminal: x.rec.Terminal, OpenStdin: x.rec.OpenStdin, recorded: true,
		reserved: func(id string) error { return x.j.update(func(r *opRecord) { r.Container = id }) },
	})
	if err != nil {
		return err
	}
	x.undo.push("remove the container", func() error { return x.e.Remove(context.Background(), c.ID, true) })
	x.c = c
	if err := x.copyLog(); err != nil {
		return err
	}
	x.pt.done("create")
	x.j.phase("apply_rootfs")
	if !x.o.IgnoreRootfs {
		if err := applyRootfs(ctx, x.staging, c.Rootfs, x.rec.OCILayer); err != nil {
			return err
		}
		x.pt.done("apply_rootfs")
	}
	// After the layer changes: a dropped bind's stand-in is a file where
	// the container's root has one.
	if err := x.e.finishCreate(ctx, c, x.rec, x.plan.dropped); err != nil {
		return err
	}
	return x.checkBundle()
}

// copyLog brings the container's earlier output along, as podman does:
// podman's and ckpt's logs are both k8s-file records (an older ckpt's are
// untimed lines), which the monitor's new records follow.
func (x *importJob) copyLog() error {
	// podman's and ckpt's ctr.log, or the kubelet's CRI log (the same
	// k8s-file lines) under containerd's or CRI-O's member name.
	var log []byte
	err := os.ErrNotExist
	for _, name := range []string{format.ContainerLogName, format.CRILogName, format.CRIOLogName} {
		if log, err = fileio.ReadTail(filepath.Join(x.staging, name), 16<<20); err == nil {
			break
		}
	}
	if err != nil {
		return nil
	}
	if err := os.WriteFile(filepath.Join(x.e.containerDir(x.c.ID), logFile), log, 0o600); err != nil {
		return fmt.Errorf("write container log: %w", err)
	}
	return nil
}

// checkBundle checks the staged CRIU images against the mounts of the
// container's bundle, removes the stale ones and gives its root the mode
// CRIU recorded.
func (x *importJob) checkBundle() error {
	mounts, err := x.e.bundleMountPolicy(x.c)
	if err != nil {
		return err
	}
	imgDir := x.imageDir()
	o := imageOptions(x.plan.network == NetworkHost, mounts, x.plan.capAdd)
	// Stale images (podman leaves those of exited processes of earlier
	// dumps) are never read by CRIU: they are dropped, not restored from.
	o.RemoveStale = true
	if err := format.CheckImageDir(imgDir, o); err != nil {
		return err
	}
	return matchRootMode(imgDir, x.c.Rootfs)
}

// imageDir is where the archive's CRIU images are staged.
func (x *importJob) imageDir() string { return filepath.Join(x.staging, format.CheckpointDir) }

// restore restores the container from the staged images. A failure is
// Restore's *StateError (LeftCheckpointed), which run turns into
// LeftRolledBack once the import is undone.
func (x *importJob) restore(ctx context.Context) error {
	x.j.phase("restore")
	ro := x.o.RestoreOptions
	ro.ImageDir = x.imageDir()
	rr, err := x.e.Restore(ctx, x.c.ID, &ro)
	if err != nil {
		return err
	}
	x.pt.done("restore")
	x.res.Container, x.res.Restore = rr.Container, rr
	return nil
}

// commit finishes the import, which cannot fail now: with Keep the staged
// images become the container's checkpoint directory.
func (x *importJob) commit() *ImportResult {
	x.j.phase("record")
	if x.o.Keep {
		for i := range x.o.Previous {
			name := stagedLevelName(i, len(x.o.Previous))
			_ = os.Rename(filepath.Join(x.staging, name), filepath.Join(x.e.containerDir(x.c.ID), name))
		}
		if err := os.Rename(x.imageDir(), x.e.CheckpointDir(x.c.ID)); err != nil {
			x.keepStaging = true
		}
	}
	x.res.Total, x.res.Phases = time.Since(x.start), x.pt.phases
	return x.res
}

// importPlan is what an import decided before it makes anything: the base
// image, the bind mounts and network the user granted, the name and ID.
type importPlan struct {
	image, network, name, id string
	binds                    []volumes.BindMount
	dropped, capAdd          []string
}

// planImport checks what the archive's record asks of this host against
// the user's options and the host's state (TCP flags, the base image, the
// granted binds and network, the CRIU images under the engine's policy, a
// free name and ID) and returns the plan, before anything is made.
func (e *Engine) planImport(ctx context.Context, staging string, rec *importRecord, o *ImportOptions) (*importPlan, error) {
	if rec.TCP && !o.TCPEstablished && !o.TCPClose {
		r := RemedyTCP
		if o.Name != "" {
			r = RemedyTCPCopy
		}
		return nil, remedy(fmt.Errorf("%w: the checkpoint has established TCP connections", ErrState), r, "")
	}
	image, err := e.baseImage(rec.Image, rec.ImageID)
	if err != nil {
		return nil, err
	}
	binds, dropped, err := grantedBinds(rec.Binds, hostGrants{binds: o.Binds, dropBinds: o.IgnoreBinds})
	if err != nil {
		return nil, err
	}
	dropped = append(dropped, rec.Dropped...)
	if err := volumes.CheckBindSources(binds); err != nil {
		return nil, fmt.Errorf("bind mounts: %w", err)
	}
	network, err := grantedNetwork(rec.Network, o.Network)
	if err != nil {
		return nil, err
	}
	// Before anything is made; the mounts once the spec is written.
	capAdd, err := checkCapAdd(rec.Caps, o.CapAdd)
	if err != nil {
		return nil, err
	}
	if err := format.CheckImageDir(filepath.Join(staging, format.CheckpointDir), imageOptions(network == NetworkHost, nil, capAdd)); err != nil {
		return nil, err
	}
	name, id, err := e.freeName(ctx, rec.Name, rec.ID, o)
	if err != nil {
		return nil, err
	}
	return &importPlan{image: image, network: network, name: name, id: id, binds: binds, dropped: dropped, capAdd: capAdd}, nil
}

// warmStore opens the image store in the background while an import
// reads its archive, and has its graph driver make the checks it makes
// once per process (whether overlay takes ID-mapped lower layers:
// containers/storage mounts and unmounts an overlay for it when the first
// container is created), and returns the function that waits for it.
// Unmounting an overlay syncs the file system under it: made after the
// extraction, the checks waited for the pages it just wrote to reach the
// disk (0.2 s after 256 MiB, 0.7 s after 1 GiB here), all of it added to
// the import.
func (e *Engine) warmStore() (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := e.storeOpen()
		if err != nil {
			return // the import's own call reports it
		}
		if d, err := s.GraphDriver(); err == nil {
			_ = d.SupportsShifting(nil, nil)
		}
	}()
	return func() { <-done }
}

// baseImage returns the reference of the checkpoint's base image (its
// ID first, then its name) in the local store, which must have it.
func (e *Engine) baseImage(name, id string) (string, error) {
	s, err := e.storeOpen()
	if err != nil {
		return "", err
	}
	for _, ref := range []string{id, name} {
		if ref == "" {
			continue
		}
		if _, err := e.resolveImage(s, ref); err == nil {
			return ref, nil
		}
	}
	return "", remedy(fmt.Errorf("%w: the checkpoint's base image %s (ID %s) is not in the local store, and nothing is pulled",
		ErrUnknownImage, orNone(name), orNone(id)), RemedyImagePull, orNone(name))
}

// freeName returns the name and ID the imported container gets (o.Name
// and a new ID, or the recorded ones), refusing those in use.
func (e *Engine) freeName(ctx context.Context, name, id string, o *ImportOptions) (string, string, error) {
	if o.Name != "" {
		name, id = o.Name, ""
	}
	if x, err := e.Inspect(ctx, name); err == nil && x.Name == name {
		r := RemedyName
		if o.Name != "" {
			r = RemedyOtherName
		}
		return "", "", remedy(fmt.Errorf("%w: a container named %s exists", ErrNameInUse, name), r, "")
	}
	if id != "" {
		if _, err := e.loadState(id); err == nil {
			return "", "", remedy(fmt.Errorf("%w: container ID %s exists", ErrNameInUse, id[:12]), RemedyCopy, "")
		}
	}
	return name, id, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// recordVolume records in the import's record that it is about to make
// volume name, which must not exist: one that does is someone else's.
func (j *journal) recordVolume(st *volumes.Store, name string) error {
	if ok, err := st.Exists(name); err != nil || ok {
		return err // Import refuses an existing volume
	}
	return j.update(func(r *opRecord) { r.Volumes = append(r.Volumes, name) })
}

// finishCreate adds the bind mounts the engine itself provides for an
// imported container (podman's /etc/hosts, /etc/hostname, /dev/shm,
// /run/.containerenv, which CRIU restores as external mounts, and the
// empty stand-ins of dropped bind mounts), with sources made in the
// container's directory.
func (e *Engine) finishCreate(ctx context.Context, c *Container, rec *importRecord, dropped []string) error {
	if len(rec.Extra) == 0 && len(dropped) == 0 {
		return nil
	}
	x, l, err := e.lock(ctx, c.ID, "import")
	if err != nil {
		return err
	}
	defer l.Unlock()
	dir := filepath.Join(e.containerDir(c.ID), "userdata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, dest := range rec.Extra {
		if dest == "/sys/fs/cgroup" {
			x.Mounts = append(x.Mounts, Mount{Type: "cgroup", Destination: dest})
			continue
		}
		if dest == runTmpfs {
			x.Mounts = append(x.Mounts, Mount{Type: "tmpfs", Destination: dest})
			continue
		}
		src := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(dest)))
		var err error
		switch dest {
		case "/dev/shm":
			err = os.Mkdir(src, 0o1777)
		case "/etc/hostname":
			err = os.WriteFile(src, []byte(x.ID[:12]+"\n"), 0o644)
		case "/etc/hosts":
			err = os.WriteFile(src, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n"), 0o644)
		default:
			err = os.WriteFile(src, nil, 0o644)
		}
		if err != nil {
			return fmt.Errorf("create mount source for %s: %w", dest, err)
		}
		x.Mounts = append(x.Mounts, Mount{Type: "bind", Source: src, Destination: dest})
	}
	stand, err := standIns(filepath.Join(e.containerDir(c.ID), "dropped-binds"), x.Rootfs, dropped)
	if err != nil {
		return err
	}
	x.Mounts = append(x.Mounts, stand...)
	if err := e.writeBundle(x); err != nil {
		return err
	}
	if err := e.saveState(x); err != nil {
		return err
	}
	*c = *x
	return nil
}

// applyRootfs applies the staged rootfs-diff.tar and deleted.files to root.
// With oci, rootfs-diff.tar is an OCI layer (containerd's): its whiteouts
// are deletions.
func applyRootfs(ctx context.Context, staging, root string, oci bool) error {
	var deleted []string
	if df, err := os.Open(filepath.Join(staging, format.DeletedFilesName)); err == nil {
		deleted, err = rootfs.ReadDeleted(df)
		df.Close()
		if err != nil {
			return fmt.Errorf("read deleted.files: %w", err)
		}
	}
	var diff io.Reader
	if df, err := os.Open(filepath.Join(staging, format.RootfsDiffName)); err == nil {
		defer df.Close()
		diff = df
		if oci {
			wh, err := ociWhiteouts(df.Name())
			if err != nil {
				return fmt.Errorf("apply container layer changes: %w", err)
			}
			deleted = append(deleted, wh...)
			rc := withoutWhiteouts(df)
			defer rc.Close()
			diff = rc
		}
	}
	if diff == nil && len(deleted) == 0 {
		return nil
	}
	if err := rootfs.Apply(ctx, root, diff, deleted, &rootfs.ApplyOptions{FIFOs: true}); err != nil {
		return fmt.Errorf("apply container layer changes: %w", err)
	}
	return nil
}

// checkCompatible refuses an archive from another architecture or a CPU
// whose features this one lacks, naming the source CPU.
func (e *Engine) checkCompatible(ctx context.Context, staging string, m *format.Manifest) error {
	src := sourceCPU(m)
	if err := checkArch(m); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(staging, format.CPUInfoName)); err != nil {
		return nil // legacy archives carry no CPU record
	}
	if _, err := runTool(ctx, "criu cpuinfo check", []string{e.criuPath(), "cpuinfo", "check", "-D", staging}, "", ErrCRIUMissing); err != nil {
		return fmt.Errorf("%w: this CPU lacks features of the source CPU (%s, kernel %s) that the checkpointed processes may use; restoring would crash them with SIGILL: restore on a host with a compatible CPU: %w",
			ErrIncompatible, src, orNone(m.Host.Kernel), err)
	}
	return nil
}

// checkArch refuses a checkpoint of another architecture, naming the
// source CPU.
func checkArch(m *format.Manifest) error {
	if m.Host.Arch != "" && m.Host.Arch != runtime.GOARCH {
		return fmt.Errorf("%w: the checkpoint was taken on %s (%s), this host is %s: restore it on a %s host",
			ErrIncompatible, m.Host.Arch, sourceCPU(m), runtime.GOARCH, m.Host.Arch)
	}
	return nil
}

// sourceCPU names the CPU the checkpoint was taken on.
func sourceCPU(m *format.Manifest) string {
	if src := strings.TrimSpace(m.Host.CPU.Vendor + " " + m.Host.CPU.Model); src != "" {
		return src
	}
	return "unknown CPU"
}

// maxFilesImage bounds files.img before crit decodes it (crit allocates
// from sizes in the file).
const maxFilesImage = 16 << 20

// matchRootMode gives the container's root directory the permission bits
// CRIU recorded for it ("File . has bad mode" otherwise): images from
// another engine (podman's roots are 0555) may differ from this store's.
func matchRootMode(imgDir, root string) error {
	path := filepath.Join(imgDir, "files.img")
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > maxFilesImage {
		return nil // older layouts, or too large to look at: CRIU decides
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, true).Decode(&fdinfo.FileEntry{})
	if err != nil {
		return nil
	}
	for _, ent := range img.Entries {
		fe, ok := ent.Message.(*fdinfo.FileEntry)
		if !ok || fe.GetReg() == nil || fe.GetReg().GetName() != "/" {
			continue
		}
		want := os.FileMode(fe.GetReg().GetMode() & 0o777)
		st, err := os.Stat(root)
		if err != nil {
			return fmt.Errorf("stat container root: %w", err)
		}
		if st.Mode().Perm() != want {
			if err := os.Chmod(root, want); err != nil {
				return fmt.Errorf("set container root mode: %w", err)
			}
		}
		return nil
	}
	return nil
}

// progressReader reports bytes read.
type progressReader struct {
	r        io.Reader
	n, total int64
	progress func(read, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.progress(p.n, p.total)
	return n, err
}
