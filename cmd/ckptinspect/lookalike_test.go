package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainNotCheckpoint: a command given a file that is no checkpoint
// archive says what the file looks like, whether it fails on it (text) or
// reads it as a legacy archive (a tar); one given a corrupt checkpoint
// archive adds nothing.
func TestExplainNotCheckpoint(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := writeArchive(t, dir, "a.ckpt", `{}`)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.ckpt")
	if err := os.WriteFile(corrupt, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs, _ := filepath.Abs("../../testdata/podman/rootfs.tar.gz")
	for _, cmd := range []string{"show", "inspect", "verify"} {
		for file, want := range map[string]string{
			text:    "ckptinspect: " + text + " is not a checkpoint archive: it looks like a text file\n",
			rootfs:  "ckptinspect: " + rootfs + " is not a checkpoint archive: it looks like a root filesystem tar\n",
			corrupt: "",
		} {
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{cmd, file}, &out, &errOut)
			if (file == text || file == corrupt && cmd == "verify") && code == exitOK {
				t.Errorf("ckptinspect %s %s succeeded", cmd, filepath.Base(file))
			}
			if got := strings.Contains(errOut.String(), "is not a checkpoint archive"); !strings.HasSuffix(errOut.String(), want) || got != (want != "") {
				t.Errorf("ckptinspect %s %s: stderr\n%s\nwant it to end with %q", cmd, filepath.Base(file), errOut.String(), want)
			}
		}
	}
}
