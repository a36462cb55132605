package inspect

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// goldenArchives are the archives with golden outputs: a ckpt v1 archive
// built from real CRIU images, the podman-made archive and the CRI-O- and
// containerd-shaped ones.
func goldenArchives(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"tiny-ckpt":  writeTiny(t, dir, "tiny.ckpt", tinyOptions{}),
		"podman":     filepath.Join(repoTestdata, "podman", "counter.tar.zst"),
		"crio":       filepath.Join(repoTestdata, "legacy", "crio.tar"),
		"containerd": filepath.Join(repoTestdata, "legacy", "containerd.tar"),
	}
}

func TestGolden(t *testing.T) {
	ctx := context.Background()
	for name, path := range goldenArchives(t) {
		t.Run(name, func(t *testing.T) {
			s, err := Show(ctx, path, &ShowOptions{Verify: true})
			if err != nil {
				t.Fatalf("Show(%s) = %v", path, err)
			}
			s.Path = filepath.Base(path)
			var b bytes.Buffer
			if err := WriteShow(&b, []*Summary{s}); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".show", b.Bytes())
			b.Reset()
			if err := WriteJSON(&b, ShowJSON{Version: JSONVersion, Archives: []*Summary{s}}); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".show.json", b.Bytes())

			o := All()
			in, err := Inspect(ctx, path, &o)
			if err != nil {
				t.Fatalf("Inspect(%s) = %v", path, err)
			}
			in.Path = filepath.Base(path)
			b.Reset()
			if err := WriteInspection(&b, in); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".tree", b.Bytes())
			b.Reset()
			if err := WriteJSON(&b, InspectJSON{Version: JSONVersion, Archives: []*Inspection{in}}); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", b.Bytes())

			a, err := Load(ctx, path, &LoadOptions{Images: true, Pages: true})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			rows, err := a.MemoryUsage()
			if err != nil {
				t.Fatal(err)
			}
			b.Reset()
			if err := WriteMemUsage(&b, rows); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".memparse", b.Bytes())
		})
	}
}

func TestGoldenMemparse(t *testing.T) {
	ctx := context.Background()
	path := writeTiny(t, t.TempDir(), "tiny.ckpt", tinyOptions{})
	a, err := Load(ctx, path, &LoadOptions{Images: true, Pages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var b bytes.Buffer
	if err := a.HexDump(&b, 22558); err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b.Bytes(), []byte("\n"))
	if len(lines) < 300 || !bytes.Contains(b.Bytes(), []byte("\n*\n")) {
		t.Fatalf("HexDump() gave %d lines without a collapsed run", len(lines))
	}
	golden(t, "tiny-22558.hexdump-head", bytes.Join(lines[:300], nil))
	ms, err := a.Search(SearchOptions{Regexp: "ghost|pipe data", Context: 4})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := WriteMatches(&b, ms); err != nil {
		t.Fatal(err)
	}
	golden(t, "tiny.search", b.Bytes())
	b.Reset()
	if err := WriteJSON(&b, MemparseJSON{Version: JSONVersion, Path: "tiny.ckpt", Matches: ms}); err != nil {
		t.Fatal(err)
	}
	golden(t, "tiny.search.json", b.Bytes())
}
