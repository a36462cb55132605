package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
)

// Teardown: what runc and CRIU leave in the host's mount namespace and
// cgroups when they fail or are killed, and its removal. runc restores in
// the host's mount namespace: it bind-mounts the container's root at
// <runc root>/<id>/criu-root and the container's bind mounts below its
// root, and CRIU mounts a tmpfs "cgroup yard" holding every cgroup
// hierarchy in its work directory. A runc or CRIU that dies leaves them
// mounted, and `runc delete` of a container without state removes runc's
// state directory with os.RemoveAll: each is unmounted before anything
// below it is removed, and trees are removed with fsutil.RemoveAll.

// runcStateDir is runc's state directory of container id.
func runcStateDir(runcRoot, id string) string { return filepath.Join(runcRoot, id) }

// teardownRuntime unmounts what runc left mounted for container id (its
// state directory's criu-root, bind mounts below rootfs) and then deletes
// runc's state (`runc delete --force`, which kills a container that
// runs). rootfs is the container's mounted root, or "" to leave it. It
// does not delete runc's state if an unmount fails: runc would remove the
// mounted tree.
func teardownRuntime(r runc, id, rootfs string) error {
	if err := fsutil.UnmountAll(runcStateDir(r.root, id), true); err != nil {
		return fmt.Errorf("unmount what runc left: %w", err)
	}
	var errs []error
	if rootfs != "" {
		// The root itself stays mounted: it is the container's layer.
		if err := fsutil.UnmountAll(rootfs, false); err != nil {
			errs = append(errs, fmt.Errorf("unmount what runc left in the container's root: %w", err))
		}
	}
	_, _ = runcTool(context.Background(), r.deleteArgs(id, true), "")
	return errors.Join(errs...)
}

// layerRoot returns c's root file system if it is in this engine's image
// store, else "" (never unmount below a path the engine did not make).
func (e *Engine) layerRoot(c *Container) string {
	if c.Rootfs != "" && strings.HasPrefix(filepath.Clean(c.Rootfs), filepath.Clean(e.storageRoot())+"/") {
		return c.Rootfs
	}
	return ""
}

// deleteRuntime is teardownRuntime for container c of this engine.
func (e *Engine) deleteRuntime(c *Container) error {
	return teardownRuntime(e.runc(""), c.ID, e.layerRoot(c))
}

// maxCgroupDirs bounds the cgroups removeCgroups removes below one
// container's cgroup (CRIU restores the ones the container made).
const maxCgroupDirs = 1024

// cgroupMounts returns a mount point of each of the host's cgroup
// hierarchies (v1 controllers and v2): the one under /sys/fs/cgroup where
// there is one (a CRIU that died may have left others, in its yard).
func cgroupMounts() ([]string, error) {
	ms, err := fsutil.Mounts()
	if err != nil {
		return nil, err
	}
	byDev := map[string]string{}
	var devs []string
	for _, m := range ms {
		if (m.FSType != "cgroup" && m.FSType != "cgroup2") || m.Root != "/" {
			continue
		}
		old, seen := byDev[m.Dev]
		if !seen {
			devs = append(devs, m.Dev)
		}
		if !seen || (!underSysCgroup(old) && underSysCgroup(m.Point)) {
			byDev[m.Dev] = m.Point
		}
	}
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = byDev[d]
	}
	return out, nil
}

func underSysCgroup(p string) bool {
	return p == "/sys/fs/cgroup" || strings.HasPrefix(p, "/sys/fs/cgroup/")
}

// ownsCgroup reports whether cgroup path p is this engine's: below its
// per-root parent. (/ckpt/<id>, which an older ckpt used, may as well be
// another engine's container of the same ID.)
func (e *Engine) ownsCgroup(p string) bool {
	return strings.HasPrefix(p, e.cgroupParent()+"/") && !strings.Contains(p, "..")
}

// removeCgroups kills whatever still runs in c's cgroups (in every
// hierarchy; thawed first, a frozen process cannot die) and removes them
// and the cgroups below them, deepest first. It leaves cgroups that are
// not this engine's alone (ownsCgroup).
func (e *Engine) removeCgroups(c *Container) error {
	p := cgroupsPath(c)
	if !e.ownsCgroup(p) {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var busy []string
	for try := 0; try < 100; try++ {
		busy = busy[:0]
		for _, m := range mounts {
			dirs := cgroupTree(filepath.Join(m, p))
			for _, d := range dirs {
				thawAndKill(d)
			}
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
					busy = append(busy, dirs[i])
				}
			}
		}
		if len(busy) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: still in use (%s)", p, strings.Join(busy, ", "))
}

// cgroupTree returns cgroup dir and the cgroups below it, parents first,
// at most maxCgroupDirs; nil if dir does not exist.
func cgroupTree(dir string) []string {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	out := []string{dir}
	for i := 0; i < len(out) && len(out) < maxCgroupDirs; i++ {
		ents, err := os.ReadDir(out[i])
		if err != nil {
			continue
		}
		for _, d := range ents {
			if d.IsDir() && len(out) < maxCgroupDirs {
				out = append(out, filepath.Join(out[i], d.Name()))
			}
		}
	}
	return out
}

