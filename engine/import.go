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

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/rootfs"
	"github.com/ckpt/ckpt/volumes"
)

// ImportOptions configures [Engine.Import]; the zero value restores the
// archive's container under its recorded name and ID, with its layer
// changes and named volumes, as `podman container restore --import` does.
type ImportOptions struct {
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
	// Network is the user's --network: NetworkHost is required to restore
	// a checkpoint that ran in its host's network namespace; "" keeps a
	// private one.
	Network string
	// IgnoreStaticIP and IgnoreStaticMAC are accepted for podman
	// compatibility; ckpt containers have no static addresses (network
	// "none" or "host"), so there is nothing to ignore.
	IgnoreStaticIP, IgnoreStaticMAC bool
	// TCPEstablished restores established TCP connections.
	TCPEstablished bool
	// TCPClose restores the container but closes its TCP connections.
	TCPClose bool
	// FileLocks restores file locks.
	FileLocks bool
	// Keep keeps the extracted CRIU images (as the container's checkpoint
	// directory) and CRIU's restore.log.
	Keep bool
	// Progress, if set, is called with the archive bytes read so far and
	// the archive's size.
	Progress func(read, total int64)
	// Previous are the pre-checkpoint archives (checkpoint -P --export) a
	// final checkpoint taken --with-previous depends on (podman's
	// --import-previous, which may be repeated), in any order: the whole
	// chain when -P was taken more than once. They are ordered by the
	// manifests' parent references and the chain checked with
	// format.CheckChain before any of them is extracted; a missing,
	// extra, repeated or mismatched one is refused. Each is then verified
	// and extracted like the archive, before anything is created.
	Previous []string
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
// storage layer, volume or staging directory. If the process is killed,
// the next command undoes the import likewise, unless the container was
// restored already (then it runs; journal.go).
func (e *Engine) Import(ctx context.Context, path string, o *ImportOptions) (_ *ImportResult, err error) {
	if o == nil {
		o = &ImportOptions{}
	}
	start := time.Now()
	pt := newPhaseTimer()
	defer func() {
		if err != nil {
			err = fmt.Errorf("import %s: %w", path, err)
		}
	}()
	if o.Name != "" && o.TCPEstablished {
		return nil, errors.New("--tcp-established cannot be used with --name")
	}
	if o.TCPEstablished && o.TCPClose {
		return nil, errors.New("--tcp-established and --tcp-close cannot be used together")
	}
	if err := e.preflight(ctx); err != nil {
		return nil, err
	}
	declaredM := readDeclared(path)
	need := int64(-1) // unknown: stage on disk
	if declaredM != nil && len(o.Previous) == 0 && !o.Keep {
		// (Kept images move to the container directory: on the same
		// file system.)
		need = declaredM.TotalSize()
	}
	staging, sl, err := e.newStaging(need)
	if err != nil {
		return nil, err
	}
	keepImages := false
	defer func() {
		if !keepImages {
			_ = fsutil.RemoveAll(staging)
		}
		_ = os.Remove(staging + ".lock")
		sl.Unlock()
		e.removeEmptyTransient(filepath.Dir(staging))
	}()
	j, err := beginOp(e.importRecordPath(staging), opRecord{Op: opImport, Phase: "extract", Staging: staging})
	if err != nil {
		return nil, err
	}
	// Once everything made is undone (or the import is done).
	defer j.end()
	defer func() {
		if err != nil && strings.Contains(err.Error(), restorableNote) {
			err = rolledBack{err}
		}
	}()
	if declaredM != nil {
		if err := checkMemory(declaredM); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	r, closeReader := openArchiveReader(f, fi.Size())
	defer closeReader()
	if o.Progress != nil {
		r = &progressReader{r: r, total: fi.Size(), progress: o.Progress}
	}
	zr, err := format.Extract(ctx, r, staging, &format.ExtractOptions{FreeSpace: stagingSpace(staging)})
	if err != nil {
		return nil, extractError(err, staging)
	}
	m, legacy := zr.Manifest(), zr.Legacy()
	md := zr.ManifestDigest()
	_ = zr.Close()
	res := &ImportResult{Manifest: m, Legacy: legacy}
	pt.done("extract")
	j.phase("check")

	if m.ImagesDir() != format.CheckpointDir {
		return nil, fmt.Errorf("%w: the archive is a pre-checkpoint: restore the final checkpoint (checkpoint --with-previous --export) with --import-previous %s", ErrUnsupported, path)
	}
	switch {
	case m.Parent != nil && len(o.Previous) == 0:
		return nil, fmt.Errorf("%w: the archive depends on %s (parent %s): pass each with --import-previous", format.ErrParent, chainNoun(m.Parent.Depth), m.Parent.Manifest)
	case m.Parent == nil && len(o.Previous) > 0:
		return nil, fmt.Errorf("%w: the archive is a full checkpoint and depends on no pre-checkpoint: restore it without --import-previous", format.ErrParent)
	case len(o.Previous) > 0:
		if err := extractPrevious(ctx, o.Previous, staging, format.Link{Manifest: m, Digest: md}); err != nil {
			return nil, err
		}
		pt.done("extract_previous")
	}
	rec, err := readRecord(staging, legacy)
	if err != nil {
		return nil, err
	}
	if err := e.checkCompatible(ctx, staging, m); err != nil {
		return nil, err
	}
	pt.done("cpu_check")
	if _, err := os.Stat(filepath.Join(staging, format.CheckpointDir, "inventory.img")); err != nil {
		return nil, fmt.Errorf("%w: the archive has no CRIU images (checkpoint/inventory.img)", format.ErrFormat)
	}
	plan, err := e.planImport(ctx, staging, rec, o)
	if err != nil {
		return nil, err
	}
	image, binds, dropped, network, name, id := plan.image, plan.binds, plan.dropped, plan.network, plan.name, plan.id
	pt.done("checks")

	// From here on, everything made is undone on failure, and recorded
	// before it is made.
	j.phase("volumes")
	st := e.volumeStore()
	var imported []string
	defer func() {
		if err != nil {
			for _, v := range imported {
				_ = st.Remove(context.Background(), v, true)
			}
		}
	}()
	var vols []string
	for _, v := range rec.Volumes {
		spec := v.Name + ":" + v.Destination
		if v.ReadOnly {
			spec += ":ro"
		}
		vols = append(vols, spec)
		member := filepath.Join(staging, filepath.FromSlash(volumes.MemberName(v.Name)))
		if o.IgnoreVolumes {
			continue
		}
		vf, err := os.Open(member)
		if errors.Is(err, os.ErrNotExist) {
			continue // exported with --ignore-volumes
		}
		if err != nil {
			return nil, err
		}
		if err := j.recordVolume(st, v.Name); err != nil {
			vf.Close()
			return nil, err
		}
		var vr io.Reader = vf
		if legacy {
			vr = stripDotSlash(vf)
		}
		err = st.Import(ctx, vr, v.Name, &volumes.ImportOptions{FIFOs: true})
		vf.Close()
		if err != nil {
			return nil, fmt.Errorf("import volume %s: %w", v.Name, err)
		}
		imported = append(imported, v.Name)
	}
	for _, b := range binds {
		spec := b.Source + ":" + b.Destination
		for _, opt := range b.Options {
			if opt == "ro" {
				spec += ":ro"
			}
		}
		vols = append(vols, spec)
	}
	pt.done("volumes")
	for _, v := range rec.Volumes {
		if ok, err := st.Exists(v.Name); err == nil && !ok {
			imported = append(imported, v.Name) // Create makes it empty; undo that too
			if err := j.recordVolume(st, v.Name); err != nil {
				return nil, err
			}
		}
	}
	j.phase("create")
	c, err := e.Create(ctx, image, &RunOptions{Name: name, ID: id, Command: rec.Command, Env: rec.Env, Volumes: vols, Network: network,
		reserved: func(id string) error { return j.update(func(r *opRecord) { r.Container = id }) }})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := e.Remove(context.Background(), c.ID, true); rerr != nil {
				err = fmt.Errorf("%w\n(cleanup: %w)", err, rerr)
			}
		}
	}()
	// The container's earlier output comes along, as podman does.
	if log, err := readTail(filepath.Join(staging, format.ContainerLogName), 16<<20); err == nil {
		if legacy {
			log = fromK8sFile(log)
		}
		if err := os.WriteFile(filepath.Join(e.containerDir(c.ID), logFile), log, 0o600); err != nil {
			return nil, fmt.Errorf("write container log: %w", err)
		}
	}
	pt.done("create")
	j.phase("apply_rootfs")
	if !o.IgnoreRootfs {
		if err := applyRootfs(ctx, staging, c.Rootfs); err != nil {
			return nil, err
		}
		pt.done("apply_rootfs")
	}
	// After the layer changes: a dropped bind's stand-in is a file where
	// the container's root has one.
	if err := e.finishCreate(ctx, c, rec, dropped); err != nil {
		return nil, err
	}
	imgDir := filepath.Join(staging, format.CheckpointDir)
	mounts, err := e.bundleMountPolicy(c)
	if err != nil {
		return nil, err
	}
	if err := format.CheckImageDir(imgDir, imageOptions(network == NetworkHost, mounts)); err != nil {
		return nil, err
	}
	if err := matchRootMode(imgDir, c.Rootfs); err != nil {
		return nil, err
	}
	j.phase("restore")
	rr, err := e.Restore(ctx, c.ID, &RestoreOptions{
		TCPEstablished: o.TCPEstablished, TCPClose: o.TCPClose, FileLocks: o.FileLocks,
		Keep: o.Keep, ImageDir: imgDir,
	})
	if err != nil {
		return nil, err
	}
	pt.done("restore")
	j.phase("record")
	if o.Keep {
		for i := range o.Previous {
			name := stagedLevelName(i, len(o.Previous))
			_ = os.Rename(filepath.Join(staging, name), filepath.Join(e.containerDir(c.ID), name))
		}
		if err := os.Rename(imgDir, e.CheckpointDir(c.ID)); err != nil {
			keepImages = true
		}
	}
	res.Container, res.Restore = rr.Container, rr
	res.Total, res.Phases = time.Since(start), pt.phases
	return res, nil
}

