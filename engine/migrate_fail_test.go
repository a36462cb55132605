package engine

import (
	"bufio"
	"context"
	"errors"
	"github.com/ckpt/ckpt/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

// mountTmpfs mounts a tmpfs with opts on a new directory and unmounts it
// at the end of the test.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		testutil.Missing(t, "mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// checkNoArchive checks that nothing, not even a temporary file, is left
// in dir.
func checkNoArchive(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in %s after a failed export: %v", dir, ents)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkStillRunning checks that the container is running and counting.
func checkStillRunning(t *testing.T, e *Engine, ref string) {
	t.Helper()
	c, err := e.Inspect(context.Background(), ref)
	if err != nil || c.Status != StatusRunning {
		t.Fatalf("after a failed export: %+v, %v; want running", c, err)
	}
	at := lastCounter(logsOf(t, e, ref))
	waitLog(t, e, ref, "the counter to go on after a failed export", func(l string) bool { return lastCounter(l) >= at+2 })
}

// TestExportFailures injects failures into exports: a read-only target
// directory, a full disk, a cancelled context and a SIGKILLed exporter.
// Each leaves no file in the target directory and the container running
// (restored from its dump when the failure came after it), except the
// killed exporter, after which it is checkpointed and restores in place.
func TestExportFailures(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "f", Command: []string{"/bin/counter", "-interval", "50ms", "-ballast-mb", "8"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "f", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })

	t.Run("read-only", func(t *testing.T) {
		dir := mountTmpfs(t, "ro,size=1m")
		_, err := e.Export(ctx, "f", filepath.Join(dir, "a.tar"), nil)
		if err == nil || !errors.Is(err, syscall.EROFS) {
			t.Fatalf("Export to a read-only directory = %v, want EROFS", err)
		}
		checkNoArchive(t, dir)
		checkStillRunning(t, e, "f")
	})
	t.Run("disk-full", func(t *testing.T) {
		dir := mountTmpfs(t, "size=256k")
		_, err := e.Export(ctx, "f", filepath.Join(dir, "a.tar"), &ExportOptions{Compression: format.None})
		if err == nil || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Export to a full disk = %v, want ENOSPC", err)
		}
		if !leftState(err, LeftRestored) {
			t.Errorf("Export to a full disk = %v, want it to say the container was restored", err)
		}
		checkNoArchive(t, dir)
		checkStillRunning(t, e, "f")
	})
	t.Run("cancel", func(t *testing.T) {
		dir := t.TempDir()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := e.Export(cctx, "f", filepath.Join(dir, "a.tar"), &ExportOptions{Progress: func(int64) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Export = %v, want context.Canceled", err)
		}
		checkNoArchive(t, dir)
		checkStillRunning(t, e, "f")
	})
	t.Run("cancel-during-dump", func(t *testing.T) {
		// Wherever the cancel lands (freeze, CRIU, writing), the outcome
		// is the same; an export takes longer than the first timeout, so
		// at least that one is interrupted.
		interrupted := 0
		defer func() {
			if interrupted == 0 {
				t.Errorf("no export was interrupted: every cancellation came after it finished")
			}
		}()
		for _, after := range []time.Duration{20 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond} {
			dir := t.TempDir()
			cctx, cancel := context.WithTimeout(ctx, after)
			_, err := e.Export(cctx, "f", filepath.Join(dir, "a.tar"), nil)
			cancel()
			if err == nil {
				t.Logf("export finished within %v; nothing to interrupt", after)
				if _, err := e.Restore(ctx, "f", nil); err != nil {
					t.Fatal(err)
				}
				continue
			}
			interrupted++
			checkNoArchive(t, dir)
			checkStillRunning(t, e, "f")
		}
	})
	t.Run("sigkill", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestExportHelper$")
		cmd.Env = append(os.Environ(), "CKPT_EXPORT_HELPER="+strings.Join([]string{e.Root, e.RunRoot, "f", filepath.Join(dir, "a.tar")}, "\n"))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() && !strings.Contains(sc.Text(), "writing") {
		}
		// The exporter is now writing the archive, the container stopped
		// after its dump: kill the exporter. The container stays
		// checkpointed, and restores from its images.
		if c, _ := e.Inspect(ctx, "f"); c == nil || c.Status != StatusCheckpointed {
			t.Fatalf("container state during export: %+v, want checkpointed", c)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		checkNoArchive(t, dir)
		if _, err := e.Restore(ctx, "f", nil); err != nil {
			t.Fatalf("restore after a killed export: %v", err)
		}
		checkStillRunning(t, e, "f")
	})
	// After all that, an export works, and the archive restores three
	// times under new names: three more running containers, each with its
	// own ID and PID namespace, counting on from the same value.
	archive := filepath.Join(t.TempDir(), "a.tar.zst")
	xr, err := e.Export(ctx, "f", archive, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}})
	if err != nil {
		t.Fatal(err)
	}
	// The layer was copied while frozen, and the container thawed,
	// before the archive was written.
	if i, j, k := phaseIndex(xr.Phases, "copy_layers"), phaseIndex(xr.Phases, "thaw"), phaseIndex(xr.Phases, "write_archive"); i < 0 || j < i || k < j {
		t.Errorf("phases %v: want copy_layers, thaw, write_archive", xr.Phases)
	}
	checkStillRunning(t, e, "f")
	ids := map[string]bool{}
	for _, name := range []string{"copy1", "copy2", "copy3"} {
		r, err := e.Import(ctx, archive, &ImportOptions{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		ids[r.Container.ID] = true
	}
	list, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, c := range list {
		if c.Status == StatusRunning {
			running++
			ids[c.ID] = true
		}
	}
	if running != 4 || len(ids) != 4 {
		t.Errorf("%d running containers (%d IDs) after three imports with --name, want 4 and 4", running, len(ids))
	}
	for _, name := range []string{"copy1", "copy2", "copy3"} {
		at := lastCounter(logsOf(t, e, name))
		waitLog(t, e, name, name+" counting", func(l string) bool { return lastCounter(l) >= at+2 })
	}
}

// TestExportHelper is the exporter TestExportFailures kills: it runs only
// with CKPT_EXPORT_HELPER set, and stalls while writing the archive.
func TestExportHelper(t *testing.T) {
	arg := os.Getenv("CKPT_EXPORT_HELPER")
	if arg == "" {
		return // only the helper process of TestExportFailures does something
	}
	p := strings.Split(arg, "\n")
	e := &Engine{Root: p[0], RunRoot: p[1]}
	once := false
	_, err := e.Export(context.Background(), p[2], p[3], &ExportOptions{Progress: func(int64) {
		if !once {
			once = true
			os.Stdout.WriteString("writing\n")
			time.Sleep(time.Minute)
		}
	}})
	t.Fatalf("helper export was not killed: %v", err)
}

// TestImportPodman restores the archive podman 5.4.2 exported
// (testdata/podman): a legacy archive, its base image imported under the
// name its config.dump records. The counter continues, the added and
// deleted files and the volume come across.
func TestImportPodman(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	archive := "../testdata/podman/counter.tar.zst"
	_, err := e.Import(ctx, archive, nil)
	if !errors.Is(err, ErrUnknownImage) || !hasRemedy(err, RemedyImagePull, "localhost/ckpt-counter:mkpodman") {
		t.Fatalf("Import without the base image = %v, want ErrUnknownImage with RemedyImagePull of the image", err)
	}
	noLeftovers(t, e, 0)
	if _, err := e.ImageImport(ctx, "../testdata/podman/rootfs.tar.gz", "localhost/ckpt-counter:mkpodman"); err != nil {
		t.Fatal(err)
	}
	res, err := e.Import(ctx, archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Legacy || res.Container.Name != "ckpt-mkpodman" {
		t.Errorf("Import result legacy=%v name=%s", res.Legacy, res.Container.Name)
	}
	// podman took the archive at counter 35.
	log := waitLog(t, e, "ckpt-mkpodman", "the counter to go on", func(l string) bool { return lastCounter(l) >= 38 })
	checkContinues(t, log, 35)
	root := res.Container.Rootfs
	if got := readFile(t, filepath.Join(root, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/deleted.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/deleted.txt still there: %v", err)
	}
	dpath, _ := e.volumeStore().DataPath("ckptvol")
	if _, err := os.Stat(filepath.Join(dpath, "counter")); err != nil {
		t.Errorf("volume ckptvol: %v", err)
	}

	// The container that came from podman moves on again, as a ckpt
	// archive, to another host (the mounts podman provided are provided
	// there too).
	archive2 := filepath.Join(t.TempDir(), "again.tar.zst")
	if _, err := e.Export(ctx, "ckpt-mkpodman", archive2, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}); err != nil {
		t.Fatal(err)
	}
	at := lastCounter(logsOf(t, e, "ckpt-mkpodman"))
	other := realEngine(t)
	if _, err := other.ImageImport(ctx, "../testdata/podman/rootfs.tar.gz", "localhost/ckpt-counter:mkpodman"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Import(ctx, archive2, nil); err != nil {
		t.Fatal(err)
	}
	waitLog(t, other, "ckpt-mkpodman", "the counter to go on again", func(l string) bool { return lastCounter(l) >= at+3 })
}

// TestImportIncompatible checks the portability pre-check: another
// architecture, and a CPU record `criu cpuinfo check` refuses, are
// reported with the source CPU named.
func TestImportIncompatible(t *testing.T) {
	testutil.RequireRoot(t)
	e := &Engine{}
	if err := e.preflight(context.Background()); err != nil {
		testutil.Missing(t, "%v", err)
	}
	staging := t.TempDir()
	m := &format.Manifest{Host: format.Host{Arch: "riscv64", CPU: format.CPU{Vendor: "Acme", Model: "Road Runner 9000"}}}
	err := e.checkCompatible(context.Background(), staging, m)
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "Road Runner 9000") {
		t.Errorf("checkCompatible(other arch) = %v", err)
	}
	m.Host.Arch = ""
	if err := e.checkCompatible(context.Background(), staging, m); err != nil {
		t.Errorf("checkCompatible(no cpuinfo.img) = %v, want nil", err)
	}
	// This host's own record passes; a corrupt one is refused.
	if out, err := exec.Command("criu", "cpuinfo", "dump", "-D", staging).CombinedOutput(); err != nil {
		t.Fatalf("criu cpuinfo dump: %v\n%s", err, out)
	}
	if err := e.checkCompatible(context.Background(), staging, m); err != nil {
		t.Errorf("checkCompatible(this CPU) = %v", err)
	}
	if err := os.WriteFile(filepath.Join(staging, format.CPUInfoName), []byte("\x00\x01garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.checkCompatible(context.Background(), staging, m); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "Road Runner 9000") {
		t.Errorf("checkCompatible(foreign CPU) = %v", err)
	}
}

// TestStagingCleanup checks that a staging directory left by a killed
// import is removed by the next one, and a live one is not.
func TestStagingCleanup(t *testing.T) {
	e := &Engine{Root: t.TempDir()}
	stale := filepath.Join(e.Root, "import", "staging-stale")
	if err := os.MkdirAll(filepath.Join(stale, "checkpoint"), 0o700); err != nil {
		t.Fatal(err)
	}
	live, l, err := e.newStaging(-1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale staging directory still there: %v", err)
	}
	d2, l2, err := e.newStaging(-1)
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live staging directory removed: %v", err)
	}
	if d2 == live {
		t.Errorf("two imports got the same staging directory")
	}
}
