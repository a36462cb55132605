package engine

import (
	"context"
	"errors"
	"github.com/ckpt/ckpt/internal/testutil"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/archtest"
	"github.com/ckpt/ckpt/volumes"
)

// noLeftovers checks that a failed import left no container, staging
// directory or named volume behind on e (besides the volumes in keep).
func noLeftovers(t *testing.T, e *Engine, wantContainers int, keepVolumes ...string) {
	t.Helper()
	list, err := e.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != wantContainers {
		t.Errorf("%d containers after a failed import, want %d", len(list), wantContainers)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root(), "import")); len(ents) != 0 {
		t.Errorf("staging directories left: %v", ents)
	}
	vols, err := e.volumeStore().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != len(keepVolumes) {
		t.Errorf("volumes after a failed import: %d, want %v", len(vols), keepVolumes)
	}
	s, err := e.storeOpen()
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := s.Containers()
	if len(cs) != wantContainers {
		t.Errorf("%d storage containers after a failed import, want %d", len(cs), wantContainers)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMigrate moves a container between two engines with their own roots
// and stores (two hosts): the counter continues, the added, modified and
// deleted files and the named volume come across, and the same archive
// restores three more times under new names.
func TestMigrate(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	src.TmpDir = mountTmpfs(t, "size=1g") // the export dumps to a tmpfs; the import stages under the root
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-write-files", "-interval", "50ms", "-file", "/data/counter"}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "mig", Command: cmd, Volumes: []string{"vol1:/data"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "mig", "counter 5", func(l string) bool { return lastCounter(l) >= 5 })
	archive := filepath.Join(t.TempDir(), "mig.tar.zst")
	var progress int64
	xr, err := src.Export(ctx, "mig", archive, &ExportOptions{Progress: func(n int64) { progress = n }})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(archive)
	if err != nil || fi.Size() != xr.Size || progress != xr.Size {
		t.Fatalf("archive %v size %v, result size %d, progress %d", err, fi, xr.Size, progress)
	}
	if xr.Container.Status != StatusCheckpointed {
		t.Errorf("after export: %s, want checkpointed", xr.Container.Status)
	}
	if xr.Container.ImageDir == "" || !isTmpfs(xr.Container.ImageDir) {
		t.Errorf("the export's images are in %q, want a tmpfs", xr.Container.ImageDir)
	}
	// The pages images were summed during the dump (and the import
	// below verifies the digests that gave).
	if xr.prehashed < 1 {
		t.Errorf("%d pages images summed during the dump, want at least 1", xr.prehashed)
	}
	// ckpt froze the cgroup at CRIU's pre-dump action, so CRIU found it
	// frozen (its own freeze polls every 100 ms).
	if !xr.freezeHook || xr.CRIU == nil || xr.CRIU.FreezingTime >= 50_000 {
		t.Errorf("pre-dump freeze %v, CRIU %+v: want ckpt's pre-dump freeze, and CRIU's freezing time under 50 ms", xr.freezeHook, xr.CRIU)
	}
	// The container was stopped before the archive was written.
	if i, j := phaseIndex(xr.Phases, "stop"), phaseIndex(xr.Phases, "write_archive"); i < 0 || j < i {
		t.Errorf("phases %v: want stop before write_archive", xr.Phases)
	}
	if xr.Frozen <= 0 || xr.Frozen >= xr.Total {
		t.Errorf("frozen %v of %v", xr.Frozen, xr.Total)
	}
	at := lastCounter(logsOf(t, src, "mig"))
	t.Logf("exported at counter %d in %v (runc %v), %d bytes; phases %v", at, xr.Total, xr.Runtime, xr.Size, xr.Phases)
	af, _ := os.Open(archive)
	rep, err := format.Verify(af, nil)
	af.Close()
	if err != nil || rep.Err() != nil {
		t.Fatalf("Verify = %v, %v", err, rep.Err())
	}
	for _, name := range []string{format.ConfigName, format.SpecName, format.CPUInfoName, format.RootfsDiffName,
		format.DeletedFilesName, volumes.MemberName("vol1"), format.ContainerLogName, "checkpoint/inventory.img"} {
		if rep.Manifest.Member(name) == nil {
			t.Errorf("archive has no %s", name)
		}
	}
	if h := rep.Manifest.Host; h.Arch == "" || h.CRIUVersion == "" || h.CPU.Vendor == "" || len(h.CPU.Flags) == 0 {
		t.Errorf("manifest host = %+v", h)
	}

	var steps []string // ImportOptions.Phase, what `ckpt restore -i` shows after its bar
	ir, err := dst.Import(ctx, archive, &ImportOptions{Phase: func(n string) { steps = append(steps, n) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported in %v; phases %v", ir.Total, ir.Phases)
	if want := []string{"check", "volumes", "create", "apply_rootfs", "restore", "record"}; !slices.Equal(steps, want) {
		t.Errorf("Import told the steps %q, want %q", steps, want)
	}
	c := ir.Container
	if c.Name != "mig" || c.ID != xr.Container.ID || c.Status != StatusRunning {
		t.Errorf("imported container %s %s %s, want mig %s running", c.Name, c.ID, c.Status, xr.Container.ID)
	}
	log := waitLog(t, dst, "mig", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
	if got := readFile(t, filepath.Join(c.Rootfs, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(c.Rootfs, "etc/modified.txt")); got != "modified by counter\n" {
		t.Errorf("/etc/modified.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(c.Rootfs, "etc/deleted.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/etc/deleted.txt still there: %v", err)
	}
	dpath, _ := dst.volumeStore().DataPath("vol1")
	time.Sleep(200 * time.Millisecond)
	if n, _ := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dpath, "counter")))); n <= at {
		t.Errorf("volume counter on the target = %d, want > %d", n, at)
	}

	// The source still has vol1: importing there again needs
	// IgnoreVolumes, and the failed attempt leaves nothing behind.
	if _, err := src.Import(ctx, archive, &ImportOptions{Name: "copy0"}); !errors.Is(err, volumes.ErrExists) || !hasRemedy(err, RemedyIgnoreVolumes, "vol1") {
		t.Fatalf("Import over an existing volume = %v, want volumes.ErrExists with RemedyIgnoreVolumes", err)
	}
	noLeftovers(t, src, 1, "vol1")
	if _, err := src.Import(ctx, archive, &ImportOptions{Name: "x", RestoreOptions: RestoreOptions{TCPEstablished: true}}); !errors.Is(err, ErrOptions) {
		t.Errorf("Import with Name and TCPEstablished = %v, want ErrOptions", err)
	}
	// A failure after the container was created (CRIU cannot restore:
	// the rewritten deleted.files removes the binary) rolls everything
	// back on a third host: container, layer, volume, staging directory.
	third := realEngine(t)
	bad := rewriteArchive(t, archive, format.DeletedFilesName, []byte(`["/bin/counter"]`))
	if _, err := third.Import(ctx, bad, nil); !leftState(err, LeftRolledBack) || !strings.Contains(err.Error(), "rolled back") || strings.Contains(err.Error(), "can be restored again") {
		t.Fatalf("Import of an archive without the process' binary = %v, want a *StateError saying it was rolled back", err)
	} else {
		t.Logf("failed import: %v", err)
	}
	noLeftovers(t, third, 0)

	// config.dump is checked before anything is created: a bind mount
	// nobody mapped with -v, a volume name that is a path.
	recp, err := decodeConfigDump(extractMember(t, archive, format.ConfigName))
	if err != nil {
		t.Fatal(err)
	}
	rec := *recp
	for _, tc := range []struct {
		mount Mount
		want  error
	}{
		{Mount{Type: "bind", Source: "/nonexistent/ckpt-test", Destination: "/mnt"}, ErrHostResource},
		{Mount{Type: "volume", Name: "../../etc", Destination: "/mnt"}, format.ErrFormat},
		{Mount{Type: "volume", Name: "v2", Destination: "../mnt"}, format.ErrFormat},
	} {
		r := rec
		r.Mounts = append(append([]Mount{}, rec.Mounts...), tc.mount)
		b, _ := marshalConfigDump(&r, "runc")
		if _, err := third.Import(ctx, rewriteArchive(t, archive, format.ConfigName, b), nil); !errors.Is(err, tc.want) {
			t.Errorf("Import with mount %+v = %v, want %v", tc.mount, err, tc.want)
		}
		noLeftovers(t, third, 0)
	}

	// The source container, checkpointed by the export, restores in place.
	if _, err := src.Restore(ctx, "mig", nil); err != nil {
		t.Fatal(err)
	}
}

// rewriteArchive writes a copy of the v1 archive at path with member
// name's content replaced by data, as a valid archive (new digests).
func rewriteArchive(t *testing.T, path, name string, data []byte) string {
	t.Helper()
	m, members := archtest.Members(t, path)
	members[name] = data
	out := filepath.Join(t.TempDir(), "rewritten.tar")
	if err := os.WriteFile(out, archtest.Write(t, m, members, format.None), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// extractMember returns the content of one member of a v1 archive.
func extractMember(t *testing.T, path, name string) []byte {
	t.Helper()
	_, members := archtest.Members(t, path)
	b, ok := members[name]
	if !ok {
		t.Fatalf("%s has no member %s", path, name)
	}
	return b
}

// TestMigrateTCP keeps an established loopback connection across hosts.
func TestMigrateTCP(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	if bug, err := src.HasInetSocketBug(ctx); err != nil || bug {
		testutil.Missing(t, "CRIU cannot dump TCP sockets on this kernel (%v): %s", err, inetSocketWarning)
	}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "tcp", Command: []string{"/bin/counter", "-tcp", "-interval", "50ms", "-file", ""}}); err != nil {
		t.Fatal(err)
	}
	tcpOK := regexp.MustCompile(`(?m)^tcp ok (\d+)$`)
	lastOK := func(l string) int {
		m := tcpOK.FindAllStringSubmatch(l, -1)
		if len(m) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n
	}
	waitLog(t, src, "tcp", "tcp ok 3", func(l string) bool { return lastOK(l) >= 3 })
	archive := filepath.Join(t.TempDir(), "tcp.tar")
	if _, err := src.Export(ctx, "tcp", archive, &ExportOptions{CheckpointOptions: CheckpointOptions{TCPEstablished: true}, Compression: format.None}); err != nil {
		t.Fatal(err)
	}
	before := lastOK(logsOf(t, src, "tcp"))
	if _, err := dst.Import(ctx, archive, nil); !errors.Is(err, ErrState) {
		t.Errorf("Import without --tcp-established = %v, want ErrState", err)
	}
	noLeftovers(t, dst, 0)
	if _, err := dst.Import(ctx, archive, &ImportOptions{RestoreOptions: RestoreOptions{TCPEstablished: true}}); err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, dst, "tcp", "tcp ok after import", func(l string) bool { return lastOK(l) >= before+3 })
	if strings.Contains(log, "tcp error") {
		t.Fatalf("connection broke across the migration:\n%s", tail(log, 10))
	}
}

// phaseIndex returns the index of the phase named name, or -1.
func phaseIndex(ps []Phase, name string) int {
	for i, p := range ps {
		if p.Name == name {
			return i
		}
	}
	return -1
}
