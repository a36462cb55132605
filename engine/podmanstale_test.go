package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// busyboxVersion is the busybox-static package testdata/podman/multi.tar.zst
// was made with (testdata/podman/README.md): CRIU maps that binary again.
const busyboxVersion = "1:1.35.0-4+deb12u1+b1"

// busyboxRootfs returns the busybox rootfs tar multi.tar.zst was made from,
// as `scripts/mkpodman.sh busybox-rootfs` makes it from the release's
// busybox-static.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", "../scripts/mkpodman.sh", "busybox-rootfs")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		testutil.Missing(t, "busybox rootfs: scripts/mkpodman.sh busybox-rootfs: %v: %s", err, strings.TrimSpace(stderr.String()))
		return ""
	}
	path := strings.TrimSpace(string(out))
	if want := "busybox-rootfs-" + strings.ReplaceAll(busyboxVersion, ":", "_") + ".tar"; filepath.Base(path) != want {
		testutil.Missing(t, "busybox rootfs %s: testdata/podman/multi.tar.zst needs busybox-static %s (remake it with scripts/mkpodman.sh multi)", path, busyboxVersion)
	}
	return path
}

// TestImportPodmanStale restores podman's archive of a container
// checkpointed with -R four times (testdata/podman/multi.tar.zst), whose
// checkpoint/ holds the images of sleeps that had exited: the import
// passes its checks, CRIU restores the shell loop (and its live sleep),
// the loop goes on, and the kept checkpoint directory has no stale image.
func TestImportPodmanStale(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	rootfs := busyboxRootfs(t)
	if _, err := e.ImageImport(ctx, rootfs, "localhost/ckpt-busybox:mkpodman"); err != nil {
		t.Fatal(err)
	}
	res, err := e.Import(ctx, "../testdata/podman/multi.tar.zst", &ImportOptions{RestoreOptions: RestoreOptions{Keep: true}})
	if err != nil {
		t.Fatalf("Import(multi.tar.zst) = %v", err)
	}
	// podman took the archive at counter 24 (its ctr.log).
	log := waitLog(t, e, "ckpt-mkpodman-multi", "the loop to go on", func(l string) bool { return lastCounter(l) >= 27 })
	checkContinues(t, log, 24)
	dir := e.CheckpointDir(res.Container.ID)
	for _, f := range []string{"pagemap-14.img", "core-28.img", "fdinfo-4.img", "pages-3.img"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s in the kept checkpoint directory: %v", f, err)
		}
	}
	for _, f := range []string{"pagemap-1.img", "pagemap-34.img", "pages-2.img"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("live %s: %v", f, err)
		}
	}
}

// TestImportPodmanTCP restores podman's --tcp-established archive of the
// counter's loopback connection (testdata/podman/tcp.tar.zst, host
// network): the ping/pong goes on over the same connection.
func TestImportPodmanTCP(t *testing.T) {
	t.Parallel()
	e := realEngine(t)
	ctx := context.Background()
	if _, err := e.ImageImport(ctx, "../testdata/podman/rootfs.tar.gz", "localhost/ckpt-counter:mkpodman"); err != nil {
		t.Fatal(err)
	}
	_, err := e.Import(ctx, "../testdata/podman/tcp.tar.zst", &ImportOptions{Network: NetworkHost, RestoreOptions: RestoreOptions{TCPEstablished: true}})
	if err != nil {
		t.Fatalf("Import(tcp.tar.zst) = %v", err)
	}
	// podman took it at "tcp ok 30".
	log := waitLog(t, e, "ckpt-mkpodman-tcp", "the ping/pong to go on", func(l string) bool {
		return strings.Contains(l, "tcp ok 33\n") || strings.Contains(l, "tcp error")
	})
	if strings.Contains(log, "tcp error") {
		t.Fatalf("the restored connection broke:\n%s", tail(log, 10))
	}
	checkContinues(t, log, 30)
}
