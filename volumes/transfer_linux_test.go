package volumes

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
	"github.com/ckpt/ckpt/rootfs"
	"golang.org/x/sys/unix"
)

// fillVolume writes a tree with every kind of file a volume may hold into
// dir. withRoot adds what only root can make: other owners, device nodes.
func fillVolume(t *testing.T, dir string, withRoot bool) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(dir, rel) }
	writeFile(t, p("plain.txt"), "hello\n", 0o644)
	writeFile(t, p("secret"), "s3cret", 0o600)
	writeFile(t, p("bin/tool"), "#!/bin/sh\necho hi\n", 0o755)
	writeFile(t, p("empty"), "", 0o640)
	writeFile(t, p("big.bin"), strings.Repeat("0123456789abcdef", 70000), 0o644)
	writeFile(t, p("deep/a/b/c/d/leaf"), "leaf", 0o444)
	must(t, os.MkdirAll(p("emptydir"), 0o755))
	must(t, os.MkdirAll(p("private"), 0o700))
	writeFile(t, p("private/key"), "k", 0o400)
	must(t, os.Link(p("plain.txt"), p("hard1")))
	must(t, os.Link(p("plain.txt"), p("deep/hard2")))
	must(t, os.Symlink("plain.txt", p("rel-link")))
	must(t, os.Symlink("/etc/passwd", p("abs-link")))
	must(t, os.Symlink("../../../../outside", p("deep/up-link")))
	must(t, os.Symlink("missing", p("dangling")))
	must(t, unix.Mkfifo(p("fifo"), 0o620))
	must(t, unix.Lsetxattr(p("plain.txt"), "user.origin", []byte("test"), 0))
	must(t, unix.Lsetxattr(p("bin"), "user.dir", []byte("d"), 0))
	must(t, unix.Lsetxattr(p("secret"), "user.empty", nil, 0))
	if withRoot {
		must(t, os.Lchown(p("secret"), 1234, 5678))
		must(t, os.Lchown(p("private"), 1000, 1000))
		must(t, os.Lchown(p("abs-link"), 42, 43))
		must(t, os.Chmod(p("bin/tool"), 0o4755)) // setuid, no world-writable parent
		must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(p("loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
		must(t, os.Chown(dir, 1000, 1001))
	}
	must(t, os.Chmod(p("deep/a"), 0o555)) // read-only directory with content
	must(t, os.Chmod(dir, 0o750))
	// Distinct nanosecond mtimes, directories last (and deepest first).
	ts := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	i := 0
	set := func(rel string) {
		i++
		tt := unix.NsecToTimespec(ts.Add(time.Duration(i)*time.Hour + time.Duration(i*7919)).UnixNano())
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p(rel), []unix.Timespec{tt, tt}, unix.AT_SYMLINK_NOFOLLOW))
	}
	for _, rel := range []string{"plain.txt", "secret", "bin/tool", "empty", "big.bin", "deep/a/b/c/d/leaf", "private/key", "rel-link", "abs-link", "fifo", "deep/a/b/c/d", "deep/a/b/c", "deep/a/b", "deep/a", "deep", "bin", "emptydir", "private", "."} {
		set(rel)
	}
}

