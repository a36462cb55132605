package format_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// caseTimeout bounds one read, verify or extract of a test archive: a
// hostile archive must be rejected, not spun on.
const caseTimeout = 20 * time.Second

// sentinels maps the names a test case may give in wantIs.
var sentinels = map[string]error{
	"ErrFormat":             format.ErrFormat,
	"ErrChecksum":           format.ErrChecksum,
	"ErrInsecurePath":       format.ErrInsecurePath,
	"ErrTooLarge":           format.ErrTooLarge,
	"ErrUnsupportedVersion": format.ErrUnsupportedVersion,
	"ErrManifest":           format.ErrManifest,
	"ErrNoManifest":         format.ErrNoManifest,
	"ErrCompression":        format.ErrCompression,
	"ErrParent":             format.ErrParent,
	"ErrImage":              format.ErrImage,
}

// hostileKeys are the keys a testdata/hostile/*.txtar comment may use.
//
//	wantErr=S       the error of NewReader+read-all and of Extract, and a
//	                problem of Verify's report, contains S (required)
//	wantIs=ErrX     those errors wrap the sentinel ErrX
//	verifyErr=S     Verify's report contains S instead of wantErr
//	verifyProblems=N  Verify's report has exactly N problems
//	manifest=none   no manifest member (a legacy archive); by default a
//	                manifest listing every regular entry with a v1 name is
//	                generated, unless the case has a ckpt.manifest.json file
//	unlist=NAME     leave NAME out of the generated manifest
//	missing=NAME    list NAME (empty content) without storing it
//	digest=NAME     list a wrong digest for NAME
//	size=NAME=N     list size N for NAME
//	version=N       the generated manifest's version
//	parentDepth=N   give the generated manifest a parent of depth N
//	compress=C      compress the tar: none (default), zstd or gzip
//	noend=true      leave out the tar end blocks
//	trailing=Q      append the Go-quoted Q after the compressed stream
//	cut=N           drop the last N bytes of the compressed stream
//	raw=Q           the archive is exactly the Go-quoted Q
//	zeros=N         followed by (or, without raw, only) N zero bytes
//	maxMember=N, maxTotal=N, maxMembers=N, requireManifest=true:
//	                ReaderOptions
//
// A file's name is a member name (Go-quoted when it needs to be) followed
// by attributes: type=reg|dir|symlink|hardlink|char|block|fifo|sparse|cont,
// link=TARGET, size=N (the header's size field), mode=N, uid=N (and gid),
// uname=NAME, mtime=UNIX, gnu=true (GNU magic) and pax.KEY=VALUE.
var hostileKeys = []string{
	"wantErr", "wantIs", "verifyErr", "verifyProblems", "manifest", "unlist", "missing", "digest", "size",
	"version", "parentDepth", "compress", "noend", "trailing", "cut", "raw", "zeros",
	"maxMember", "maxTotal", "maxMembers", "requireManifest",
}

var typeflags = map[string]byte{
	"reg": '0', "dir": '5', "symlink": '2', "hardlink": '1', "char": '3',
	"block": '4', "fifo": '6', "sparse": 'S', "cont": '7',
}

// hostileCase is one archive that every reading path must reject.
type hostileCase struct {
	name      string
	archive   []byte
	gen       func() io.Reader // instead of archive, for archives too big to keep
	opts      format.ReaderOptions
	wantErr   string
	wantIs    error
	verifyErr string
	problems  int // Verify's exact problem count; 0: any
}

func (c *hostileCase) open() io.Reader {
	if c.gen != nil {
		return c.gen()
	}
	return bytes.NewReader(c.archive)
}

