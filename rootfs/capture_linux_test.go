package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// listTar returns "name type linkname" for each entry.
func listTar(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read diff: %v", err)
		}
		out = append(out, hdr.Name+" "+string(hdr.Typeflag)+" "+hdr.Linkname)
	}
}

// A hostile container replaces directories with symbolic links to the
// host; capture records the links and reads nothing through them.
func TestCaptureDoesNotFollowSymlinks(t *testing.T) {
	base := t.TempDir()
	lower, merged := filepath.Join(base, "lower"), filepath.Join(base, "merged")
	writeFile(t, filepath.Join(lower, "etc/passwd"), "root:x:0:0\n", 0o644)
	writeFile(t, filepath.Join(lower, "data/x"), "x", 0o644)
	writeFile(t, filepath.Join(base, "host-secret"), "TOPSECRET-CONTENT", 0o600)
	copyTree(t, lower, merged)
	must(t, os.RemoveAll(filepath.Join(merged, "etc")))
	must(t, os.Symlink(base, filepath.Join(merged, "etc")))
	must(t, os.RemoveAll(filepath.Join(merged, "data")))
	must(t, os.Symlink("../..", filepath.Join(merged, "data")))
	must(t, os.Symlink(filepath.Join(base, "host-secret"), filepath.Join(merged, "secret")))

	ctx := context.Background()
	changes, err := Changes(ctx, lower, merged, nil)
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	want := []Change{{".", Modified}, {"data", Modified}, {"etc", Modified}, {"secret", Added}}
	if !slices.Equal(changes, want) {
		t.Errorf("Changes() = %v, want %v", changes, want)
	}
	var diff bytes.Buffer
	if err := WriteDiff(ctx, &diff, merged, changes, nil); err != nil {
		t.Fatalf("WriteDiff() = %v", err)
	}
	if bytes.Contains(diff.Bytes(), []byte("TOPSECRET")) || bytes.Contains(diff.Bytes(), []byte("root:x")) {
		t.Errorf("diff holds content read through a symbolic link")
	}
	got := listTar(t, diff.Bytes())
	wantList := []string{"./ 5 ", "data 2 ../..", "etc 2 " + base, "secret 2 " + filepath.Join(base, "host-secret")}
	if !slices.Equal(got, wantList) {
		t.Errorf("diff entries = %q, want %q", got, wantList)
	}
	// Even a caller asking for paths below the links gets no content.
	for _, p := range []string{"etc/host-secret", "data/x"} {
		err := WriteDiff(ctx, io.Discard, merged, []Change{{p, Added}}, nil)
		if !errors.Is(err, ErrChanged) {
			t.Errorf("WriteDiff(%s) = %v, want ErrChanged", p, err)
		}
	}
}

func TestWriteDiffVanishedFile(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a"), "a", 0o644)
	err := WriteDiff(context.Background(), io.Discard, root, []Change{{"a", Added}, {"gone", Added}}, nil)
	if !errors.Is(err, ErrChanged) {
		t.Errorf("WriteDiff(vanished) = %v, want ErrChanged", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "gone" {
		t.Errorf("WriteDiff(vanished) = %#v, want *Error for gone", err)
	}
}

func TestWriteDiffRefusesWhatApplyRefuses(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".wh.x"), "", 0o644)
	for _, c := range []Change{{".wh.x", Added}, {"../x", Added}, {"/etc", Added}, {"", Modified}} {
		err := WriteDiff(context.Background(), io.Discard, root, []Change{c}, nil)
		if !errors.Is(err, ErrInsecurePath) {
			t.Errorf("WriteDiff(%q) = %v, want ErrInsecurePath", c.Path, err)
		}
	}
}

func TestWriteDiffSpecialFiles(t *testing.T) {
	root := t.TempDir()
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	changes := []Change{{"fifo", Added}, {"null", Added}, {"wh", Added}}
	isRoot := os.Geteuid() == 0
	if isRoot {
		must(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(filepath.Join(root, "wh"), unix.S_IFCHR, 0))
	} else {
		changes = changes[:1]
	}
	write := func(o *WriteOptions) []string {
		var b bytes.Buffer
		if err := WriteDiff(context.Background(), &b, root, changes, o); err != nil {
			t.Fatalf("WriteDiff(%+v) = %v", o, err)
		}
		return listTar(t, b.Bytes())
	}
	if got := write(nil); len(got) != 0 {
		t.Errorf("WriteDiff(default) = %q, want no entries", got)
	}
	want := []string{"fifo 6 "}
	if isRoot {
		want = append(want, "null 3 ") // never the 0/0 whiteout
	}
	if got := write(&WriteOptions{Devices: true, FIFOs: true}); !slices.Equal(got, want) {
		t.Errorf("WriteDiff(devices, FIFOs) = %q, want %q", got, want)
	}
}

func TestChangesEmptyLowerAndSkip(t *testing.T) {
	merged := t.TempDir()
	writeFile(t, filepath.Join(merged, "a/b"), "b", 0o644)
	writeFile(t, filepath.Join(merged, "dev/shm/x"), "x", 0o644)
	got, err := Changes(context.Background(), "", merged, &ChangesOptions{Skip: []string{"/dev/shm/"}})
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	want := []Change{{".", Modified}, {"a", Added}, {"a/b", Added}, {"dev", Added}}
	if !slices.Equal(got, want) {
		t.Errorf("Changes() = %v, want %v", got, want)
	}
	if _, err := Changes(context.Background(), "", merged, &ChangesOptions{Skip: []string{"/"}}); !errors.Is(err, ErrInsecurePath) {
		t.Errorf("Changes(skip /) = %v, want ErrInsecurePath", err)
	}
}