// roundTrip exports src's volume, imports it as another name into another
// store and checks the trees and a second export are identical.
func roundTrip(t *testing.T, withRoot bool) {
	ctx := context.Background()
	src := newStore(t)
	v, err := src.Create(ctx, "src", nil)
	must(t, err)
	requireUserXattrs(t, v.Mountpoint)
	fillVolume(t, v.Mountpoint, withRoot)
	var first bytes.Buffer
	if err := src.Export(ctx, &first, "src"); err != nil {
		t.Fatalf("Export(src) = %v", err)
	}
	var second bytes.Buffer
	must(t, src.Export(ctx, &second, "src"))
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("two Exports of an unchanged volume differ")
	}

	dst := newStore(t)
	t.Cleanup(func() {
		// Store.Remove copes with the read-only directory when not root;
		// t.TempDir's cleanup would not.
		must(t, src.Remove(ctx, "src", true))
		if ok, _ := dst.Exists("copy"); ok {
			must(t, dst.Remove(ctx, "copy", true))
		}
	})
	opts := &ImportOptions{Devices: withRoot, FIFOs: true, NoChown: !withRoot, Labels: map[string]string{"from": "src"}}
	if err := dst.Import(ctx, bytes.NewReader(first.Bytes()), "copy", opts); err != nil {
		t.Fatalf("Import(copy) = %v", err)
	}
	want, got := testutil.Snapshot(t, v.Mountpoint, userXattr), testutil.Snapshot(t, filepath.Join(dst.Root, "copy", "_data"), userXattr)
	if d := testutil.DiffSnapshots(got, want); len(d) > 0 {
		t.Errorf("imported tree differs:\n%s", strings.Join(d, "\n"))
	}
	cv, err := dst.Get(ctx, "copy")
	if err != nil || cv.Labels["from"] != "src" {
		t.Errorf("Get(copy) = %+v, %v", cv, err)
	}
	var again bytes.Buffer
	must(t, dst.Export(ctx, &again, "copy"))
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Error("Export of the imported copy differs from the original Export")
	}
	if e := entries(t, dst.Root); len(e) != 1 || e[0] != "copy" {
		t.Errorf("store root holds %v, want [copy]", e)
	}
	// What the tar holds, independently of rootfs: "./" first, then names
	// sorted; hardlinks point at the first name; the fifo and (as root)
	// devices are there; no volume.json.
	tr := tar.NewReader(bytes.NewReader(first.Bytes()))
	var names []string
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeLink {
			links[h.Name] = h.Linkname
		}
	}
	if names[0] != "./" {
		t.Errorf("first entry %q, want ./", names[0])
	}
	for i := 2; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}
	if links["hard1"] != "deep/hard2" || links["plain.txt"] != "deep/hard2" {
		t.Errorf("hardlinks = %v, want hard1 and plain.txt -> deep/hard2", links)
	}
}

func TestRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	roundTrip(t, true)
}

// TestRoundTripNoChown runs without root: owners are the caller's, no
// devices.
func TestRoundTripNoChown(t *testing.T) {
	roundTrip(t, false)
}

// TestThroughArchive writes a volume into a ckpt archive with
// format.Writer (Store.Source), reads it back with format.Reader and
// imports the member.
func TestThroughArchive(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	v, err := src.Create(ctx, "data", nil)
	must(t, err)
	writeFile(t, filepath.Join(v.Mountpoint, "counter"), "42\n", 0o644)
	must(t, os.Symlink("counter", filepath.Join(v.Mountpoint, "link")))

	var archive bytes.Buffer
	w := format.NewWriter(&archive, testManifest(), nil)
	must(t, w.Add(MemberName("data"), src.Source(ctx, "data")))
	if err := w.Close(); err != nil {
		t.Fatalf("format.Writer.Close() = %v", err)
	}

	dst := newStore(t)
	zr, err := format.NewReader(bytes.NewReader(archive.Bytes()), nil)
	must(t, err)
	defer zr.Close()
	imported := 0
	for {
		h, err := zr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		name, ok := NameOfMember(h.Name)
		if !ok {
			continue
		}
		if err := dst.Import(ctx, zr, name, &ImportOptions{NoChown: true}); err != nil {
			t.Fatalf("Import(%s) from the archive = %v", name, err)
		}
		imported++
	}
	if imported != 1 {
		t.Fatalf("imported %d volumes, want 1", imported)
	}
	if d := testutil.DiffSnapshots(testutil.Snapshot(t, filepath.Join(dst.Root, "data", "_data"), userXattr), testutil.Snapshot(t, v.Mountpoint, userXattr)); len(d) > 0 {
		t.Errorf("imported tree differs:\n%s", strings.Join(d, "\n"))
	}
}

// TestImportCorruptMember: a member whose content does not match the
// archive's digest is extracted in full before the digest is checked at
// the member's end; Import must still leave nothing behind.
func TestImportCorruptMember(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	v, err := src.Create(ctx, "data", nil)
	must(t, err)
	writeFile(t, filepath.Join(v.Mountpoint, "counter"), "counter=42\n", 0o644)
	none, err := format.ParseCompression("none")
	must(t, err)
	var archive bytes.Buffer
	w := format.NewWriter(&archive, testManifest(), &format.WriterOptions{Compression: none})
	must(t, w.Add(MemberName("data"), src.Source(ctx, "data")))
	must(t, w.Close())
	b := archive.Bytes()
	i := bytes.Index(b, []byte("counter=42\n"))
	if i < 0 {
		t.Fatal("file content not found in the uncompressed archive")
	}
	b[i+9] = '3'

	dst := newStore(t)
	zr, err := format.NewReader(bytes.NewReader(b), nil)
	must(t, err)
	defer zr.Close()
	for {
		h, err := zr.Next()
		if err == io.EOF {
			t.Fatal("no volume member")
		}
		must(t, err)
		if name, ok := NameOfMember(h.Name); ok {
			err := dst.Import(ctx, zr, name, &ImportOptions{NoChown: true})
			if !errors.Is(err, format.ErrChecksum) {
				t.Errorf("Import(corrupt member) = %v, want format.ErrChecksum", err)
			}
			break
		}
	}
	if e := entries(t, dst.Root); len(e) != 0 {
		t.Errorf("store root holds %v after a corrupt member", e)
	}
}

