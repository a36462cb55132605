package format_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

var update = flag.Bool("update", false, "rewrite golden archives")

// compressions are the compressions every golden source is written with.
var compressions = []format.Compression{format.Zstd, format.Gzip, format.None}

// goldenKeys are the keys a testdata/src/*.txtar comment may use: the
// manifest header fields, and where further members come from.
//
//	created=RFC3339        Manifest.Created
//	engine=NAME VERSION    Manifest.Engine
//	container=NAME ID      Manifest.Container.Name and ID
//	image=NAME ID          Manifest.Container.Image and ImageID
//	runtime=NAME VERSION   Container.Runtime, Host.RuntimeVersion
//	host=KERNEL ARCH CRIU  Host.Kernel, Arch, CRIUVersion
//	cpu=VENDOR|MODEL|F,F   Host.CPU
//	options=a,b            Manifest.Options booleans by JSON name
//	images=DIR             every file of DIR (relative to format/) as
//	                       checkpoint/<file>: real CRIU images
//	preImages=DIR          the same as pre-checkpoint/<file>
//	parent=SRC             the parent is testdata/src/SRC.txtar written
//	                       with the same compression
//
// A file whose name is followed by "gen=tar" is an inner tar generated
// from its lines, "NAME CONTENT" each (CONTENT may be Go-quoted; a NAME
// ending in / is a directory), through format.StreamSource.
var goldenKeys = []string{"created", "engine", "container", "image", "runtime", "host", "cpu", "options", "images", "preImages", "parent"}

// goldenSrc is one parsed testdata/src file.
type goldenSrc struct {
	name    string
	header  format.Manifest
	members map[string][]byte // name -> content, for checking what is read back
	sources map[string]format.Source
	parent  string
}

func readGoldenSrc(name string) (*goldenSrc, error) {
	data, err := os.ReadFile(filepath.Join("testdata/src", name+".txtar"))
	if err != nil {
		return nil, err
	}
	a := tarbuild.ParseTxtar(data)
	keys, err := tarbuild.Keys(a.Comment, goldenKeys...)
	if err != nil {
		return nil, err
	}
	g := &goldenSrc{name: name, members: map[string][]byte{}, sources: map[string]format.Source{}}
	h := &g.header
	for k, vs := range keys {
		v := vs[len(vs)-1]
		f := strings.Fields(v)
		need := func(n int) error {
			if len(f) != n {
				return fmt.Errorf("%s=%s: want %d fields", k, v, n)
			}
			return nil
		}
		switch k {
		case "created":
			if h.Created, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, err
			}
		case "engine":
			if err := need(2); err != nil {
				return nil, err
			}
			h.Engine = format.Engine{Name: f[0], Version: f[1]}
		case "container":
			if err := need(2); err != nil {
				return nil, err
			}
			h.Container.Name, h.Container.ID = f[0], f[1]
		case "image":
			if err := need(2); err != nil {
				return nil, err
			}
			h.Container.Image, h.Container.ImageID = f[0], f[1]
		case "runtime":
			if err := need(2); err != nil {
				return nil, err
			}
			h.Container.Runtime, h.Host.RuntimeVersion = f[0], f[1]
		case "host":
			if err := need(3); err != nil {
				return nil, err
			}
			h.Host.Kernel, h.Host.Arch, h.Host.CRIUVersion = f[0], f[1], f[2]
		case "cpu":
			p := strings.Split(v, "|")
			if len(p) != 3 {
				return nil, fmt.Errorf("cpu=%s: want VENDOR|MODEL|FLAGS", v)
			}
			h.Host.CPU = format.CPU{Vendor: p[0], Model: p[1], Flags: strings.Split(p[2], ",")}
		case "options":
			for _, o := range strings.Split(v, ",") {
				ptr := map[string]*bool{
					"leaveRunning": &h.Options.LeaveRunning, "tcpEstablished": &h.Options.TCPEstablished,
					"fileLocks": &h.Options.FileLocks, "preCheckpoint": &h.Options.PreCheckpoint,
					"withPrevious": &h.Options.WithPrevious, "ignoreRootfs": &h.Options.IgnoreRootfs,
					"ignoreVolumes": &h.Options.IgnoreVolumes,
				}[o]
				if ptr == nil {
					return nil, fmt.Errorf("options: unknown option %q", o)
				}
				*ptr = true
			}
		case "images", "preImages":
			dir := format.CheckpointDir
			if k == "preImages" {
				dir = format.PreCheckpointDir
			}
			ents, err := os.ReadDir(v)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(v, e.Name()))
				if err != nil {
					return nil, err
				}
				g.add(dir+"/"+e.Name(), b, nil)
			}
		case "parent":
			g.parent = v
		}
	}
	for _, f := range a.Files {
		fields, err := tarbuild.Fields(f.Name)
		if err != nil {
			return nil, err
		}
		switch {
		case len(fields) == 1:
			g.add(fields[0], f.Data, nil)
		case len(fields) == 2 && fields[1] == "gen=tar":
			entries, err := innerEntries(f.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f.Name, err)
			}
			gen := func(w io.Writer) error { return writeInnerTar(w, entries, h.Created) }
			var buf bytes.Buffer
			if err := gen(&buf); err != nil {
				return nil, err
			}
			g.add(fields[0], buf.Bytes(), format.StreamSource(gen))
		default:
			return nil, fmt.Errorf("file %q: want NAME or NAME gen=tar", f.Name)
		}
	}
	return g, nil
}

