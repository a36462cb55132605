package rootfs_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ckpt/ckpt/rootfs"
)

// Capture a container's changes against its image, then restore them into
// a fresh copy of the image.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rootfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	image, container, restored := filepath.Join(dir, "image"), filepath.Join(dir, "container"), filepath.Join(dir, "restored")
	for _, root := range []string{image, container, restored} {
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/motd"), []byte("hello\n"), 0o644)
	}
	os.Remove(filepath.Join(container, "etc/motd"))
	os.WriteFile(filepath.Join(container, "etc/added"), []byte("new\n"), 0o644)

	changes, err := rootfs.Changes(ctx, image, container, &rootfs.ChangesOptions{Skip: []string{"/proc", "/sys", "/dev"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range changes {
		if c.Path != "." && c.Path != "etc" { // directory mtimes vary
			fmt.Println(c.Kind, c.Path)
		}
	}
	var diff bytes.Buffer // rootfs-diff.tar, streamed into the archive in practice
	if err := rootfs.WriteDiff(ctx, &diff, container, changes, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted.files:", rootfs.DeletedFiles(changes))

	if err := rootfs.Apply(ctx, restored, &diff, rootfs.DeletedFiles(changes), nil); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(restored, "etc/added"))
	_, err = os.Stat(filepath.Join(restored, "etc/motd"))
	fmt.Printf("restored: etc/added=%q, etc/motd exists=%v\n", b, err == nil)
	// Output:
	// A etc/added
	// D etc/motd
	// deleted.files: [/etc/motd]
	// restored: etc/added="new\n", etc/motd exists=false
}