func testManifest() format.Manifest {
	return format.Manifest{
		Created:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Engine:    format.Engine{Name: "ckpt", Version: "test"},
		Container: format.Container{Name: "c1", ID: "0123456789abcdef", Image: "counter", ImageID: "sha256:aa"},
		Host:      format.Host{Kernel: "6.18", Arch: "amd64", CRIUVersion: "4.1.1"},
	}
}

// TestImportExisting: an existing volume is never touched by Import, which
// fails with ErrExists naming it.
func TestImportExisting(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, err := s.Create(ctx, "data", nil)
	must(t, err)
	writeFile(t, filepath.Join(v.Mountpoint, "keep"), "original", 0o644)
	before := testutil.Snapshot(t, filepath.Join(s.Root, "data"), userXattr)
	tarball := tarbuild.Build(t, tarbuild.Dir("./", 0o700), tarbuild.File("keep", "from the archive", 0o600), tarbuild.File("new", "x", 0o644))
	r := bytes.NewReader(tarball)
	err = s.Import(ctx, r, "data", &ImportOptions{NoChown: true})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "data") {
		t.Fatalf("Import(data) over an existing volume = %v, want ErrExists naming data", err)
	}
	if r.Len() != len(tarball) {
		t.Errorf("Import read %d bytes before refusing", len(tarball)-r.Len())
	}
	if d := testutil.DiffSnapshots(testutil.Snapshot(t, filepath.Join(s.Root, "data"), userXattr), before); len(d) > 0 {
		t.Errorf("existing volume changed:\n%s", strings.Join(d, "\n"))
	}
	if e := entries(t, s.Root); len(e) != 1 {
		t.Errorf("store root holds %v, want [data]", e)
	}
}

// TestImportRace: a volume that appears while Import extracts is not
// replaced; Import fails with ErrExists and cleans up.
func TestImportRace(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tarball := tarbuild.Build(t, tarbuild.File("f", "archive", 0o644))
	r := &hookReader{r: bytes.NewReader(tarball), hook: func() {
		v, err := s.Create(ctx, "data", nil)
		must(t, err)
		writeFile(t, filepath.Join(v.Mountpoint, "f"), "winner", 0o644)
	}}
	err := s.Import(ctx, r, "data", &ImportOptions{NoChown: true})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Import(data) racing a Create = %v, want ErrExists", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root, "data", "_data", "f")); err != nil || string(b) != "winner" {
		t.Errorf("volume content = %q, %v, want the winner's", b, err)
	}
	if e := entries(t, s.Root); len(e) != 1 {
		t.Errorf("store root holds %v, want [data]", e)
	}
}

// hookReader calls hook once, on the first Read.
type hookReader struct {
	r    io.Reader
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return h.r.Read(p)
}

