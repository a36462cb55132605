package hostile

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/cgroup"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// hostileCase is one archive of the corpus and what must happen to it.
type hostileCase struct {
	name string
	// class is the class of issue 14's report the case belongs to.
	class int
	// build makes the case's archive from the base export.
	build func(t *testing.T, c *corpus) string
	// verify is ckptinspect verify's expected exit status, -1 for any.
	verify int
	// restoreFlags are given to ckpt restore -i besides the archive.
	restoreFlags []string
	// restored is true if restore must succeed (the hostile part is
	// ignored or made harmless), otherwise it must fail naming want.
	restored bool
	want     string
	// pipeWant, if set, is what restore -i - names instead of want;
	// pipeRestores says it restores (a signature, which a stream cannot
	// have checked before use, is stripped there unchecked).
	pipeWant     string
	pipeRestores bool
}

// corpus is the base export and where the cases' archives go.
type corpus struct {
	base *archive
	path string // the base archive
	dir  string
	n    int
}

// out returns a new file name for a case's archive.
func (c *corpus) out() string {
	c.n++
	return filepath.Join(c.dir, fmt.Sprintf("case-%d.tar", c.n))
}

// repack writes the base archive with members replaced by edits (a nil
// value drops the member) as a valid v1 archive: fresh sizes and digests.
func (c *corpus) repack(t *testing.T, comp format.Compression, edits map[string]format.Source) string {
	t.Helper()
	return c.repackWith(t, comp, edits, nil)
}