func (g *goldenSrc) add(name string, content []byte, src format.Source) {
	if src == nil {
		src = format.BytesSource(content)
	}
	g.members[name], g.sources[name] = content, src
}

type innerEntry struct {
	name    string
	content string
}

func innerEntries(data []byte) ([]innerEntry, error) {
	var out []innerEntry
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, content, _ := strings.Cut(line, " ")
		if strings.HasPrefix(content, `"`) {
			var err error
			if content, err = strconv.Unquote(content); err != nil {
				return nil, fmt.Errorf("line %q: %v", line, err)
			}
		}
		out = append(out, innerEntry{name, content})
	}
	return out, nil
}

// writeInnerTar writes entries as a deterministic tar.
func writeInnerTar(w io.Writer, entries []innerEntry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.content)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if strings.HasSuffix(e.name, "/") {
			h.Mode, h.Size, h.Typeflag = 0o755, 0, tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, e.content); err != nil {
			return err
		}
	}
	return tw.Close()
}

// goldenArchive is a golden source written with one compression.
type goldenArchive struct {
	src      *goldenSrc
	c        format.Compression
	data     []byte
	manifest *format.Manifest
	digest   format.Digest
	parent   *goldenArchive
}

func (a *goldenArchive) file() string {
	return filepath.Join("testdata/golden", a.src.name+"."+string(a.c)+".ckpt")
}

// buildGolden writes the source name with compression c, writing its
// parent first; built caches the results.
func buildGolden(t *testing.T, name string, c format.Compression, built map[string]*goldenArchive, depth int) *goldenArchive {
	t.Helper()
	key := name + "." + string(c)
	if a := built[key]; a != nil {
		return a
	}
	if depth > format.MaxParentDepth+1 {
		t.Fatalf("%s: parent chain too deep (a cycle?)", name)
	}
	g, err := readGoldenSrc(name)
	if err != nil {
		t.Fatalf("testdata/src/%s.txtar: %v", name, err)
	}
	a := &goldenArchive{src: g, c: c}
	hdr := g.header
	if g.parent != "" {
		a.parent = buildGolden(t, g.parent, c, built, depth+1)
		pm := a.parent.manifest
		depth := 1
		if pm.Parent != nil {
			depth = pm.Parent.Depth + 1
		}
		hdr.Parent = &format.Parent{Manifest: a.parent.digest, Images: format.ImagesDigest(pm.Members, pm.ImagesDir()), Depth: depth}
	}
	var buf bytes.Buffer
	// Concurrency 3 on purpose: the output must not depend on it.
	w := format.NewWriter(&buf, hdr, &format.WriterOptions{Compression: c, Concurrency: 3})
	names := slices.Collect(mapKeys(g.sources))
	slices.Sort(names)
	slices.Reverse(names) // the Writer sorts
	for _, n := range names {
		if err := w.Add(n, g.sources[n]); err != nil {
			t.Fatalf("%s: Add(%q) = %v", key, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("%s: Close() = %v", key, err)
	}
	a.data = buf.Bytes()
	a.manifest, a.digest = w.Manifest()
	built[key] = a
	return a
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// goldenSources returns the names of testdata/src/*.txtar.
func goldenSources(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/src/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden sources: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".txtar"))
	}
	return names
}

// allGoldens builds every golden source with every compression.
func allGoldens(t *testing.T) []*goldenArchive {
	t.Helper()
	built := map[string]*goldenArchive{}
	var out []*goldenArchive
	for _, name := range goldenSources(t) {
		for _, c := range compressions {
			out = append(out, buildGolden(t, name, c, built, 0))
		}
	}
	return out
}