// readHostile parses one testdata/hostile txtar file.
func readHostile(file string) (*hostileCase, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	a := tarbuild.ParseTxtar(data)
	keys, err := tarbuild.Keys(a.Comment, hostileKeys...)
	if err != nil {
		return nil, err
	}
	one := func(k string) string {
		if v := keys[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	atoi := func(k string) (int64, error) {
		if one(k) == "" {
			return 0, nil
		}
		return strconv.ParseInt(one(k), 10, 64)
	}
	c := &hostileCase{name: strings.TrimSuffix(filepath.Base(file), ".txtar"), wantErr: one("wantErr"), verifyErr: one("verifyErr")}
	if c.wantErr == "" {
		return nil, fmt.Errorf("no wantErr")
	}
	if s := one("wantIs"); s != "" {
		if c.wantIs = sentinels[s]; c.wantIs == nil {
			return nil, fmt.Errorf("wantIs=%s: unknown sentinel", s)
		}
	}
	for k, dst := range map[string]*int64{"maxMember": &c.opts.MaxMemberSize, "maxTotal": &c.opts.MaxTotalSize} {
		if *dst, err = atoi(k); err != nil {
			return nil, err
		}
	}
	n, err := atoi("maxMembers")
	if err != nil {
		return nil, err
	}
	c.opts.MaxMembers = int(n)
	if n, err = atoi("verifyProblems"); err != nil {
		return nil, err
	}
	c.problems = int(n)
	c.opts.RequireManifest = one("requireManifest") == "true"
	if raw := one("raw"); raw != "" || one("zeros") != "" {
		b, err := strconv.Unquote(raw)
		if raw == "" {
			b, err = "", nil
		}
		if err != nil {
			return nil, fmt.Errorf("raw: %v", err)
		}
		zeros, err := atoi("zeros")
		if err != nil {
			return nil, err
		}
		c.archive = append([]byte(b), make([]byte, zeros)...)
		return c, nil
	}

	// The tar entries.
	var entries []tarbuild.Raw
	for _, f := range a.Files {
		fields, err := tarbuild.Fields(f.Name)
		if err != nil {
			return nil, err
		}
		e := tarbuild.Raw{Name: fields[0], Content: f.Data}
		for _, attr := range fields[1:] {
			k, v, _ := strings.Cut(attr, "=")
			switch {
			case k == "type":
				if e.Type = typeflags[v]; e.Type == 0 {
					return nil, fmt.Errorf("%s: unknown type %q", f.Name, v)
				}
			case k == "link":
				e.Linkname = v
			case k == "size":
				if e.Size, err = strconv.ParseInt(v, 10, 64); err != nil {
					return nil, err
				}
				e.SetSize = true
			case k == "mode" || k == "uid" || k == "mtime":
				n, err := strconv.ParseInt(v, 0, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", attr, err)
				}
				*map[string]*int64{"mode": &e.Mode, "uid": &e.Uid, "mtime": &e.ModTime}[k] = n
			case k == "uname":
				e.Uname = v
			case k == "gnu":
				e.GNU = v == "true"
			case strings.HasPrefix(k, "pax."):
				e.PAX = append(e.PAX, strings.TrimPrefix(k, "pax.")+"="+v)
			default:
				return nil, fmt.Errorf("%s: unknown attribute %q", f.Name, attr)
			}
		}
		entries = append(entries, e)
	}
	hasManifest := slices.ContainsFunc(entries, func(e tarbuild.Raw) bool { return e.Name == format.ManifestName })
	if one("manifest") != "none" && !hasManifest {
		m, err := caseManifest(entries, keys)
		if err != nil {
			return nil, err
		}
		entries = append([]tarbuild.Raw{{Name: format.ManifestName, Content: m}}, entries...)
	} else if one("manifest") != "" && one("manifest") != "none" {
		return nil, fmt.Errorf("manifest=%s: want none", one("manifest"))
	}
	var b []byte
	if one("noend") == "true" {
		b = tarbuild.RawTarNoEnd(entries...)
	} else {
		b = tarbuild.RawTar(entries...)
	}
	switch one("compress") {
	case "", "none":
	case "zstd":
		b = tarbuild.Zstd(b)
	case "gzip":
		b = tarbuild.Gzip(b)
	default:
		return nil, fmt.Errorf("compress=%s: want none, zstd or gzip", one("compress"))
	}
	cut, err := atoi("cut")
	if err != nil {
		return nil, err
	}
	b = b[:len(b)-int(cut)]
	if q := one("trailing"); q != "" {
		s, err := strconv.Unquote(q)
		if err != nil {
			return nil, fmt.Errorf("trailing: %v", err)
		}
		b = append(b, s...)
	}
	c.archive = b
	return c, nil
}

// caseManifest generates the manifest of a hostile case: every regular
// entry with a v1 member name, sorted, then the keys' changes.
func caseManifest(entries []tarbuild.Raw, keys map[string][]string) ([]byte, error) {
	m := format.Manifest{
		Version: format.Version,
		Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Engine:  format.Engine{Name: "ckpt", Version: "test"},
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if (e.Type != 0 && e.Type != '0') || seen[e.Name] || slices.Contains(keys["unlist"], e.Name) ||
			format.CheckName(e.Name) != nil || format.KindOf(e.Name) == format.KindOther {
			continue
		}
		seen[e.Name] = true
		m.Members = append(m.Members, format.Member{Name: e.Name, Kind: format.KindOf(e.Name), Size: int64(len(e.Content)), Digest: format.DigestBytes(e.Content)})
	}
	for _, name := range keys["missing"] {
		m.Members = append(m.Members, format.Member{Name: name, Kind: format.KindOf(name), Digest: format.DigestBytes(nil)})
	}
	slices.SortFunc(m.Members, func(a, b format.Member) int { return strings.Compare(a.Name, b.Name) })
	for _, name := range keys["digest"] {
		if e := m.Member(name); e != nil {
			e.Digest = format.DigestBytes([]byte("something else"))
		} else {
			return nil, fmt.Errorf("digest=%s: no such member", name)
		}
	}
	for _, kv := range keys["size"] {
		name, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("size=%s: %v", kv, err)
		}
		if e := m.Member(name); e != nil {
			e.Size = n
		} else {
			return nil, fmt.Errorf("size=%s: no such member", kv)
		}
	}
	for _, v := range keys["version"] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, err
		}
		m.Version = n
	}
	for _, v := range keys["parentDepth"] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, err
		}
		m.Parent = &format.Parent{Manifest: format.DigestBytes([]byte("parent")), Images: format.DigestBytes([]byte("images")), Depth: n}
	}
	// Not m.Marshal: it validates, and these manifests are meant to fail.
	b, err := json.MarshalIndent(m, "", "  ")
	return append(b, '\n'), err
}