// repackWith is repack with the manifest's header changed by editManifest
// (when not nil).
func (c *corpus) repackWith(t *testing.T, comp format.Compression, edits map[string]format.Source, editManifest func(*format.Manifest)) string {
	t.Helper()
	m, err := format.ParseManifest(c.base.member(t, format.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if editManifest != nil {
		editManifest(m)
	}
	out := c.out()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := *m
	hdr.Members = nil
	w := format.NewWriter(f, hdr, &format.WriterOptions{Compression: comp})
	for _, e := range c.base.entries {
		if e.hdr.Name == format.ManifestName || e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		src, edited := edits[e.hdr.Name]
		switch {
		case !edited:
			src = format.BytesSource(e.data)
		case src == nil:
			continue
		}
		if err := w.Add(e.hdr.Name, src); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// edit repacks the base with member name's content replaced by b.
func (c *corpus) edit(t *testing.T, name string, b []byte) string {
	t.Helper()
	return c.repack(t, format.None, map[string]format.Source{name: format.BytesSource(b)})
}

// critEdit decodes the CRIU image data, whose entries are of typ's type,
// with go-criu, lets fn change its entries and encodes it again.
func critEdit(t *testing.T, data []byte, typ proto.Message, fn func(es []*crit.CriuEntry)) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.img"), filepath.Join(dir, "out.img")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, false).Decode(typ)
	if err != nil {
		t.Fatal(err)
	}
	fn(img.Entries)
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := crit.New(nil, o, "", false, false).Encode(img); err != nil {
		t.Fatal(err)
	}
	o.Close()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// imageEdit repacks the base with the one image matching glob, of
// entries of typ's type, edited by fn.
func (c *corpus) imageEdit(t *testing.T, glob string, typ proto.Message, fn func(es []*crit.CriuEntry)) string {
	t.Helper()
	names := c.base.memberNames(glob)
	if len(names) != 1 {
		t.Fatalf("%d members match %s, want 1", len(names), glob)
	}
	return c.edit(t, names[0], critEdit(t, c.base.member(t, names[0]), typ, fn))
}

// mount returns the mountpoints entry mounted at dest.
func mount(t *testing.T, es []*crit.CriuEntry, dest string) *mnt.MntEntry {
	for _, e := range es {
		if m := e.Message.(*mnt.MntEntry); m.GetMountpoint() == dest {
			return m
		}
	}
	t.Fatalf("no mount at %s", dest)
	return nil
}

// withPAX copies the base archive's tar stream with the header of member
// name changed by edit, in PAX format (the content and digests stay as
// they are).
func (c *corpus) withPAX(t *testing.T, name string, edit func(h *tar.Header)) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range c.base.entries {
		h := e.hdr
		if h.Name == name {
			h.Format = tar.FormatPAX
			edit(&h)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out := c.out()
	if err := os.WriteFile(out, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// devImage returns the name of the tmpfs image of the container's /dev
// (the one holding /dev/null).
func (c *corpus) devImage(t *testing.T) string {
	for _, n := range c.base.memberNames(format.CheckpointDir + "/tmpfs-dev-*.tar.gz.img") {
		if tarbuild.GzipHas(t, c.base.member(t, n), "./null") {
			return n
		}
	}
	t.Fatal("no tmpfs image of /dev")
	return ""
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// volumeTarOf returns a Source of a volume tar holding one file of n
// zero bytes.
func volumeTarOf(n int64) format.Source {
	return format.StreamSource(func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: n, Mode: 0o644}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, io.LimitReader(zeroReader{}, n)); err != nil {
			return err
		}
		return tw.Close()
	})
}

// configEdit repacks the base with ckpt's record in config.dump (its
// "ckpt" object, beside podman's fields) changed by fn.
func (c *corpus) configEdit(t *testing.T, fn func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.base.member(t, format.ConfigName), &m); err != nil {
		t.Fatal(err)
	}
	rec, ok := m["ckpt"].(map[string]any)
	if !ok {
		t.Fatalf("config.dump has no ckpt record: %.200s", c.base.member(t, format.ConfigName))
	}
	fn(rec)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return c.edit(t, format.ConfigName, b)
}

// expansion is what the expansion case's volume unpacks to: more than the
// target root's file system (stagingFS) holds.
const (
	stagingFS = "size=1g"
	expansion = 2 << 30
)

var allCaps = []uint32{0xffffffff, 0x1ff}

func cases() []hostileCase {
	ignore := []string{"--ignore-binds"}
	return append([]hostileCase{
		{name: "base", build: func(t *testing.T, c *corpus) string { return c.path }, restoreFlags: ignore, restored: true},
		{
			name: "criu-fails-midway", class: 1, restoreFlags: ignore, want: "rolled back",
			build: func(t *testing.T, c *corpus) string {
				return c.edit(t, format.DeletedFilesName, []byte(`["/bin/counter"]`))
			},
		},
		{
			// Without a mount check CRIU mounts the kernel's one devtmpfs
			// (the host's /dev) and has tar extract the container's /dev
			// into it: seen here replacing the host's /dev/ptmx with a
			// link. The /dev sentinel catches that.
			name: "devtmpfs", class: 2, verify: 1, restoreFlags: ignore, want: "devtmpfs",
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/mountpoints-*.img", &mnt.MntEntry{}, func(es []*crit.CriuEntry) {
					mount(t, es, "/dev").Fstype = proto.Uint32(uint32(mnt.Fstype_DEVTMPFS))
				})
			},
		},
		{
			name: "overlay-on-host", class: 2, verify: 1, restoreFlags: ignore, want: "lowerdir=/etc",
			build: func(t *testing.T, c *corpus) string {
				up := t.TempDir()
				return c.imageEdit(t, format.CheckpointDir+"/mountpoints-*.img", &mnt.MntEntry{}, func(es []*crit.CriuEntry) {
					m := mount(t, es, "/dev/shm")
					m.Fstype, m.Source = proto.Uint32(uint32(mnt.Fstype_OVERLAYFS)), proto.String("overlay")
					m.Options = proto.String(fmt.Sprintf("lowerdir=/etc,upperdir=%s/u,workdir=%s/w", up, up))
				})
			},
		},
		{
			name: "bind-not-external", class: 2, verify: 1, restoreFlags: ignore, want: "/bind",
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/mountpoints-*.img", &mnt.MntEntry{}, func(es []*crit.CriuEntry) {
					m := mount(t, es, "/bind")
					m.ExtKey, m.Root = nil, proto.String("/")
				})
			},
		},
		{
			name: "bind-source-root", class: 3, want: "-v SRC:DST",
			build: func(t *testing.T, c *corpus) string {
				return c.configEdit(t, func(m map[string]any) {
					for _, x := range m["mounts"].([]any) {
						if mm := x.(map[string]any); mm["destination"] == "/bind" {
							mm["source"] = "/"
						}
					}
				})
			},
		},
		{
			name: "host-network", class: 3, restoreFlags: ignore, want: "--network host",
			build: func(t *testing.T, c *corpus) string {
				return c.configEdit(t, func(m map[string]any) { m["network"] = "host" })
			},
		},
		{
			name: "pagemap-2^40-pages", class: 4, verify: 1, restoreFlags: ignore, want: "pagemap-1.img",
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/pagemap-1.img", &pagemap.PagemapEntry{}, func(es []*crit.CriuEntry) {
					es[1].Message.(*pagemap.PagemapEntry).NrPages = proto.Uint64(1 << 40)
				})
			},
		},
		{
			name: "record-length", class: 4, verify: 1, restoreFlags: ignore, want: "core-1.img",
			build: func(t *testing.T, c *corpus) string {
				b := bytes.Clone(c.base.member(t, format.CheckpointDir+"/core-1.img"))
				binary.LittleEndian.PutUint32(b[8:], 0xfffffff0)
				return c.edit(t, format.CheckpointDir+"/core-1.img", b)
			},
		},
		{
			name: "pax-xattr", class: 6, verify: 1, restoreFlags: ignore, want: "PAX",
			build: func(t *testing.T, c *corpus) string {
				return c.withPAX(t, format.ConfigName, func(h *tar.Header) {
					h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "x"}
				})
			},
		},
		{
			name: "pax-atime", class: 6, verify: 1, restoreFlags: ignore, want: "PAX",
			build: func(t *testing.T, c *corpus) string {
				return c.withPAX(t, format.SpecName, func(h *tar.Header) { h.AccessTime = time.Unix(1, 500) })
			},
		},
		{
			name: "pax-comment", class: 6, verify: 1, restoreFlags: ignore, want: "PAX",
			build: func(t *testing.T, c *corpus) string {
				return c.withPAX(t, format.CheckpointDir+"/inventory.img", func(h *tar.Header) {
					h.PAXRecords = map[string]string{"comment": "hi"}
				})
			},
		},
		{
			name: "pstree-cycle", class: 6, verify: 1, restoreFlags: ignore, want: "pstree",
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/pstree.img", &pstree.PstreeEntry{}, func(es []*crit.CriuEntry) {
					p := es[0].Message.(*pstree.PstreeEntry)
					p.Ppid = proto.Uint32(p.GetPid())
				})
			},
		},
		{
			name: "deleted-files-64MiB", class: 7, verify: 1, restoreFlags: ignore, want: format.DeletedFilesName,
			build: func(t *testing.T, c *corpus) string {
				return c.edit(t, format.DeletedFilesName, []byte(`["/`+strings.Repeat("a", 64<<20)+`"]`))
			},
		},
		{
			name: "deleted-files-1M-entries", class: 7, verify: -1, restoreFlags: ignore, want: format.DeletedFilesName,
			build: func(t *testing.T, c *corpus) string {
				var b bytes.Buffer
				b.WriteString("[")
				for i := 0; i < 1<<20; i++ {
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, `"/f%d"`, i)
				}
				b.WriteString("]")
				return c.repack(t, format.Zstd, map[string]format.Source{format.DeletedFilesName: format.BytesSource(b.Bytes())})
			},
		},
		{
			name: "expansion", class: 7, verify: 0, restoreFlags: ignore, want: "free",
			build: func(t *testing.T, c *corpus) string {
				return c.repack(t, format.Zstd, map[string]format.Source{"volumes/vol.tar": volumeTarOf(expansion)})
			},
		},
		{
			name: "capabilities", verify: -1, restoreFlags: ignore, want: "CAP_SYS_ADMIN",
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/core-1.img", &criucore.CoreEntry{}, func(es []*crit.CriuEntry) {
					cr := es[0].Message.(*criucore.CoreEntry).GetThreadCore().GetCreds()
					cr.CapBnd, cr.CapPrm, cr.CapEff = allCaps, allCaps, allCaps
				})
			},
		},
		{
			name: "dev-mem", verify: -1, restoreFlags: ignore, want: "(1:1)",
			build: func(t *testing.T, c *corpus) string {
				n := c.devImage(t)
				return c.edit(t, n, tarbuild.GzipAppend(t, c.base.member(t, n), &tar.Header{Name: "./mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}))
			},
		},
		{
			// Taken on another architecture: refused before anything is
			// made, instead of a restored process dying of SIGILL.
			name: "other-architecture", verify: 0, restoreFlags: ignore, want: "restore it on a ",
			build: func(t *testing.T, c *corpus) string {
				return c.repackWith(t, format.None, nil, func(m *format.Manifest) {
					m.Host.Arch = map[string]string{"amd64": "arm64"}[runtime.GOARCH]
					if m.Host.Arch == "" {
						m.Host.Arch = "amd64"
					}
				})
			},
		},
		{
			// The root task in the PID namespace the dump's CRIU ran in:
			// CRIU would restore it in its own, the host's.
			name: "host-pid-namespace", verify: -1, restoreFlags: ignore, want: "namespace",
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/ids-1.img", &criucore.TaskKobjIdsEntry{}, func(es []*crit.CriuEntry) {
					es[0].Message.(*criucore.TaskKobjIdsEntry).PidNsId = proto.Uint32(1)
				})
			},
		},
		{
			// CRIU is told to ignore cgroup images: the restore goes on
			// and no release agent changes (the sentinels).
			name: "cgroup-release-agent", verify: -1, restoreFlags: ignore, restored: true,
			build: func(t *testing.T, c *corpus) string {
				return c.imageEdit(t, format.CheckpointDir+"/cgroup.img", &cgroup.CgroupEntry{}, func(es []*crit.CriuEntry) {
					for _, ctl := range es[0].Message.(*cgroup.CgroupEntry).GetControllers() {
						for _, d := range ctl.GetDirs() {
							d.DirName = proto.String("../../../..")
							d.Properties = append(d.Properties, &cgroup.CgroupPropEntry{Name: proto.String("release_agent"), Value: proto.String("/tmp/ckpt-hostile-agent")},
								&cgroup.CgroupPropEntry{Name: proto.String("notify_on_release"), Value: proto.String("1")})
						}
					}
				})
			},
		},
	}, sealedCases()...)
}

