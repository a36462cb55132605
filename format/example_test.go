package format_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
)

// exampleArchive writes the small archive the examples read.
func exampleArchive() []byte {
	var buf bytes.Buffer
	w := format.NewWriter(&buf, format.Manifest{
		Created:   time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Engine:    format.Engine{Name: "ckpt", Version: "0.1.0"},
		Container: format.Container{Name: "counter", ID: "3f1a9c0d5e7b"},
	}, nil)
	w.AddBytes(format.ConfigName, []byte(`{"name":"counter"}`))
	w.AddBytes(format.SpecName, []byte(`{"ociVersion":"1.2.0"}`))
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func ExampleNewWriter() {
	var buf bytes.Buffer
	w := format.NewWriter(&buf, format.Manifest{
		Created:   time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Engine:    format.Engine{Name: "ckpt", Version: "0.1.0"},
		Container: format.Container{Name: "counter", ID: "3f1a9c0d5e7b"},
	}, &format.WriterOptions{Compression: format.Zstd})
	// Members may be added in any order; the archive stores them sorted.
	if err := w.AddBytes(format.SpecName, []byte(`{"ociVersion":"1.2.0"}`)); err != nil {
		log.Fatal(err)
	}
	if err := w.AddBytes(format.ConfigName, []byte(`{"name":"counter"}`)); err != nil {
		log.Fatal(err)
	}
	// An inner tar is generated while the archive is written, never
	// staged on disk.
	diff := format.StreamSource(func(out io.Writer) error {
		tw := tar.NewWriter(out)
		data := "hello\n"
		tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0o644, Size: int64(len(data))})
		io.WriteString(tw, data)
		return tw.Close()
	})
	if err := w.Add(format.RootfsDiffName, diff); err != nil {
		log.Fatal(err)
	}
	// A name that is not a member of the format is refused at once.
	fmt.Println(w.AddBytes("../etc/passwd", nil) != nil)
	// Close writes the manifest, then the members.
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	m, _ := w.Manifest()
	for _, e := range m.Members {
		fmt.Println(e.Name, e.Kind, e.Size)
	}
	// Output:
	// true
	// config.dump config 18
	// rootfs-diff.tar rootfs-diff 2048
	// spec.dump spec 22
}

func ExampleNewReader() {
	archive := exampleArchive()
	zr, err := format.NewReader(bytes.NewReader(archive), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer zr.Close()
	fmt.Println("compression:", zr.Compression(), "legacy:", zr.Legacy())
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break // every listed member was read and verified
		}
		if err != nil {
			log.Fatal(err)
		}
		// Read returns io.EOF only once the size and digest matched.
		data, err := io.ReadAll(zr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (%s): %s\n", h.Name, h.Kind, data)
	}
	// Output:
	// compression: zstd legacy: false
	// config.dump (config): {"name":"counter"}
	// spec.dump (spec): {"ociVersion":"1.2.0"}
}

func ExampleReadManifest() {
	archive := exampleArchive()
	m, digest, err := format.ReadManifest(bytes.NewReader(archive))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Version, m.Container.Name, m.Created.Format(time.RFC3339))
	for _, e := range m.Members {
		fmt.Println(e.Name, e.Size, e.Digest.Hex()[:12])
	}
	fmt.Println(len(digest.Hex()))
	// Output:
	// 1 counter 2026-11-23T12:00:00Z
	// config.dump 18 4ae0e79ec230
	// spec.dump 22 dfa629d951a5
	// 64
}

func ExampleExtract() {
	archive := exampleArchive()
	dir, err := os.MkdirTemp("", "ckpt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// Extract verifies every member and writes only below dir; on any
	// error dir is left empty.
	if _, err := format.Extract(context.Background(), bytes.NewReader(archive), dir, nil); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, format.ConfigName))
	fmt.Println(string(b), err)

	// A corrupted archive is refused, and nothing is left behind.
	bad := bytes.Clone(archive)
	bad[len(bad)-12] ^= 0xff
	dir2, err := os.MkdirTemp("", "ckpt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir2)
	_, err = format.Extract(context.Background(), bytes.NewReader(bad), dir2, nil)
	ents, _ := os.ReadDir(dir2)
	fmt.Println(err != nil, len(ents))
	// Output:
	// {"name":"counter"} <nil>
	// true 0
}

func ExampleVerify() {
	rep, err := format.Verify(bytes.NewReader(exampleArchive()), nil)
	if err != nil {
		log.Fatal(err) // trouble reading, not a problem of the archive
	}
	fmt.Println(len(rep.Problems), rep.Err())
	// Output:
	// 0 <nil>
}

// ExampleCheckImageDir restores an archive as an engine would: Extract
// with a bound on what it writes and the default content checks, then,
// once the engine has generated the OCI spec of the container, the
// stricter mount policy of that spec on the extracted images, before
// CRIU runs.
func ExampleCheckImageDir() {
	f, err := os.Open("../testdata/ckpt/counter.tar.zst")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	staging, err := os.MkdirTemp("", "staging-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(staging)
	if _, err := format.Extract(context.Background(), f, staging, &format.ExtractOptions{
		MaxWrite:  1 << 30,
		FreeSpace: func() (int64, error) { return 4 << 30, nil }, // statfs of the staging file system
	}); err != nil {
		log.Fatal(err)
	}

	// The spec the engine generates for the container (engine/spec.go),
	// with runc's way of mapping it to CRIU's mounts.
	spec := &criuimg.RuncSpec{
		Mounts: []criuimg.SpecMount{
			{Destination: "/proc", Type: "proc"},
			{Destination: "/dev", Type: "tmpfs"},
			{Destination: "/dev/pts", Type: "devpts"},
			{Destination: "/dev/shm", Type: "tmpfs"},
			{Destination: "/dev/mqueue", Type: "mqueue"},
			{Destination: "/sys", Type: "sysfs", Options: []string{"ro"}},
			{Destination: "/data", Type: "bind", Options: []string{"rbind"}},
			{Destination: "/hostdir", Type: "bind", Options: []string{"rbind", "ro"}},
		},
		MaskedPaths:   []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		// On the restoring host; the archive was made where these two
		// do not exist.
		Exists: func(p string) bool { return p != "/proc/kcore" && p != "/proc/sysrq-trigger" },
	}
	images := filepath.Join(staging, format.CheckpointDir)
	fmt.Println(format.CheckImageDir(images, &format.ImageOptions{Mounts: criuimg.RuncMountPolicy(spec)}))

	// Without the read-only bind the user asked for, the archive's
	// /hostdir is a mount the spec does not declare.
	spec.Mounts = spec.Mounts[:len(spec.Mounts)-1]
	err = format.CheckImageDir(images, &format.ImageOptions{Mounts: criuimg.RuncMountPolicy(spec)})
	fmt.Println(errors.Is(err, format.ErrImage), strings.Contains(err.Error(), "at /hostdir"))
	// Output:
	// <nil>
	// true true
}
