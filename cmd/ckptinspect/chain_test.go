package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
)

const tinyDir = "../../format/criuimg/testdata/tiny"

// writeImages writes an archive of the image directory images under dir
// (checkpoint or pre-checkpoint), with parent when it is incremental.
func writeImages(t *testing.T, name, images, dir string, parent *format.Parent) (format.Digest, *format.Manifest) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := format.NewWriter(f, format.Manifest{Created: time.Unix(1_800_000_000, 0).UTC(), Engine: format.Engine{Name: "ckpt"},
		Container: format.Container{Name: "tiny", ID: "abc"}, Parent: parent,
		Options: format.Options{PreCheckpoint: dir == format.PreCheckpointDir, WithPrevious: parent != nil}},
		&format.WriterOptions{Compression: format.Zstd, Concurrency: 1})
	if err := w.AddDir(dir, images); err != nil {
		t.Fatal(err)
	}
	if err := w.AddBytes(format.SpecName, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, d := w.Manifest()
	return d, m
}

// TestChainCLI runs show, inspect, memparse and diff on a chain built from
// the tiny images: a pre-checkpoint archive and a child deduplicated
// against it (every page in parent).
func TestChainCLI(t *testing.T) {
	dir := t.TempDir()
	full := writeArchive(t, dir, "full.ckpt", `{}`)
	other := writeArchive(t, dir, "other.ckpt", `{"annotations":{"x":"1"}}`)
	preDir, childDir := filepath.Join(dir, "pre"), filepath.Join(dir, "child")
	for _, d := range []string{preDir, childDir} {
		if err := os.CopyFS(d, os.DirFS(tinyDir)); err != nil {
			t.Fatal(err)
		}
	}
	pre := filepath.Join(dir, "pre.ckpt")
	pd, pm := writeImages(t, pre, preDir, format.PreCheckpointDir, nil)
	if _, err := incremental.Dedup(context.Background(), preDir, childDir, &incremental.Options{PageSize: 4096, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(childDir, "parent")); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "child.ckpt")
	writeImages(t, child, childDir, format.CheckpointDir,
		&format.Parent{Manifest: pd, Images: format.ImagesDigest(pm.Members, format.PreCheckpointDir), Depth: 1})

	runCLI := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	expect := func(wantCode int, wantOut, wantErr string, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(args...)
		if code != wantCode || !strings.Contains(out, wantOut) || !strings.Contains(errOut, wantErr) {
			t.Errorf("run(%q) = %d, want %d\nstdout (want %q):\n%.3000s\nstderr (want %q):\n%s", args, code, wantCode, wantOut, out, wantErr, errOut)
		}
		return out
	}
	short := string(pd)[:len("sha256:")+12]
	expect(0, "delta of "+short+" depth 1", "", "show", child, pre)
	expect(0, "pre-checkpoint", "", "show", pre)
	expect(0, `"depth": 1`, "", "show", "--json", child)

	want := expect(0, "|", "", "memparse", "--pid", "22558", full)
	if got := expect(0, "", "", "memparse", "--pid", "22558", child, "--parent", pre); got != want {
		t.Errorf("memparse --pid of child --parent pre differs from the full archive's")
	}
	expect(0, "in parent (not given)", "", "memparse", "--pid", "22558", child)
	expect(0, "IN PARENT", "", "memparse", child)
	expect(0, "ghost", "", "memparse", "-s", "ghost", child, "--parent", pre)
	expect(0, "", "not searched", "memparse", "-s", "ghost", child)
	expect(1, "", "parent", "memparse", "--pid", "22558", child, "--parent", other)

	expect(0, "Command line: ", "", "inspect", "--ps-tree-cmd", child, "--parent", pre)
	expect(0, "command line in parent (not given)", "", "inspect", "--ps-tree-cmd", child)
	expect(1, "", "parent", "inspect", "--ps-tree-cmd", child, "--parent", other)

	if out := expect(1, "Fields", "", "diff", full, child, "--parent", pre); strings.Contains(out, "Memory") || strings.Contains(out, "Not compared") {
		t.Errorf("diff full child --parent pre reports memory:\n%s", out)
	}
	expect(1, "Not compared", "", "diff", full, child)
	expect(2, "", "parent", "diff", full, child, "--parent", other)
	// Sealed, child and parent each to its own key: --parent is opened too.
	sd1, sd2 := filepath.Join(dir, "s1"), filepath.Join(dir, "s2")
	for _, d := range []string{sd1, sd2} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sChild, k1, _ := sealFile(t, child, sd1)
	sPre, k2, _ := sealFile(t, pre, sd2)
	if got := expect(0, "", "", "memparse", "--pid", "22558", sChild, "--parent", sPre, "--decrypt-key", k1, "--decrypt-key", k2); got != want {
		t.Errorf("memparse --pid of the sealed child --parent the sealed pre differs from the full archive's")
	}
	expect(2, "", "s2/counter.sealed: no key given opens the sealed archive: it is sealed for an ssh-ed25519 key", "memparse", "--pid", "22558", sChild, "--parent", sPre, "--decrypt-key", k1)

	_, _, e := runCLI("memparse", "--pid", "22558", child, "--parent", other)
	t.Logf("wrong parent: %s", e)
}