// TestHostileCorpus runs every case against verify and restore -i on a
// second root whose file system is small (stagingFS), with the host's
// sentinels checked after each.
func TestHostileCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("real CRIU; slow")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "criu")
	testutil.RequireTool(t, "runc")
	rootfs, _ := filepath.Abs("../../testdata/workloads/bin/rootfs.tar")
	if _, err := os.Stat(rootfs); err != nil {
		testutil.Missing(t, "workload: %v (run make workloads)", err)
	}
	b := buildBins(t)
	dir := t.TempDir()
	src := newHost(t, b, filepath.Join(dir, "src"))
	dstDir := filepath.Join(dir, "dst")
	if err := os.MkdirAll(dstDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dstDir, "tmpfs", 0, stagingFS); err != nil {
		testutil.Missing(t, "mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dstDir, syscall.MNT_DETACH) })
	dst := newHost(t, b, dstDir)
	src.must(t, "image", "import", rootfs, "workload")
	dst.must(t, "image", "import", rootfs, "workload")

	bindSrc := t.TempDir()
	src.must(t, "run", "-d", "--name", "c", "-v", "vol:/data", "-v", bindSrc+":/bind", "workload",
		"/bin/counter", "-interval", "50ms", "-write-files", "-file", "/data/counter")
	waitFor(t, func() bool { return strings.Contains(src.must(t, "logs", "c"), "counter 3\n") })
	c := &corpus{path: filepath.Join(dir, "base.tar"), dir: t.TempDir()}
	src.must(t, "checkpoint", "-e", c.path, "-c", "none", "c")
	c.base = readArchive(t, c.path)

	s := takeSentinels(t)
	defer s.checkMntns(t)
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.build(t, c)
			if tc.verify >= 0 {
				r := run(t, b.ckptinspect, "verify", path)
				if r.code != tc.verify {
					t.Errorf("ckptinspect verify = exit %d, want %d\n%s%s", r.code, tc.verify, r.stdout, r.stderr)
				}
			}
			r := dst.ckpt(t, append([]string{"restore", "-i", path}, c.flags(t, tc.restoreFlags)...)...)
			switch {
			case tc.restored && r.code != 0:
				t.Errorf("restore -i = exit %d, want 0\n%s", r.code, r.stderr)
			case !tc.restored && (r.code != 1 || !strings.Contains(r.stderr, tc.want)):
				t.Errorf("restore -i = exit %d, want 1 naming %q\n%s", r.code, tc.want, r.stderr)
			}
			t.Logf("restore -i: exit %d in %v, %d MiB; %s", r.code, r.took.Round(time.Millisecond), r.maxRSS>>20, firstLine(r.stderr))
			dst.removeAll(t)
			dst.checkClean(t)
			s.check(t)
			if tc.restored {
				return
			}
			// The same archive through a pipe (restore -i -) is refused
			// as well, and leaves nothing either.
			r = dst.ckptStdin(t, path, append([]string{"restore", "-i", "-"}, c.flags(t, tc.restoreFlags)...)...)
			want := tc.want
			if tc.pipeWant != "" {
				want = tc.pipeWant
			}
			switch {
			case tc.pipeRestores && r.code != 0:
				t.Errorf("restore -i - = exit %d, want 0\n%s", r.code, r.stderr)
			case !tc.pipeRestores && (r.code != 1 || !strings.Contains(r.stderr, want)):
				t.Errorf("restore -i - = exit %d, want 1 naming %q\n%s", r.code, want, r.stderr)
			}
			dst.removeAll(t)
			dst.checkClean(t)
			s.check(t)
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// waitFor polls cond for 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