// thawAndKill thaws cgroup dir (v1 freezer, v2 cgroup.freeze) and sends
// SIGKILL to every process in it.
func thawAndKill(dir string) {
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
	_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	f.Close()
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// pruneShared removes what this engine's containers share on the host
// once it has none left: its cgroup parent in every hierarchy. It holds
// the engine-wide lock that creating a container takes, so no container
// is being made meanwhile.
func (e *Engine) pruneShared() {
	g, err := fsutil.WaitLock(filepath.Join(e.root(), "containers.lock"), "prune")
	if err != nil {
		return
	}
	defer g.Unlock()
	if ents, err := os.ReadDir(e.containersDir()); err != nil || len(ents) > 0 {
		return
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return
	}
	for _, m := range mounts {
		_ = syscall.Rmdir(filepath.Join(m, e.cgroupParent()))
	}
}

// criuMntnsPrefix names the directories CRIU makes (mode 0777) to restore
// mount namespaces in; it removes them itself unless it fails.
const criuMntnsPrefix = "/tmp/.criu.mntns."

// criuMntnsDirs returns the CRIU mount namespace directories there are.
func criuMntnsDirs() map[string]bool {
	m, _ := filepath.Glob(criuMntnsPrefix + "*")
	out := make(map[string]bool, len(m))
	for _, p := range m {
		out[p] = true
	}
	return out
}

// maxLogScan bounds how much of restore.log removeCRIUMntns searches.
const maxLogScan = 16 << 20

// removeCRIUMntns removes the CRIU mount namespace directories a failed
// restore left: those that are new since before, named in its log
// (another CRIU may be restoring meanwhile, and its directory looks just
// the same), empty and not a mount point.
func removeCRIUMntns(before map[string]bool, logPath string) {
	var fresh []string
	for p := range criuMntnsDirs() {
		if !before[p] {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return
	}
	f, err := os.Open(logPath)
	if err != nil {
		return
	}
	head, _ := io.ReadAll(io.LimitReader(f, maxLogScan))
	f.Close()
	for _, p := range fresh {
		if !bytes.Contains(head, []byte(p+"/")) && !bytes.Contains(head, []byte(p+" ")) && !bytes.Contains(head, []byte(p+"\n")) {
			continue
		}
		if ps, err := fsutil.MountsUnder(p, true); err != nil || len(ps) > 0 {
			continue
		}
		_ = syscall.Rmdir(p) // fails unless empty
	}
}

// Where the logs of failed restores are kept, and how many and how much.
const (
	logsDir = "logs"
	// maxKeptLogs is how many failed restores' logs Root/logs keeps.
	maxKeptLogs = 16
	// maxKeptLogPart is how much of the start and of the end of a log is
	// kept (a log may be as large as CRIULimits.MaxLog).
	maxKeptLogPart = 4 << 20
)

// keepRestoreLogs moves the logs of container id's failed restore (CRIU's
// restore.log in work, runc's runc.log) out of its directory, which an
// import's rollback removes, to Root/logs/<time>-<id12>/, keeping the
// newest maxKeptLogs such directories. It returns their new paths, ""
// for each that is not there.
func (e *Engine) keepRestoreLogs(id, work string) (restoreLog, runcLog string) {
	dst := filepath.Join(e.root(), logsDir, time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+id[:12])
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", ""
	}
	if to := filepath.Join(dst, "restore.log"); keepLog(filepath.Join(work, "restore.log"), to) == nil {
		restoreLog = to
	}
	if to := filepath.Join(dst, "runc.log"); keepLog(filepath.Join(e.containerDir(id), "runc.log"), to) == nil {
		runcLog = to
	}
	if restoreLog == "" && runcLog == "" {
		_ = os.Remove(dst)
	}
	e.pruneLogs()
	return restoreLog, runcLog
}

// keepLog moves the log src to dst; of a log over twice maxKeptLogPart
// only the start and the end are kept.
func keepLog(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return fmt.Errorf("%s is not a log with something in it", src)
	}
	if fi.Size() <= 2*maxKeptLogPart {
		return os.Rename(src, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err1 := io.Copy(out, io.NewSectionReader(in, 0, maxKeptLogPart))
	_, err2 := fmt.Fprintf(out, "\n[... %d bytes left out ...]\n", fi.Size()-2*maxKeptLogPart)
	_, err3 := io.Copy(out, io.NewSectionReader(in, fi.Size()-maxKeptLogPart, maxKeptLogPart))
	err4 := out.Close()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	return os.Remove(src)
}

// pruneLogs removes all but the newest maxKeptLogs directories of
// Root/logs (their names start with the time).
func (e *Engine) pruneLogs() {
	dir := filepath.Join(e.root(), logsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var names []string
	for _, d := range ents {
		if d.IsDir() {
			names = append(names, d.Name())
		}
	}
	sort.Strings(names)
	for len(names) > maxKeptLogs {
		_ = fsutil.RemoveAll(filepath.Join(dir, names[0]))
		names = names[1:]
	}
}

// exportImagesDir is where a LeaveRunning export dumps (in the container
// directory or its transient directory): never the checkpoint directory,
// which keeps the images of an in-place checkpoint, and removed by the
// next operation on the container if the export died (sweepContainer).
const exportImagesDir = "export-images"

// sweepContainer removes what an operation on container id that died
// left in its directories; the caller holds the container's lock, so no
// operation that made them runs: the CPU description of an export
// (cpuinfo-*), the images of a LeaveRunning export and the copies of the
// container layer and volumes an export makes. It also removes the
// staging directories of imports that died (sweepStaging).
func (e *Engine) sweepContainer(id string) {
	dir := e.containerDir(id)
	var gone []string
	if ents, err := os.ReadDir(dir); err == nil {
		for _, d := range ents {
			if strings.HasPrefix(d.Name(), "cpuinfo-") {
				gone = append(gone, filepath.Join(dir, d.Name()))
			}
		}
	}
	gone = append(gone, filepath.Join(dir, exportImagesDir), filepath.Join(e.workDir(id), "layers"))
	if t := e.transientRoot(); t != "" {
		gone = append(gone, filepath.Join(t, id, exportImagesDir), filepath.Join(t, id, "layers"))
	}
	for _, p := range gone {
		_ = fsutil.RemoveAll(p)
	}
	e.sweepStaging()
}
