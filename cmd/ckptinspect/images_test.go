package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/ocitest"
)

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImages runs the reading commands on checkpoint images made of the
// testdata archives: ckpt's (a whole v1 archive as a zstd layer) and
// podman's (the archive's members as an uncompressed layer), as a layout
// directory, an oci: reference and an oci-archive file: each is read as
// the archive it holds, under the name given.
func TestImages(t *testing.T) {
	dir := t.TempDir()
	ckpt := ocitest.Write(t, filepath.Join(dir, "ckpt-layout"), readFile(t, "../../testdata/ckpt/counter.tar.zst"), ocitest.LayerZstd, ocitest.CheckpointAnnotations)
	ckptArchive := filepath.Join(dir, "ckpt.oci.tar")
	ckpt.Tar(t, ckptArchive)
	pod := ocitest.Write(t, filepath.Join(dir, "podman-layout"), readFile(t, "../../testdata/podman/counter.tar"), ocitest.LayerTar, ocitest.CheckpointAnnotations)
	podArchive := filepath.Join(dir, "podman.oci.tar")
	pod.Tar(t, podArchive)
	for _, c := range []struct{ arg, format string }{
		{ckpt.Dir, "v1"}, {"oci:" + ckpt.Dir, "v1"}, {ckptArchive, "v1"}, {"oci-archive:" + ckptArchive + ":localhost/cp:latest", "v1"},
		{pod.Dir, "legacy"}, {podArchive, "legacy"},
	} {
		t.Run(filepath.Base(c.arg), func(t *testing.T) {
			checkImageCommands(t, c.arg, c.format)
		})
	}
	if code, out, errOut := ckptinspect("diff", ckpt.Dir, "../../testdata/ckpt/counter.tar.zst"); code != 0 {
		t.Errorf("diff of the image and its archive = %d, want identical\n%s%s", code, out, errOut)
	}
}

// emptyRow is a show row of an empty archive (a checkpoint size of 0 B
// after the format), what an image read as a plain tar gave.
var emptyRow = regexp.MustCompile(`(legacy|v1)\s+0 B`)

// checkImageCommands runs show, verify, inspect and memparse on the
// checkpoint image arg, whose archive is of format ("v1" or "legacy").
func checkImageCommands(t *testing.T, arg, format string) {
	t.Helper()
	code, out, errOut := ckptinspect("show", arg)
	if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(arg)+`\s+\S+.*\s`+format+`\s`).MatchString(out) || emptyRow.MatchString(out) {
		t.Errorf("show %s = %d\n%s%s", arg, code, out, errOut)
	}
	if code, out, errOut := ckptinspect("verify", arg); code != 0 || !strings.HasPrefix(out, arg+": ok") {
		t.Errorf("verify %s = %d\n%s%s", arg, code, out, errOut)
	}
	if code, out, errOut := ckptinspect("inspect", "--ps-tree", arg); code != 0 || !strings.Contains(out, "Process tree") {
		t.Errorf("inspect %s = %d\n%s%s", arg, code, out, errOut)
	}
	if code, out, errOut := ckptinspect("memparse", arg); code != 0 || !strings.Contains(out, "PID") {
		t.Errorf("memparse %s = %d\n%s%s", arg, code, out, errOut)
	}
}