// TestGolden writes every source of testdata/src with every compression,
// requires the bytes of testdata/golden (rewritten with -update), and reads
// each golden back: members, manifest, Verify, Extract and the parent chain.
func TestGolden(t *testing.T) {
	goldens := allGoldens(t)
	want := map[string]bool{}
	for _, a := range goldens {
		want[filepath.Base(a.file())] = true
		t.Run(filepath.Base(a.file()), func(t *testing.T) {
			if *update {
				if err := os.WriteFile(a.file(), a.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			stored, err := os.ReadFile(a.file())
			if err != nil {
				t.Fatalf("%v (run go test ./format -run TestGolden -update)", err)
			}
			if !bytes.Equal(stored, a.data) {
				t.Errorf("Writer output (%d bytes) differs from %s (%d bytes) at byte %d", len(a.data), a.file(), len(stored), firstDiff(stored, a.data))
			}
			checkGolden(t, a, stored)
		})
	}
	// No stale goldens.
	files, _ := filepath.Glob("testdata/golden/*.ckpt")
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s has no source in testdata/src", f)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkGolden reads the archive b of a back every way there is.
func checkGolden(t *testing.T, a *goldenArchive, b []byte) {
	t.Helper()
	// NewReader + read-all gives back the members, in order.
	zr, err := format.NewReader(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("NewReader() = %v", err)
	}
	defer zr.Close()
	if zr.Legacy() || zr.Compression() != a.c || zr.ManifestDigest() != a.digest {
		t.Errorf("Legacy(), Compression(), ManifestDigest() = %v, %v, %v, want false, %v, %v", zr.Legacy(), zr.Compression(), zr.ManifestDigest(), a.c, a.digest)
	}
	var names []string
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("read %s = %v", h.Name, err)
		}
		if want, ok := a.src.members[h.Name]; !ok || !bytes.Equal(data, want) {
			t.Errorf("member %s = %d bytes, want %d bytes (listed: %v)", h.Name, len(data), len(want), ok)
		}
		if h.Kind != format.KindOf(h.Name) || h.Size != int64(len(data)) || h.Digest != format.DigestBytes(data) {
			t.Errorf("header of %s = %+v", h.Name, h)
		}
		names = append(names, h.Name)
	}
	if !slices.IsSorted(names) || len(names) != len(a.src.members) {
		t.Errorf("members = %q, want the %d sources sorted", names, len(a.src.members))
	}

	// The manifest records the header fields.
	m, d, err := format.ReadManifest(bytes.NewReader(b))
	if err != nil || d != a.digest {
		t.Fatalf("ReadManifest() = %v, %v, want digest %v", d, err, a.digest)
	}
	hdr := a.src.header
	if m.Version != format.Version || !m.Created.Equal(hdr.Created) || m.Engine != hdr.Engine || m.Container != hdr.Container ||
		m.Host.Kernel != hdr.Host.Kernel || m.Host.CRIUVersion != hdr.Host.CRIUVersion || m.Options.Compression != string(a.c) {
		t.Errorf("ReadManifest() = %+v, want the header of %s", m, a.src.name)
	}
	if (m.Parent != nil) != (a.parent != nil) {
		t.Errorf("ReadManifest().Parent = %+v, want parent %v", m.Parent, a.parent != nil)
	}

	// The verifier is the oracle.
	rep, err := format.Verify(bytes.NewReader(b), nil)
	if err != nil || rep.Err() != nil {
		t.Errorf("Verify() = %v, %v", rep.Err(), err)
	}
	if rep.Legacy || rep.ManifestDigest != a.digest {
		t.Errorf("Verify() report: Legacy %v, ManifestDigest %v, want false, %v", rep.Legacy, rep.ManifestDigest, a.digest)
	}

	// The parent chain checks out.
	var chain []format.Link
	for p := a; p != nil; p = p.parent {
		chain = append(chain, format.Link{Manifest: p.manifest, Digest: p.digest})
	}
	if err := format.CheckChain(chain); err != nil {
		t.Errorf("CheckChain() = %v", err)
	}

	// Extract writes every member and nothing else.
	s := newStage(t)
	if _, err := format.Extract(context.Background(), bytes.NewReader(b), s.dir, nil); err != nil {
		t.Fatalf("Extract() = %v", err)
	}
	s.check(t, false)
	n := 0
	err = filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		rel = filepath.ToSlash(rel)
		got, err := os.ReadFile(p)
		if want, ok := a.src.members[rel]; !ok || err != nil || !bytes.Equal(got, want) {
			t.Errorf("extracted %s: %d bytes, %v; listed %v", rel, len(got), err, ok)
		}
		if fi, _ := d.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("extracted %s has mode %v, want 0600", rel, fi.Mode())
		}
		n++
		return nil
	})
	if err != nil || n != len(a.src.members) {
		t.Errorf("Extract() wrote %d files (%v), want %d", n, err, len(a.src.members))
	}
}
