package rootfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"go.podman.io/storage/pkg/archive"
)

// comparePodmanStyle compares two snapshots the way a podman restore can be
// held to: every non-directory exactly, directories without their mtimes
// (podman neither records nor restores those of unchanged directories).
// With seconds, mtimes are compared to the second: containers/storage
// writes no sub-second times.
func comparePodmanStyle(t *testing.T, got, want map[string]testutil.Node, seconds bool) {
	t.Helper()
	for _, m := range []map[string]testutil.Node{got, want} {
		for k, n := range m {
			if n.Type == "dir" {
				n.Mtime.Sec, n.Mtime.Nsec = 0, 0
			}
			if seconds {
				n.Mtime.Nsec = 0
			}
			m[k] = n
		}
	}
	for _, d := range testutil.DiffSnapshots(got, want) {
		t.Errorf("restored tree differs from container: %s", d)
	}
}

// TestPodmanReadsOurDiff restores our rootfs-diff.tar and deleted.files the
// way podman 5 does (os.RemoveAll of filepath.Join(root, path) for each
// deleted path, then containers/storage archive.Untar).
func TestPodmanReadsOurDiff(t *testing.T) {
	base, lower, merged := mutatedTrees(t)
	ctx := context.Background()
	changes, err := Changes(ctx, lower, merged, &ChangesOptions{Skip: []string{"proc"}})
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	var diff, del bytes.Buffer
	if err := WriteDiff(ctx, &diff, merged, changes, &WriteOptions{FIFOs: true}); err != nil {
		t.Fatalf("WriteDiff() = %v", err)
	}
	if err := WriteDeleted(&del, changes); err != nil {
		t.Fatalf("WriteDeleted() = %v", err)
	}
	deleted, err := ReadDeleted(&del)
	if err != nil {
		t.Fatalf("ReadDeleted() = %v", err)
	}
	target := filepath.Join(base, "target")
	copyTree(t, lower, target)
	for _, p := range deleted {
		must(t, os.RemoveAll(filepath.Join(target, p)))
	}
	opts := &archive.TarOptions{NoLchown: os.Geteuid() != 0}
	if err := archive.Untar(bytes.NewReader(diff.Bytes()), target, opts); err != nil {
		t.Fatalf("archive.Untar(our diff) = %v", err)
	}
	comparePodmanStyle(t, testutil.Snapshot(t, target, keepXattr, "proc"), testutil.Snapshot(t, merged, keepXattr, "proc"), false)
}

// TestWeReadPodmanDiff applies a diff made the way podman 5 makes one
// (containers/storage archive.TarWithOptions with IncludeFiles of the
// added and modified paths, names relative, directories with a trailing
// slash), with podman's deleted.files style.
func TestWeReadPodmanDiff(t *testing.T) {
	base, lower, merged := mutatedTrees(t)
	ctx := context.Background()
	changes, err := Changes(ctx, lower, merged, &ChangesOptions{Skip: []string{"proc"}})
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	var include []string
	for _, c := range changes {
		// Podman leaves out modified directories; we keep them so the
		// result can be compared, but like podman we list paths with a
		// leading slash.
		if c.Kind != Deleted && c.Path != "." {
			include = append(include, "/"+c.Path)
		}
	}
	rc, err := archive.TarWithOptions(merged, &archive.TarOptions{
		Compression:      archive.Uncompressed,
		IncludeSourceDir: true,
		IncludeFiles:     include,
	})
	if err != nil {
		t.Fatalf("archive.TarWithOptions() = %v", err)
	}
	tarball, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read podman-style tar: %v", err)
	}
	target := filepath.Join(base, "target")
	copyTree(t, lower, target)
	opts := &ApplyOptions{FIFOs: true, NoChown: os.Geteuid() != 0}
	if err := Apply(ctx, target, bytes.NewReader(tarball), DeletedFiles(changes), opts); err != nil {
		t.Fatalf("Apply(podman-style diff) = %v", err)
	}
	got, want := testutil.Snapshot(t, target, keepXattr, "proc"), testutil.Snapshot(t, merged, keepXattr, "proc")
	// Podman's tar does not carry the root directory's metadata.
	delete(got, ".")
	delete(want, ".")
	comparePodmanStyle(t, got, want, true)
}