// TestHostileImages gives show and verify images that are no checkpoint
// or whose descriptors lie: each is refused in one line naming the image
// and what is wrong, show with 1, verify with 2.
func TestHostileImages(t *testing.T) {
	counter := readFile(t, "../../testdata/podman/counter.tar")
	var rootfs bytes.Buffer
	tw := tar.NewWriter(&rootfs)
	for _, d := range []string{"bin/", "etc/", "usr/"} {
		_ = tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	_ = tw.Close()
	for _, c := range []struct {
		name string
		make func(t *testing.T, dir string) string
		want string // regexp
	}{
		{"plain image", func(t *testing.T, dir string) string {
			return ocitest.Write(t, dir, counter, ocitest.LayerTar, nil).Dir
		}, "not a checkpoint image: its manifest has no checkpoint annotation"},
		{"rootfs layer", func(t *testing.T, dir string) string {
			return ocitest.Write(t, dir, rootfs.Bytes(), ocitest.LayerTar, ocitest.CheckpointAnnotations).Dir
		}, "not a checkpoint image: its layer is not a checkpoint archive: it looks like a root filesystem tar"},
		{"bad layer digest", func(t *testing.T, dir string) string {
			l := ocitest.Write(t, dir, counter, ocitest.LayerTar, ocitest.CheckpointAnnotations)
			b := bytes.Clone(counter)
			b[len(b)/2] ^= 1
			writeTestFile(t, l.Blob(l.Layer), b)
			return l.Dir
		}, "image refused: layer " + ocitest.Digest(counter) + " has the digest sha256:"},
		{"bad manifest digest", func(t *testing.T, dir string) string {
			l := ocitest.Write(t, dir, counter, ocitest.LayerTar, ocitest.CheckpointAnnotations)
			writeTestFile(t, l.Blob(l.Manifest), append(bytes.Clone(l.Body), ' '))
			return l.Dir
		}, "image refused: manifest sha256:[0-9a-f]+ in the layout has the digest sha256:"},
		{"huge manifest", func(t *testing.T, dir string) string {
			l := ocitest.Write(t, dir, counter, ocitest.LayerTar, ocitest.CheckpointAnnotations)
			l.SetManifest(t, append(bytes.Clone(l.Body[:len(l.Body)-1]), []byte(`,"x":"`+strings.Repeat("a", 5<<20)+`"}`)...))
			return l.Dir
		}, "image refused: manifest sha256:[0-9a-f]+ is not a regular file of at most 4194304 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := c.make(t, filepath.Join(dir, "img"))
			archive := filepath.Join(dir, "img.oci.tar")
			(&ocitest.Layout{Dir: img}).Tar(t, archive)
			for _, arg := range []string{img, archive} {
				for cmd, want := range map[string]int{"show": 1, "verify": 2} {
					code, out, errOut := ckptinspect(cmd, arg)
					wantErr := "^" + regexp.QuoteMeta("ckptinspect "+cmd+": "+arg+": ") + c.want
					if code != want || out != "" || !regexp.MustCompile(wantErr).MatchString(errOut) || strings.Count(errOut, "\n") != 1 {
						t.Errorf("%s %s = %d, stdout %q, stderr %q; want %d and one line beginning %q", cmd, arg, code, out, errOut, want, wantErr)
					}
				}
			}
		})
	}
}

func writeTestFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestContainerdImage: containerd 1.7's checkpoint image (the testdata
// layout that `ctr c checkpoint --task --image --rw` made) reads as a
// layout directory and as containerd:DIR, naming its container; a
// containerd: reference to something else fails in one line; a blob
// changed fails its digest.
func TestContainerdImage(t *testing.T) {
	dir := testutil.UnpackZstdTar(t, "../../testdata/containerd/ctr-counter.tar.zst", t.TempDir())
	do := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, arg := range []string{dir, "containerd:" + dir} {
		code, out, errOut := do("show", arg)
		if code != exitOK || !strings.Contains(out, "counter1") || !strings.Contains(out, "containerd") || !strings.Contains(out, arg) {
			t.Errorf("show %s = %d:\n%s%s", arg, code, out, errOut)
		}
		if code, out, errOut := do("inspect", "--all", arg); code != exitOK || !strings.Contains(out, "pstree") && !strings.Contains(out, "Process tree") {
			t.Errorf("inspect --all %s = %d:\n%s%s", arg, code, out, errOut)
		}
	}
	other := t.TempDir()
	if code, _, errOut := do("show", "containerd:"+other); code == exitOK || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("show containerd:(empty dir) = %d: %q, want one line", code, errOut)
	}
	// A changed CRIU blob: the biggest blob is the CRIU tar.
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	var big string
	var size int64
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > size {
			big, size = b, fi.Size()
		}
	}
	data := readFile(t, big)
	data[len(data)/2] ^= 1
	if err := os.Chmod(big, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := do("show", dir); code == exitOK || !strings.Contains(errOut, "checksum") && !strings.Contains(errOut, "digest") {
		t.Errorf("show of a changed blob = %d: %q", code, errOut)
	}
}
