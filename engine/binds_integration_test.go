package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

// TestImportHostGrants: a container run with a bind mount is exported and
// its config.dump rewritten so that the bind's source is the host's root
// (an archive from a stranger). The import refuses it until the user maps
// the destination or drops it, then mounts only what the user gave: the
// restored process writes into the user's directory, never into "/". The
// host's network, recorded in config.dump, likewise needs --network host.
func TestImportHostGrants(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	data := t.TempDir()
	const canary = "/ckpt-test-bind-canary"
	cmd := []string{"/bin/counter", "-interval", "50ms", "-file", "/data" + canary}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "b", Command: cmd, Volumes: []string{data + ":/data"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "b", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	archive := filepath.Join(t.TempDir(), "b.tar")
	if _, err := src.Export(ctx, "b", archive, &ExportOptions{Compression: format.None}); err != nil {
		t.Fatal(err)
	}
	recp, err := decodeConfigDump(extractMember(t, archive, format.ConfigName))
	if err != nil {
		t.Fatal(err)
	}
	rec := *recp
	hostile := func(edit func(*Container)) string {
		r := rec
		r.Mounts = append([]Mount{}, rec.Mounts...)
		edit(&r)
		b, _ := marshalConfigDump(&r, "runc")
		return rewriteArchive(t, archive, format.ConfigName, b)
	}
	toRoot := hostile(func(r *Container) {
		for i := range r.Mounts {
			if r.Mounts[i].Destination == "/data" {
				r.Mounts[i].Source = "/"
			}
		}
	})
	if _, err := os.Lstat(canary); err == nil {
		t.Fatalf("%s exists before the test", canary)
	}
	defer func() {
		if _, err := os.Lstat(canary); err == nil {
			t.Errorf("the restored container wrote %s on the host", canary)
			_ = os.Remove(canary)
		}
	}()

	_, err = dst.Import(ctx, toRoot, nil)
	if !errors.Is(err, ErrHostResource) || !strings.Contains(err.Error(), `/data (on the source host "/")`) {
		t.Fatalf("Import of an archive binding / = %v, want ErrHostResource naming /data", err)
	}
	noLeftovers(t, dst, 0)
	if _, err := dst.Import(ctx, toRoot, &ImportOptions{Network: NetworkHost, IgnoreBinds: true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Import --network host of a private-network checkpoint = %v, want ErrUnsupported", err)
	}
	hostNet := hostile(func(r *Container) { r.Network = NetworkHost })
	if _, err := dst.Import(ctx, hostNet, &ImportOptions{IgnoreBinds: true}); !errors.Is(err, ErrHostResource) || !hasRemedy(err, RemedyNetworkHost, "") {
		t.Errorf("Import of a host-network checkpoint = %v, want ErrHostResource with RemedyNetworkHost", err)
	}
	noLeftovers(t, dst, 0)

	// Mapped: the counter goes on in the user's directory.
	mine := t.TempDir()
	if _, err := dst.Import(ctx, toRoot, &ImportOptions{Name: "mapped", Binds: []BindMap{{Source: mine, Destination: "/data"}}}); err != nil {
		t.Fatal(err)
	}
	waitCounterFile(t, filepath.Join(mine, canary))
	// Dropped: an empty directory of the engine's stands in.
	ir, err := dst.Import(ctx, toRoot, &ImportOptions{Name: "dropped", IgnoreBinds: true})
	if err != nil {
		t.Fatal(err)
	}
	var stand string
	for _, m := range ir.Container.Mounts {
		if m.Destination == "/data" {
			stand = m.Source
		}
	}
	if !strings.HasPrefix(stand, dst.containerDir(ir.Container.ID)) {
		t.Fatalf("dropped bind /data mounted from %q, want a stand-in in the container's directory", stand)
	}
	waitCounterFile(t, filepath.Join(stand, canary))
}

// waitCounterFile waits until the counter writes a positive count to path.
func waitCounterFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no counter in %s after 10 s", path)
}

// TestRestoreIgnoresImageCgroups: CRIU restores with its cgroup
// management off (it makes no cgroup yard, so nothing of the images'
// cgroups reaches the host), and the restored task is in the cgroup of
// the container's spec, where runc put CRIU.
func TestRestoreIgnoresImageCgroups(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "cg", Command: []string{"/bin/counter", "-interval", "50ms"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, "cg", "counter 2", func(l string) bool { return lastCounter(l) >= 2 })
	if _, err := e.Checkpoint(ctx, "cg", nil); err != nil {
		t.Fatal(err)
	}
	rr, err := e.Restore(ctx, "cg", &RestoreOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	log := readFile(t, filepath.Join(e.workDir(rr.Container.ID), "restore.log"))
	if strings.Contains(log, "cgroups yard") || !strings.Contains(log, "criu.conf") {
		t.Errorf("restore.log shows CRIU managing cgroups, or no configuration file read:\n%s", log[:min(len(log), 2000)])
	}
	spec, err := specFor(rr.Container)
	if err != nil {
		t.Fatal(err)
	}
	cg := readFile(t, fmt.Sprintf("/proc/%d/cgroup", rr.Container.PID))
	if !strings.Contains(cg, ":pids:"+spec.Linux.CgroupsPath+"\n") {
		t.Errorf("restored task's cgroups:\n%s\nwant pids in %s", cg, spec.Linux.CgroupsPath)
	}
}