// importPlan is what an import decided before it makes anything: the base
// image, the bind mounts and network the user granted, the name and ID.
type importPlan struct {
	image, network, name, id string
	binds                    []volumes.BindMount
	dropped                  []string
}

// planImport checks what the archive's record asks of this host against
// the user's options and the host's state (TCP flags, the base image, the
// granted binds and network, the CRIU images under the engine's policy, a
// free name and ID) and returns the plan, before anything is made.
func (e *Engine) planImport(ctx context.Context, staging string, rec *importRecord, o *ImportOptions) (*importPlan, error) {
	if rec.TCP && !o.TCPEstablished && !o.TCPClose {
		if o.Name != "" {
			return nil, fmt.Errorf("%w: the checkpoint has established TCP connections: restore it with --tcp-close, or without --name and with --tcp-established", ErrState)
		}
		return nil, fmt.Errorf("%w: the checkpoint has established TCP connections: restore with --tcp-established (or --tcp-close)", ErrState)
	}
	// The base image must be here.
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	image := ""
	for _, ref := range []string{rec.ImageID, rec.Image} {
		if ref == "" {
			continue
		}
		if _, err := e.resolveImage(s, ref); err == nil {
			image = ref
			break
		}
	}
	if image == "" {
		return nil, fmt.Errorf("%w: the checkpoint's base image %s (ID %s) is not in the local store; ckpt never pulls: import the same root filesystem first with `ckpt image import ROOTFS.tar %s`",
			ErrUnknownImage, orNone(rec.Image), orNone(rec.ImageID), orNone(rec.Image))
	}
	binds, dropped, err := grantedBinds(rec.Binds, hostGrants{binds: o.Binds, dropBinds: o.IgnoreBinds})
	if err != nil {
		return nil, err
	}
	if err := volumes.CheckBindSources(binds); err != nil {
		return nil, fmt.Errorf("bind mounts: %w", err)
	}
	network, err := grantedNetwork(rec.Network, o.Network)
	if err != nil {
		return nil, err
	}
	// Before anything is made; the mounts once the spec is written.
	if err := format.CheckImageDir(filepath.Join(staging, format.CheckpointDir), imageOptions(network == NetworkHost, nil)); err != nil {
		return nil, err
	}
	name, id := rec.Name, rec.ID
	if o.Name != "" {
		name, id = o.Name, ""
	}
	if x, err := e.Inspect(ctx, name); err == nil && x.Name == name {
		hint := "restore with --name to choose another name"
		if o.Name != "" {
			hint = "choose another --name"
		}
		return nil, fmt.Errorf("%w: a container named %s exists: %s", ErrNameInUse, name, hint)
	}
	if id != "" {
		if _, err := e.loadState(id); err == nil {
			return nil, fmt.Errorf("%w: container ID %s exists: restore with --name to make a copy with a new ID", ErrNameInUse, id[:12])
		}
	}
	return &importPlan{image: image, network: network, name: name, id: id, binds: binds, dropped: dropped}, nil
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

// restorableNote is what Restore adds to its errors; after a failed
// import there is no container left to restore.
const restorableNote = " (the container stays checkpointed and can be restored again)"

// rolledBack is an import error whose container was removed again.
type rolledBack struct{ err error }

func (r rolledBack) Error() string {
	return strings.Replace(r.err.Error(), restorableNote, "", 1) +
		"\n(the import was rolled back: no container, volume or staging directory is left)"
}

func (r rolledBack) Unwrap() error { return r.err }

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
func applyRootfs(ctx context.Context, staging, root string) error {
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
	src := strings.TrimSpace(m.Host.CPU.Vendor + " " + m.Host.CPU.Model)
	if src == "" {
		src = "unknown CPU"
	}
	if m.Host.Arch != "" && m.Host.Arch != runtime.GOARCH {
		return fmt.Errorf("%w: the checkpoint was taken on %s (%s), this host is %s: restore it on a %s host",
			ErrIncompatible, m.Host.Arch, src, runtime.GOARCH, m.Host.Arch)
	}
	if _, err := os.Stat(filepath.Join(staging, format.CPUInfoName)); err != nil {
		return nil // legacy archives carry no CPU record
	}
	if _, err := runTool(ctx, "criu cpuinfo check", []string{e.criuPath(), "cpuinfo", "check", "-D", staging}, "", ErrCRIUMissing); err != nil {
		return fmt.Errorf("%w: this CPU lacks features of the source CPU (%s, kernel %s) that the checkpointed processes may use; restoring would crash them with SIGILL: restore on a host with a compatible CPU\n(%w)",
			ErrIncompatible, src, orNone(m.Host.Kernel), err)
	}
	return nil
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
