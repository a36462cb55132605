package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// TestImageTransferUsage: the image subcommands' usage errors exit 125
// before anything is opened.
func TestImageTransferUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "pull"}, "too few arguments"},
		{[]string{"image", "pull", "a", "b"}, "too many arguments"},
		{[]string{"image", "push"}, "too few arguments"},
		{[]string{"image", "load"}, "give the archive with -i FILE"},
		{[]string{"image", "load", "x"}, "takes no arguments"},
		{[]string{"image", "save", "img"}, "give the file to write with -o FILE"},
		{[]string{"image", "save", "-o", "f"}, "too few arguments"},
		{[]string{"image", "pul", "x"}, `did you mean "pull"`},
	} {
		code, _, errOut := ckpt(t, tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("ckpt %q = %d, %q; want %d and %q", tt.args, code, errOut, exitUsage, tt.want)
		}
	}
}

// TestImageLoadWrongFile: image load names what a file that is no image
// archive looks like and what to do with it, and stores nothing.
func TestImageLoadWrongFile(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	text, rootfs, _, _ := wrongFiles(t, dir)
	archive, _ := filepath.Abs("../../testdata/ckpt/counter.tar.zst")
	g := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
	for path, want := range map[string]string{
		text:    "it looks like a text file, not an oci-archive or docker-archive\n",
		rootfs:  "it looks like a root filesystem tar, not an oci-archive or docker-archive: import it as an image with `ckpt image import " + rootfs + " NAME`\n",
		archive: "it looks like a checkpoint archive, not an oci-archive or docker-archive: restore it with `ckpt restore --import " + archive + "`\n",
	} {
		code, out, errOut := ckpt(t, append(g, "image", "load", "-i", path)...)
		if code != exitFailure || out != "" || !strings.HasPrefix(errOut, "ckpt: load "+path+": invalid image reference: ") || !strings.HasSuffix(errOut, want) {
			t.Errorf("image load %s = exit %d, stdout %q, stderr\n%s\nwant exit 1 and ...%s", filepath.Base(path), code, out, errOut, want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "root", "image-tmp")); len(ents) > 0 {
		t.Errorf("image load left %d entries in image-tmp", len(ents))
	}
}