// TestHostileImports: tars that try to reach outside the volume, or carry
// what a volume may not, are refused; the sentinel beside the store is
// untouched and nothing is left in the store.
func TestHostileImports(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	sentinel := filepath.Join(base, "sentinel")
	writeFile(t, sentinel, "untouched", 0o644)
	sentinelDir := filepath.Join(base, "sentineldir")
	must(t, os.MkdirAll(sentinelDir, 0o755))
	// From Root/.import-x-N/_data, ../../../sentinel is the sentinel.
	up := "../../../sentinel"
	tests := []struct {
		name    string
		tar     []byte
		opts    ImportOptions
		wantErr error
	}{
		{"dotdot", tarbuild.Build(t, tarbuild.File(up, "pwned", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"dotdot-inner", tarbuild.Build(t, tarbuild.Dir("a/", 0o755), tarbuild.File("a/../../x", "pwned", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"absolute", tarbuild.Build(t, tarbuild.File(sentinel, "pwned", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"symlink-dir-out", tarbuild.Build(t, tarbuild.Symlink("out", sentinelDir), tarbuild.File("out/pwned", "pwned", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"symlink-up-out", tarbuild.Build(t, tarbuild.Symlink("out", "../../.."), tarbuild.File("out/sentinel", "pwned", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"symlink-then-file", tarbuild.Build(t, tarbuild.Symlink("s", sentinel), tarbuild.File("s", "pwned", 0o644)), ImportOptions{}, rootfs.ErrFormat},
		{"symlink-chain", tarbuild.Build(t, tarbuild.Symlink("a", "b"), tarbuild.Symlink("b", sentinelDir), tarbuild.File("a/pwned", "x", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"hardlink-up", tarbuild.Build(t, tarbuild.Link("h", up)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"hardlink-absolute", tarbuild.Build(t, tarbuild.Link("h", sentinel)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"hardlink-via-symlink", tarbuild.Build(t, tarbuild.Symlink("d", base), tarbuild.Link("h", "d/sentinel")), ImportOptions{}, rootfs.ErrInsecurePath},
		{"hardlink-to-symlink", tarbuild.Build(t, tarbuild.Symlink("s", sentinel), tarbuild.Link("h", "s")), ImportOptions{}, rootfs.ErrInsecurePath},
		{"hardlink-not-yet", tarbuild.Build(t, tarbuild.Link("h", "later"), tarbuild.File("later", "x", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"root-as-symlink", tarbuild.Build(t, tarbuild.Symlink("./", base)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"root-as-file", tarbuild.Build(t, tarbuild.File(".", "x", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"char-device", tarbuild.Build(t, tarbuild.Dev(tar.TypeChar, "mem", 1, 1)), ImportOptions{}, rootfs.ErrSpecialFile},
		{"block-device", tarbuild.Build(t, tarbuild.Dev(tar.TypeBlock, "sda", 8, 0)), ImportOptions{}, rootfs.ErrSpecialFile},
		{"fifo", tarbuild.Build(t, tarbuild.Dev(tar.TypeFifo, "p", 0, 0)), ImportOptions{}, rootfs.ErrSpecialFile},
		{"whiteout-device", tarbuild.Build(t, tarbuild.Dev(tar.TypeChar, "wh", 0, 0)), ImportOptions{Devices: true}, rootfs.ErrInsecurePath},
		{"whiteout-name", tarbuild.Build(t, tarbuild.File(".wh.plain", "", 0o644)), ImportOptions{}, rootfs.ErrInsecurePath},
		{"duplicate", tarbuild.Build(t, tarbuild.File("f", "a", 0o644), tarbuild.File("f", "b", 0o644)), ImportOptions{}, rootfs.ErrFormat},
		{"truncated", tarbuild.Build(t, tarbuild.File("ok", "x", 0o644), tarbuild.Huge("huge", 1<<20)), ImportOptions{}, rootfs.ErrFormat},
		{"too-large", tarbuild.Build(t, tarbuild.File("f", "123456789", 0o644)), ImportOptions{MaxEntrySize: 8}, rootfs.ErrTooLarge},
		{"too-many", tarbuild.Build(t, tarbuild.File("a", "", 0o644), tarbuild.File("b", "", 0o644), tarbuild.File("c", "", 0o644)), ImportOptions{MaxEntries: 2}, rootfs.ErrTooLarge},
		{"garbage", []byte(strings.Repeat("not a tar ", 100)), ImportOptions{}, rootfs.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Store{Root: filepath.Join(base, "store-"+tt.name)}
			tt.opts.NoChown = true
			err := s.Import(ctx, bytes.NewReader(tt.tar), "x", &tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Import() = %v, want %v", err, tt.wantErr)
			}
			if b, err := os.ReadFile(sentinel); err != nil || string(b) != "untouched" {
				t.Fatalf("sentinel = %q, %v", b, err)
			}
			if fi, err := os.Lstat(sentinel); err != nil || fi.Mode() != 0o644 || !fi.Mode().IsRegular() {
				t.Fatalf("sentinel mode = %v, %v", fi, err)
			}
			if e := entries(t, sentinelDir); len(e) != 0 {
				t.Fatalf("sentinel directory holds %v", e)
			}
			if e := entries(t, s.Root); len(e) != 0 {
				t.Errorf("store root holds %v after a refused import", e)
			}
		})
	}
	// Data after the trailer is read (so a verifying reader sees its end)
	// and ignored.
	t.Run("trailing-data", func(t *testing.T) {
		s := &Store{Root: filepath.Join(base, "store-trailing")}
		r := bytes.NewReader(append(tarbuild.Build(t, tarbuild.File("f", "x", 0o644)), strings.Repeat("after the trailer", 1000)...))
		if err := s.Import(ctx, r, "x", &ImportOptions{NoChown: true}); err != nil {
			t.Fatalf("Import(trailing data) = %v", err)
		}
		if r.Len() != 0 {
			t.Errorf("Import left %d bytes unread", r.Len())
		}
	})
	// Devices and FIFOs are accepted when asked for (as root for devices).
	t.Run("allowed-special", func(t *testing.T) {
		testutil.RequireRoot(t)
		s := &Store{Root: filepath.Join(base, "store-allowed")}
		tarball := tarbuild.Build(t, tarbuild.Dev(tar.TypeChar, "null", 1, 3), tarbuild.Dev(tar.TypeFifo, "p", 0, 0))
		if err := s.Import(ctx, bytes.NewReader(tarball), "x", &ImportOptions{Devices: true, FIFOs: true}); err != nil {
			t.Fatalf("Import(devices allowed) = %v", err)
		}
	})
}

// TestImportFailureInjection: a read error, or a cancellation, at any
// point of the stream leaves no volume and no staging directory.
func TestImportFailureInjection(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	v, err := src.Create(ctx, "src", nil)
	must(t, err)
	for i := range 20 {
		writeFile(t, filepath.Join(v.Mountpoint, "d", string(rune('a'+i))), strings.Repeat("x", i*300), 0o644)
	}
	var full bytes.Buffer
	must(t, src.Export(ctx, &full, "src"))
	// Pad as tar(1) would, so the drain after the trailer is exercised.
	full.Write(make([]byte, 10240-full.Len()%10240))
	injected := errors.New("injected read error")
	n := full.Len()
	for _, cut := range []int{0, 1, 511, 512, 513, 1024, 1536, n / 3, n / 2, n - 10240, n - 1024, n - 512, n - 1} {
		s := newStore(t)
		r := io.MultiReader(bytes.NewReader(full.Bytes()[:cut]), iotest.ErrReader(injected))
		err := s.Import(ctx, r, "dst", &ImportOptions{NoChown: true})
		if err == nil {
			t.Errorf("cut %d: Import() = nil, want an error", cut)
		}
		if e := entries(t, s.Root); len(e) != 0 {
			t.Errorf("cut %d: store root holds %v", cut, e)
		}
	}
	// Cancelled midway.
	s := newStore(t)
	cctx, cancel := context.WithCancel(ctx)
	r := &hookReader{r: iotest.HalfReader(bytes.NewReader(full.Bytes())), hook: cancel}
	if err := s.Import(cctx, r, "dst", &ImportOptions{NoChown: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("Import(cancelled) = %v, want context.Canceled", err)
	}
	if e := entries(t, s.Root); len(e) != 0 {
		t.Errorf("cancelled: store root holds %v", e)
	}
	// The whole stream imports.
	must(t, s.Import(ctx, bytes.NewReader(full.Bytes()), "dst", &ImportOptions{NoChown: true}))
}

// TestExportChanges: Export reflects changes, and refuses what Import
// could not restore.
func TestExportChanges(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, err := s.Create(ctx, "v", nil)
	must(t, err)
	var a, b bytes.Buffer
	must(t, s.Export(ctx, &a, "v"))
	writeFile(t, filepath.Join(v.Mountpoint, "f"), "x", 0o644)
	must(t, s.Export(ctx, &b, "v"))
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("Export did not change after a file was added")
	}
	writeFile(t, filepath.Join(v.Mountpoint, ".wh.x"), "", 0o644)
	if err := s.Export(ctx, io.Discard, "v"); !errors.Is(err, rootfs.ErrInsecurePath) {
		t.Errorf("Export(volume with .wh. name) = %v, want rootfs.ErrInsecurePath", err)
	}
	if err := s.Export(ctx, io.Discard, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Export(missing) = %v, want ErrNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	must(t, os.Remove(filepath.Join(v.Mountpoint, ".wh.x")))
	if err := s.Export(cctx, io.Discard, "v"); !errors.Is(err, context.Canceled) {
		t.Errorf("Export(cancelled) = %v, want context.Canceled", err)
	}
}
