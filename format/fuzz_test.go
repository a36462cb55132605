package format_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// fuzzOpts caps what a fuzz input may make a reader allocate (zstd's
// fuzz_test.go caps its decoder the same way): the package limits are
// sized for real checkpoints, not for thousands of executions a second.
func fuzzOpts() *format.ReaderOptions {
	return &format.ReaderOptions{MaxMemberSize: 1 << 20, MaxTotalSize: 8 << 20, MaxMembers: 1000, Concurrency: 1}
}

// addGoldenSeeds adds every golden archive, and every small hostile case,
// to f's corpus.
func addGoldenSeeds(f *testing.F) {
	files, err := filepath.Glob("testdata/golden/*.ckpt")
	if err != nil || len(files) == 0 {
		f.Fatalf("no goldens: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	hostile, _ := filepath.Glob("testdata/hostile/*.txtar")
	for _, file := range hostile {
		c, err := readHostile(file)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		if len(c.archive) < 64<<10 {
			f.Add(c.archive)
		}
	}
	// The real ckpt export and the cases of TestHostileContents made of
	// it (hostile CRIU images whose digests match).
	if b, err := os.ReadFile(realCkpt); err == nil {
		f.Add(b)
	}
	for _, c := range contentCases() {
		if c.opts != nil || c.legacy {
			continue
		}
		if b := c.build(f, format.Zstd); len(b) < 64<<10 {
			f.Add(b)
		}
	}
}

// fuzzMember is a member as read.
type fuzzMember struct {
	name    string
	data    []byte
	regular bool
}

// readMembers reads every regular member of data; complete reports that
// the whole archive was read without error.
func readMembers(data []byte) (members []fuzzMember, zr *format.Reader, complete bool) {
	zr, err := format.NewReader(bytes.NewReader(data), fuzzOpts())
	if err != nil {
		return nil, nil, false
	}
	defer zr.Close()
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			return members, zr, true
		}
		if err != nil {
			return members, zr, false
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return members, zr, false
		}
		members = append(members, fuzzMember{h.Name, b, h.Typeflag == '0'})
	}
}

// membersDiff says how got differs from want ("" if it does not): the
// first member whose name, kind or content differs, or a missing or
// extra member.
func membersDiff(got, want []fuzzMember) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		switch {
		case g.name != w.name:
			return fmt.Sprintf("member %d is %q, want %q", i, g.name, w.name)
		case g.regular != w.regular:
			return fmt.Sprintf("member %q: regular %v, want %v", g.name, g.regular, w.regular)
		case !bytes.Equal(g.data, w.data):
			return fmt.Sprintf("member %q: %d bytes differ from the %d read first", g.name, len(g.data), len(w.data))
		}
	}
	switch {
	case len(got) > len(want):
		return fmt.Sprintf("extra member %q (%d members, want %d)", got[len(want)].name, len(got), len(want))
	case len(got) < len(want):
		return fmt.Sprintf("member %q missing (%d members, want %d)", want[len(got)].name, len(got), len(want))
	}
	return ""
}

// FuzzReader reads arbitrary bytes as an archive. Whatever reads fully
// must write back with Writer (which may refuse nothing the reader
// accepted, for v1 names) and read again to the same members and manifest.
func FuzzReader(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(checkRoundTrip)
}

// checkRoundTrip is FuzzReader's body.
func checkRoundTrip(t *testing.T, data []byte) {
	{
		members, zr, complete := readMembers(data)
		if !complete {
			return
		}
		m := zr.Manifest()
		hdr := *m
		if zr.Legacy() {
			// A legacy archive may hold what v1 cannot (directories,
			// the parent link, other names): round-trip the rest.
			hdr = format.Manifest{Created: m.Created, Engine: format.Engine{Name: "fuzz"}}
			if hdr.Created.IsZero() {
				hdr.Created = time.Unix(0, 0)
			}
			var keep []fuzzMember
			for _, e := range members {
				if e.regular && format.KindOf(e.name) != format.KindOther {
					keep = append(keep, e)
				}
			}
			// Legacy members come in any order (FORMAT.md rule 20);
			// the writer writes them sorted.
			slices.SortStableFunc(keep, func(a, b fuzzMember) int { return strings.Compare(a.name, b.name) })
			members = keep
		}
		var buf bytes.Buffer
		w := format.NewWriter(&buf, hdr, &format.WriterOptions{Compression: format.None, Concurrency: 1})
		for _, e := range members {
			if err := w.AddBytes(e.name, e.data); err != nil {
				t.Fatalf("AddBytes(%q) of a member the reader accepted = %v", e.name, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		again, zr2, complete := readMembers(buf.Bytes())
		if !complete || zr2.Legacy() {
			t.Fatalf("re-read of the re-written archive failed (legacy %v)", zr2 != nil && zr2.Legacy())
		}
		if d := membersDiff(again, members); d != "" {
			t.Fatalf("re-read of the re-written archive: %s", d)
		}
		if !zr.Legacy() {
			m2 := zr2.Manifest()
			if !m2.Created.Equal(m.Created) || m2.Engine != m.Engine || m2.Container != m.Container ||
				!reflect.DeepEqual(m2.Host, m.Host) || !reflect.DeepEqual(m2.Parent, m.Parent) ||
				!reflect.DeepEqual(m2.Members, m.Members) {
				t.Fatalf("re-read manifest = %+v, want %+v", m2, m)
			}
		}
	}
}

// FuzzManifest parses arbitrary bytes as a manifest. Whatever parses must
// marshal, parse again to an equal manifest, and marshal to the same
// bytes.
func FuzzManifest(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.zstd.ckpt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		m, _, err := format.ReadManifest(bytes.NewReader(b))
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		mb, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mb)
	}
	hostile, _ := filepath.Glob("testdata/hostile/*.txtar")
	for _, file := range hostile {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, tf := range tarbuild.ParseTxtar(data).Files {
			if tf.Name == format.ManifestName {
				f.Add(tf.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := format.ParseManifest(data)
		if err != nil {
			return
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal() of a parsed manifest = %v", err)
		}
		m2, err := format.ParseManifest(b)
		if err != nil {
			t.Fatalf("ParseManifest(Marshal()) = %v\n%s", err, b)
		}
		if !m2.Created.Equal(m.Created) {
			t.Fatalf("Created = %v, want %v", m2.Created, m.Created)
		}
		m2.Created = m.Created
		if !reflect.DeepEqual(m2, m) {
			t.Fatalf("ParseManifest(Marshal()) = %+v, want %+v", m2, m)
		}
		b2, err := m2.Marshal()
		if err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("second Marshal() = %s, %v, want %s", b2, err, b)
		}
	})
}

// FuzzVerify verifies arbitrary bytes: Verify never panics, returns an
// error only for trouble with its source (none here), a report without
// problems means a reader reads the archive to its end, and Extract
// refuses exactly the archives Verify finds a problem in (one code path),
// leaving its directory empty.
func FuzzVerify(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := format.Verify(bytes.NewReader(data), &format.VerifyOptions{Reader: *fuzzOpts()})
		if err != nil {
			t.Fatalf("Verify() error = %v, want problems in the report", err)
		}
		if rep == nil {
			t.Fatal("Verify() returned no report")
		}
		dir := t.TempDir()
		_, xerr := format.Extract(context.Background(), bytes.NewReader(data), dir, &format.ExtractOptions{Reader: *fuzzOpts()})
		if (xerr == nil) != (len(rep.Problems) == 0) {
			t.Fatalf("Verify() found %d problems (%v), Extract() = %v: they must agree", len(rep.Problems), rep.Err(), xerr)
		}
		if xerr != nil {
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("Extract() = %v and left %d entries", xerr, len(ents))
			}
			return
		}
		if err := readArchive(bytes.NewReader(data), fuzzOpts()); err != nil {
			t.Fatalf("Verify() found no problem, but reading fails: %v", err)
		}
	})
}