// withTimeout runs f and fails the test if it does not return within
// caseTimeout (a hang); a panic in f fails the test too.
func withTimeout(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		f()
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Fatalf("%s panicked: %v", what, p)
		}
	case <-time.After(caseTimeout):
		t.Fatalf("%s did not return within %v", what, caseTimeout)
	}
}

// readArchive reads every member of the archive in r, as a consumer
// would, and returns the first error.
func readArchive(r io.Reader, opts *format.ReaderOptions) (err error) {
	zr, err := format.NewReader(r, opts)
	if err != nil {
		return err
	}
	defer zr.Close()
	for {
		if _, err := zr.Next(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			return err
		}
	}
}

// skimArchive lists the archive in r as ckptinspect show does: Next to
// the end, no member read (r is an io.Seeker: uncompressed ones are
// skimmed by seeking).
func skimArchive(r io.Reader, opts *format.ReaderOptions) (err error) {
	zr, err := format.NewReader(r, opts)
	if err != nil {
		return err
	}
	defer zr.Close()
	for {
		if _, err := zr.Next(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// stage is an extraction directory with a sentinel file beside it: after
// any Extract into dir, check proves nothing was written outside dir.
type stage struct {
	parent, dir, sentinel string
	mtime                 time.Time
}

const sentinelContent = "sentinel: nothing may write here\n"

func newStage(t *testing.T) *stage {
	t.Helper()
	tmp := t.TempDir()
	s := &stage{parent: tmp, dir: filepath.Join(tmp, "stage"), sentinel: filepath.Join(tmp, "sentinel"), mtime: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.sentinel, []byte(sentinelContent), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(s.sentinel, s.mtime, s.mtime); err != nil {
		t.Fatal(err)
	}
	return s
}

// check verifies the sentinel is unchanged, that nothing but it and the
// staging directory exists beside it, and, when wantEmpty, that the
// staging directory is empty.
func (s *stage) check(t *testing.T, wantEmpty bool) {
	t.Helper()
	b, err := os.ReadFile(s.sentinel)
	if err != nil || string(b) != sentinelContent {
		t.Errorf("sentinel = %q, %v, want %q", b, err, sentinelContent)
	}
	if fi, err := os.Lstat(s.sentinel); err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Equal(s.mtime) {
		t.Errorf("sentinel changed: %v, %v", fi, err)
	}
	ents, err := os.ReadDir(s.parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"sentinel", "stage"}) {
		t.Errorf("beside the staging directory: %q, want [sentinel stage]", names)
	}
	if fi, err := os.Lstat(s.dir); err != nil || !fi.IsDir() {
		t.Errorf("staging directory is no longer a directory: %v, %v", fi, err)
	}
	if wantEmpty {
		if ents, err := os.ReadDir(s.dir); err != nil || len(ents) != 0 {
			t.Errorf("staging directory after a failed Extract holds %v (%v), want nothing", ents, err)
		}
	}
}

// checkRejected runs c through NewReader+read-all, Verify and Extract and
// checks that each rejects it as c says, and that Extract wrote nothing.
func checkRejected(t *testing.T, c *hostileCase) {
	t.Helper()
	match := func(what string, err error, want string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s = nil, want error containing %q", what, want)
		}
		t.Logf("%s = %v", what, err)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s = %v, want error containing %q", what, err, want)
		}
		if c.wantIs != nil && !errors.Is(err, c.wantIs) {
			t.Errorf("%s = %v, want errors.Is(err, %v)", what, err, c.wantIs)
		}
	}
	opts := c.opts
	withTimeout(t, "read", func() {
		match("NewReader+read-all", readArchive(c.open(), &opts), c.wantErr)
	})
	withTimeout(t, "skim", func() {
		skim := opts
		skim.Skim = true
		match("NewReader(Skim)+Next-all", skimArchive(c.open(), &skim), c.wantErr)
	})
	withTimeout(t, "Verify", func() {
		rep, err := format.Verify(c.open(), &format.VerifyOptions{Reader: opts})
		if err != nil {
			t.Fatalf("Verify() error = %v, want a report", err)
		}
		want := c.wantErr
		if c.verifyErr != "" {
			want = c.verifyErr
		}
		match("Verify().Err()", rep.Err(), want)
		if c.problems > 0 && len(rep.Problems) != c.problems {
			t.Errorf("Verify() found %d problems, want %d: %v", len(rep.Problems), c.problems, rep.Problems)
		}
	})
	s := newStage(t)
	withTimeout(t, "Extract", func() {
		_, err := format.Extract(context.Background(), c.open(), s.dir, &format.ExtractOptions{Reader: opts})
		match("Extract()", err, c.wantErr)
	})
	s.check(t, true)
}

// TestHostile rejects every archive of testdata/hostile (one txtar per
// case) and every generated case of hostileGenerated.
func TestHostile(t *testing.T) {
	files, err := filepath.Glob("testdata/hostile/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	var cases []*hostileCase
	for _, f := range files {
		c, err := readHostile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases = append(cases, c)
	}
	cases = append(cases, hostileGenerated(t)...)
	if len(cases) < 30 {
		t.Errorf("%d hostile cases, want at least 30", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkRejected(t, c)
		})
	}
}

// manyFiles streams a legacy tar of n empty members without keeping it:
// 10^5 members are 51 MB of headers.
type manyFiles struct {
	i, n int
	buf  []byte
}

func (m *manyFiles) Read(p []byte) (int, error) {
	for len(m.buf) == 0 {
		switch {
		case m.i < m.n:
			m.buf = tarbuild.RawHeader(tarbuild.Raw{Name: fmt.Sprintf("checkpoint/f-%06d.img", m.i)})
		case m.i == m.n:
			m.buf = make([]byte, 2*tarbuild.BlockSize)
		default:
			return 0, io.EOF
		}
		m.i++
	}
	n := copy(p, m.buf)
	m.buf = m.buf[n:]
	return n, nil
}

// v1Tar returns a tar whose first member is a valid manifest of the
// regular entries among entries, followed by entries.
func v1Tar(t *testing.T, entries ...tarbuild.Raw) []byte {
	t.Helper()
	m, err := caseManifest(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tarbuild.RawTar(append([]tarbuild.Raw{{Name: format.ManifestName, Content: m}}, entries...)...)
}

// hostileGenerated returns the cases whose archives are binary or big:
// built here with tarbuild rather than described in a txtar file.
func hostileGenerated(t *testing.T) []*hostileCase {
	config := tarbuild.Raw{Name: format.ConfigName, Content: []byte("{}\n")}
	zeros := make([]byte, 4<<20)

	// A manifest of MaxManifestSize+1 real bytes (a long engine version).
	big := fmt.Sprintf(`{"version":1,"created":"2026-11-23T12:00:00Z","engine":{"name":"ckpt","version":%q},"container":{"name":"","id":""},"host":{"cpu":{}},"options":{},"members":[]}`, "")
	big = strings.Replace(big, `"version":""`, `"version":"`+strings.Repeat("v", format.MaxManifestSize+1-len(big))+`"`, 1)

	// zstd frames declaring a 64 MiB window, over MaxDecoderWindow.
	window := tarbuild.Zstd(v1Tar(t, tarbuild.Raw{Name: format.RootfsDiffName, Content: zeros}),
		zstdWindow(64<<20)...)

	// An old GNU sparse entry: type 'S' with a one-region map.
	sparse := tarbuild.Raw{Name: format.SpecName, Type: 'S', GNU: true, Content: []byte("abc"), Fix: func(h []byte) {
		copy(h[386:398], "00000000000\x00") // offset 0
		copy(h[398:410], "00000000003\x00") // 3 bytes
		copy(h[483:495], "00000010000\x00") // real size 4096
	}}

	return []*hostileCase{{
		name:    "manifest_oversized",
		archive: tarbuild.Zstd(tarbuild.RawTar(tarbuild.Raw{Name: format.ManifestName, Content: []byte(big)})),
		wantErr: "manifest of 4194305 bytes", wantIs: format.ErrTooLarge,
	}, {
		name:    "bomb_v1_total",
		archive: tarbuild.Zstd(v1Tar(t, config, tarbuild.Raw{Name: format.RootfsDiffName, Content: zeros})),
		opts:    format.ReaderOptions{MaxTotalSize: 1 << 20},
		wantErr: "members add up to", wantIs: format.ErrTooLarge,
	}, {
		// The manifest lists a small member; the tar header expands it.
		name: "bomb_v1_header",
		archive: tarbuild.Zstd(tarbuild.RawTar(
			tarbuild.Raw{Name: format.ManifestName, Content: mustManifest(t, config)},
			config,
			tarbuild.Raw{Name: format.RootfsDiffName, Content: zeros})),
		opts:    format.ReaderOptions{MaxTotalSize: 1 << 20},
		wantErr: "members add up to more than", wantIs: format.ErrTooLarge,
	}, {
		name:    "bomb_legacy_total",
		archive: tarbuild.Zstd(tarbuild.RawTar(config, tarbuild.Raw{Name: format.RootfsDiffName, Content: zeros})),
		opts:    format.ReaderOptions{MaxTotalSize: 1 << 20},
		wantErr: "members add up to more than", wantIs: format.ErrTooLarge,
	}, {
		name:    "bomb_member_size",
		archive: tarbuild.Zstd(v1Tar(t, config, tarbuild.Raw{Name: format.RootfsDiffName, Content: zeros})),
		opts:    format.ReaderOptions{MaxMemberSize: 1 << 20},
		wantErr: "of 4194304 bytes (limit 1048576)", wantIs: format.ErrTooLarge,
	}, {
		name:    "bomb_legacy_member_size",
		archive: tarbuild.Zstd(tarbuild.RawTar(config, tarbuild.Raw{Name: format.RootfsDiffName, Content: zeros})),
		opts:    format.ReaderOptions{MaxMemberSize: 1 << 20},
		wantErr: "member of 4194304 bytes (limit 1048576)", wantIs: format.ErrTooLarge,
	}, {
		name:    "zstd_window",
		archive: window,
		wantErr: "window size", wantIs: format.ErrCompression,
	}, {
		name:    "zstd_truncated_frame",
		archive: tarbuild.Zstd(v1Tar(t, config))[:40],
		wantErr: "compressed stream is truncated", wantIs: format.ErrCompression,
	}, {
		name:    "sparse_gnu",
		archive: v1Tar(t, config, sparse),
		wantErr: "sparse", wantIs: format.ErrFormat,
	}, {
		name:    "pax_huge_record",
		archive: v1Tar(t, config, tarbuild.Raw{Name: format.SpecName, PAX: []string{"comment=" + strings.Repeat("x", 2<<20)}}),
		wantErr: "header field too long", wantIs: format.ErrFormat,
	}, {
		// A comment in a gzip member after the archive's: bytes outside
		// every digest.
		name:    "bug-gzip-comment-member",
		archive: append(tarbuild.Gzip(v1Tar(t, config)), gzipWith(gzip.Header{Comment: "hidden payload"}, nil)...),
		wantErr: "gzip member with an extra field or a comment", wantIs: format.ErrCompression,
	}, {
		name:    "bug-gzip-extra-field",
		archive: gzipWith(gzip.Header{Extra: []byte("hidden payload")}, v1Tar(t, config)),
		wantErr: "gzip member with an extra field or a comment", wantIs: format.ErrCompression,
	}, {
		// 10^5 members against a lowered limit, to keep the three passes
		// cheap; TestManyFilesStopsEarly uses the package limit.
		name:    "many_files",
		gen:     func() io.Reader { return &manyFiles{n: 100_000} },
		opts:    format.ReaderOptions{MaxMembers: 1000},
		wantErr: "more than 1000 members", wantIs: format.ErrTooLarge,
	}}
}

func mustManifest(t *testing.T, entries ...tarbuild.Raw) []byte {
	t.Helper()
	m, err := caseManifest(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gzipWith compresses b into one gzip member with header h.
func gzipWith(h gzip.Header, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Header = h
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func zstdWindow(n int) []zstd.EOption {
	return []zstd.EOption{zstd.WithWindowSize(n), zstd.WithSingleSegment(false)}
}

// chainLink builds a link whose manifest has the image members images
// (under dir) and, when parent is non-nil, a Parent reference to it.
func chainLink(t *testing.T, name, dir string, parent *format.Link) format.Link {
	t.Helper()
	m := &format.Manifest{
		Version: format.Version,
		Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Engine:  format.Engine{Name: "ckpt", Version: "test"},
		Members: []format.Member{{Name: dir + "/pages-1.img", Kind: format.KindOf(dir + "/pages-1.img"), Size: int64(len(name)), Digest: format.DigestBytes([]byte(name))}},
	}
	if parent != nil {
		depth := 1
		if parent.Manifest.Parent != nil {
			depth = parent.Manifest.Parent.Depth + 1
		}
		m.Parent = &format.Parent{Manifest: parent.Digest, Images: format.ImagesDigest(parent.Manifest.Members, parent.Manifest.ImagesDir()), Depth: depth}
	}
	// Not Marshal: the over-deep chain's links do not validate.
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return format.Link{Manifest: m, Digest: format.DigestBytes(b)}
}

// TestCheckChainHostile breaks parent chains every way CheckChain must
// notice.
func TestCheckChainHostile(t *testing.T) {
	base := chainLink(t, "base", format.PreCheckpointDir, nil)
	mid := chainLink(t, "mid", format.PreCheckpointDir, &base)
	top := chainLink(t, "top", format.CheckpointDir, &mid)
	if err := format.CheckChain([]format.Link{top, mid, base}); err != nil {
		t.Fatalf("CheckChain(valid) = %v", err)
	}

	other := chainLink(t, "other", format.PreCheckpointDir, nil)
	changed := base
	changed.Manifest = &format.Manifest{}
	*changed.Manifest = *base.Manifest
	changed.Manifest.Members = []format.Member{{Name: "pre-checkpoint/pages-1.img", Kind: format.KindPreImage, Size: 1, Digest: format.DigestBytes([]byte("x"))}}
	deepMid := mid
	deepMid.Manifest = &format.Manifest{}
	*deepMid.Manifest = *mid.Manifest
	p := *mid.Manifest.Parent
	p.Depth = 2
	deepMid.Manifest.Parent = &p

	// A cycle: a's parent is b and b's parent is a. Digests are of the
	// manifests, so build b's reference to a by hand.
	a := chainLink(t, "a", format.CheckpointDir, &base)
	b := chainLink(t, "b", format.PreCheckpointDir, &a)
	a.Manifest.Parent = &format.Parent{Manifest: b.Digest, Images: format.ImagesDigest(b.Manifest.Members, b.Manifest.ImagesDir()), Depth: 2}

	long := []format.Link{base}
	for i := range format.MaxParentDepth + 1 {
		prev := long[0]
		long = append([]format.Link{chainLink(t, fmt.Sprint("l", i), format.PreCheckpointDir, &prev)}, long...)
	}

	for _, c := range []struct {
		name    string
		chain   []format.Link
		wantErr string
	}{
		{"missing parent", []format.Link{top}, "parent " + string(mid.Digest) + " is missing"},
		{"missing grandparent", []format.Link{top, mid}, "is missing"},
		{"wrong parent", []format.Link{top, other}, "wrong pre-checkpoint archive"},
		{"changed parent images", []format.Link{mid, changed}, "parent images digest"},
		{"wrong depth", []format.Link{deepMid, base}, "parent depth 2, the chain gives 1"},
		// Depths strictly decrease along a chain, so a cycle always
		// shows as a depth that does not add up.
		{"cycle", []format.Link{a, b, a}, "parent depth"},
		{"over-deep", long, "longer than 17"},
		{"legacy parent", []format.Link{top, {Digest: mid.Digest}}, "has no manifest"},
		{"extra link", []format.Link{base, other}, "has no parent but 1 more were given"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := format.CheckChain(c.chain)
			if !errors.Is(err, format.ErrParent) || !strings.Contains(fmt.Sprint(err), c.wantErr) {
				t.Errorf("CheckChain() = %v, want ErrParent containing %q", err, c.wantErr)
			}
		})
	}
}

// TestVerifyParentWithoutImages: a reader accepts an archive whose
// manifest names a parent but holds no checkpoint images (the structure is
// sound); Verify reports the broken parent reference.
func TestVerifyParentWithoutImages(t *testing.T) {
	var buf bytes.Buffer
	w := format.NewWriter(&buf, format.Manifest{
		Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Engine:  format.Engine{Name: "ckpt"},
		Parent:  &format.Parent{Manifest: format.DigestBytes([]byte("p")), Images: format.DigestBytes([]byte("i")), Depth: 1},
	}, &format.WriterOptions{Compression: format.None})
	if err := w.AddBytes(format.ConfigName, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := readArchive(bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatalf("read = %v, want nil", err)
	}
	rep, err := format.Verify(bytes.NewReader(buf.Bytes()), nil)
	if err != nil || !errors.Is(rep.Err(), format.ErrParent) || len(rep.Problems) != 1 {
		t.Errorf("Verify() = %v, %v, want one ErrParent problem", rep.Err(), err)
	}
}

// TestManyFilesStopsEarly: an archive of 10^5 members is refused at member
// MaxMembers+1, without reading the rest of it.
func TestManyFilesStopsEarly(t *testing.T) {
	gen := &manyFiles{n: 100_000}
	err := readArchive(gen, nil)
	if !errors.Is(err, format.ErrTooLarge) {
		t.Fatalf("read of 10^5 members = %v, want ErrTooLarge", err)
	}
	// The reader buffers a little ahead; it must not get anywhere near
	// the end.
	if gen.i > format.MaxMembers+64 {
		t.Errorf("reader generated %d headers, want about %d", gen.i, format.MaxMembers+1)
	}
}

// TestZstdSkippableFrames: a skippable frame anywhere in a zstd archive is
// refused, however the frames around it were encoded (the reader follows
// frame and block headers to find frame starts: single-segment frames,
// content sizes, RLE and raw blocks, with and without checksums), but for
// the manifest's padding: one, of zeros only, right after the first frame
// and at most MaxManifestPad bytes.
func TestZstdSkippableFrames(t *testing.T) {
	skippable := []byte("\x5f\x2a\x4d\x18\x04\x00\x00\x00abcd")
	pad := func(n int, fill byte) []byte {
		return append([]byte{0x50, 0x2a, 0x4d, 0x18, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}, bytes.Repeat([]byte{fill}, n)...)
	}
	config := tarbuild.Raw{Name: format.ConfigName, Content: []byte("{}\n")}
	rle := tarbuild.Raw{Name: format.RootfsDiffName, Content: bytes.Repeat([]byte{'a'}, 300_000)}
	tarball := v1Tar(t, config, rle)
	for _, c := range []struct {
		name string
		opts []zstd.EOption
	}{
		{"default", nil},
		{"no checksum", []zstd.EOption{zstd.WithEncoderCRC(false)}},
		{"single segment", []zstd.EOption{zstd.WithSingleSegment(true)}},
		{"fastest", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest)}},
		{"best", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			half := len(tarball) / 2 / tarbuild.BlockSize * tarbuild.BlockSize
			first, second := tarbuild.Zstd(tarball[:half], c.opts...), tarbuild.Zstd(tarball[half:], c.opts...)
			whole := append(bytes.Clone(first), second...)
			if err := readArchive(bytes.NewReader(whole), nil); err != nil {
				t.Fatalf("read of two frames = %v, want nil", err)
			}
			// The manifest's padding: zeros, right after the first frame.
			for _, n := range []int{0, 100, format.MaxManifestPad} {
				padded := append(append(bytes.Clone(first), pad(n, 0)...), second...)
				if err := readArchive(bytes.NewReader(padded), nil); err != nil {
					t.Errorf("read with %d bytes of padding after the first frame = %v, want nil", n, err)
				}
			}
			for _, at := range []struct {
				name string
				b    []byte
			}{
				{"between", append(append(bytes.Clone(first), skippable...), second...)},
				{"after", append(bytes.Clone(whole), skippable...)},
				{"data in the manifest's padding", append(append(bytes.Clone(first), pad(4, 'x')...), second...)},
				{"padding after the second frame", append(bytes.Clone(whole), pad(4, 0)...)},
				{"two paddings", append(append(append(bytes.Clone(first), pad(4, 0)...), pad(4, 0)...), second...)},
				{"padding over the limit", append(append(bytes.Clone(first), pad(format.MaxManifestPad+1, 0)...), second...)},
			} {
				err := readArchive(bytes.NewReader(at.b), nil)
				if !errors.Is(err, format.ErrCompression) || !strings.Contains(fmt.Sprint(err), "skippable zstd frame") {
					t.Errorf("read with a skippable frame %s = %v, want ErrCompression", at.name, err)
				}
			}
		})
	}
}

// TestGzipMembers: what the gzip command writes (a file name in the
// header) and an empty trailing member carry nothing outside the archive
// and are read; the hostile table has the members that do.
func TestGzipMembers(t *testing.T) {
	tarball := v1Tar(t, tarbuild.Raw{Name: format.ConfigName, Content: []byte("{}\n")})
	for name, b := range map[string][]byte{
		"file name":          gzipWith(gzip.Header{Name: "counter.tar"}, tarball),
		"empty member after": append(tarbuild.Gzip(tarball), gzipWith(gzip.Header{}, nil)...),
		"split in members":   append(tarbuild.Gzip(tarball[:512]), tarbuild.Gzip(tarball[512:])...),
	} {
		if err := readArchive(bytes.NewReader(b), nil); err != nil {
			t.Errorf("read (%s) = %v, want nil", name, err)
		}
	}
}
