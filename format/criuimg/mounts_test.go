package criuimg

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Real archives with a container's mount namespace (testdata/README.md):
// podman's exports, and ckpt's exports of a container it ran and of the
// one it restored from podman's archive. Each comes with the OCI spec the
// ckpt engine restores it with.
var mountArchives = []struct {
	file, spec string
}{
	{"../../testdata/podman/counter.tar", "../../testdata/ckpt/from-podman.spec.json"},
	{"../../testdata/podman/counter.tar.zst", "../../testdata/ckpt/from-podman.spec.json"},
	{"../../testdata/ckpt/counter.tar.zst", "../../testdata/ckpt/counter.spec.json"},
	{"../../testdata/ckpt/from-podman.tar.zst", "../../testdata/ckpt/from-podman.spec.json"},
}

// sourceHost are the masked and read-only paths that exist on the kernel
// the real archives were made and restored on (6.18, without kcore,
// sysrq, sched_debug...): the policy requires those, as the engine's
// Exists would there.
var sourceHost = map[string]bool{
	"/proc/acpi": true, "/proc/keys": true, "/proc/timer_list": true, "/sys/firmware": true,
	"/proc/bus": true, "/proc/fs": true, "/proc/irq": true, "/proc/sys": true,
}

// loadArchive reads the checkpoint/ images of a tar or tar.zst archive.
func loadArchive(t testing.TB, file string) map[string]Info {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(file, ".zst") {
		d, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	}
	tr := tar.NewReader(r)
	out := map[string]Info{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name, ok := strings.CutPrefix(strings.TrimPrefix(h.Name, "./"), "checkpoint/")
		if !ok || h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = Info{Size: int64(len(b)), Data: b}
	}
}

// specPolicy builds the mount policy of an OCI spec file, with exists
// telling which masked and read-only paths the host has.
func specPolicy(t testing.TB, file string, exists func(string) bool) *MountPolicy {
	t.Helper()
	p, err := readSpecPolicy(file, exists)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readSpecPolicy is specPolicy without a test.
func readSpecPolicy(file string, exists func(string) bool) (*MountPolicy, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var s struct {
		Mounts []SpecMount `json:"mounts"`
		Linux  struct {
			MaskedPaths   []string `json:"maskedPaths"`
			ReadonlyPaths []string `json:"readonlyPaths"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return RuncMountPolicy(&RuncSpec{Mounts: s.Mounts, MaskedPaths: s.Linux.MaskedPaths, ReadonlyPaths: s.Linux.ReadonlyPaths, Exists: exists}), nil
}

func onSourceHost(p string) bool { return sourceHost[p] }

// mountsImage returns the name of the only mountpoints image of files.
func mountsImage(t testing.TB, files map[string]Info) string {
	t.Helper()
	name := ""
	for n := range files {
		if strings.HasPrefix(n, "mountpoints-") {
			if name != "" {
				t.Fatalf("two mountpoints images: %s, %s", name, n)
			}
			name = n
		}
	}
	if name == "" {
		t.Fatal("no mountpoints image")
	}
	return name
}

// encodeMnt encodes an mnt_entry.
func encodeMnt(m MntEntry) []byte {
	e := enc(nil).u(1, uint64(m.Fstype)).u(2, uint64(m.MntID)).u(3, uint64(m.RootDev)).u(4, uint64(m.ParentMntID)).
		u(5, uint64(m.Flags)).bytes(6, []byte(m.Root)).bytes(7, []byte(m.Mountpoint)).bytes(8, []byte(m.Source)).
		bytes(9, []byte(m.Options))
	if m.SharedID != 0 {
		e = e.u(10, uint64(m.SharedID))
	}
	if m.MasterID != 0 {
		e = e.u(11, uint64(m.MasterID))
	}
	if m.WithPlugin {
		e = e.u(12, 1)
	}
	if m.ExtMount {
		e = e.u(13, 1)
	}
	if m.HasFsname {
		e = e.bytes(14, []byte(m.Fsname))
	}
	if m.Deleted {
		e = e.u(16, 1)
	}
	if m.HasSbFlags {
		e = e.u(17, uint64(m.SbFlags))
	}
	if m.HasExtKey {
		e = e.bytes(18, []byte(m.ExtKey))
	}
	return e
}

// editMounts rewrites the mountpoints image of files with edit applied.
func editMounts(t testing.TB, files map[string]Info, edit func(ms []MntEntry) []MntEntry) {
	t.Helper()
	name := mountsImage(t, files)
	ms, err := ReadMountpoints(name, files[name].Data)
	if err != nil {
		t.Fatal(err)
	}
	var parts [][]byte
	for _, m := range edit(ms) {
		parts = append(parts, entry(encodeMnt(m)))
	}
	setData(files, name, image("MNTS", parts...))
}

// at returns the mount at mountpoint mp.
func at(t testing.TB, ms []MntEntry, mp string) *MntEntry {
	for i := range ms {
		if ms[i].Mountpoint == mp {
			return &ms[i]
		}
	}
	t.Fatalf("no mount at %s", mp)
	return nil
}

// without returns ms without the mount at mp.
func without(t testing.TB, ms []MntEntry, mp string) []MntEntry {
	m := *at(t, ms, mp)
	var out []MntEntry
	for _, x := range ms {
		if x.MntID != m.MntID {
			out = append(out, x)
		}
	}
	return out
}

// TestMountsReal: the real archives pass the default rules and the policy
// of the spec the engine restores them with, and the mount entries decode
// as crit reads them (inspect's TestMountsCrit compares every field).
func TestMountsReal(t *testing.T) {
	for _, a := range mountArchives {
		t.Run(strings.TrimPrefix(a.file, "../../testdata/"), func(t *testing.T) {
			files := loadArchive(t, a.file)
			if err := CheckImages(files, nil).Err(); err != nil {
				t.Errorf("CheckImages(default) = %v, want nil", err)
			}
			p := specPolicy(t, a.spec, onSourceHost)
			if err := CheckImages(files, &CheckOptions{Mounts: p}).Err(); err != nil {
				t.Errorf("CheckImages(spec policy) = %v, want nil", err)
			}
			// On a host with /proc/kcore the container would see it
			// unmasked: the archive is refused there.
			err := CheckImages(files, &CheckOptions{Mounts: specPolicy(t, a.spec, nil)}).Err()
			if !errors.Is(err, ErrImage) || !strings.Contains(fmt.Sprint(err), "no mount at /proc/kcore") {
				t.Errorf("CheckImages(policy requiring /proc/kcore masked) = %v, want a problem naming /proc/kcore", err)
			}
		})
	}
}

// ckptCounter is the real ckpt export the hostile cases mutate: a
// volume at /data and a read-only bind at /hostdir.
const ckptCounter = "../../testdata/ckpt/counter.tar.zst"

// TestMountsHostile mutates the mount namespace of a real ckpt export
// every way the default rules or the spec's policy must refuse. Cases
// with strictOnly pass the default rules (they are harmless without a
// spec to compare with) and fail the policy; the others fail both.
func TestMountsHostile(t *testing.T) {
	for _, tt := range hostileMounts {
		t.Run(tt.name, func(t *testing.T) {
			files := loadArchive(t, ckptCounter)
			editMounts(t, files, func(ms []MntEntry) []MntEntry { return tt.edit(t, ms) })
			name := mountsImage(t, files)
			policy := specPolicy(t, "../../testdata/ckpt/counter.spec.json", onSourceHost)
			def := CheckImages(files, nil).Err()
			strict := CheckImages(files, &CheckOptions{Mounts: policy}).Err()
			if tt.strictOnly && def != nil {
				t.Errorf("CheckImages(default) = %v, want nil (only the spec's policy refuses this)", def)
			}
			if !tt.strictOnly && !hasProblem(def, name, tt.want) {
				t.Errorf("CheckImages(default) = %v, want a problem of %s containing %q", def, name, tt.want)
			}
			if !hasProblem(strict, name, tt.want) {
				t.Errorf("CheckImages(spec policy) = %v, want a problem of %s containing %q", strict, name, tt.want)
			}
		})
	}
}

// hostDev is the device of /data and /hostdir in ckptCounter's images.
const hostDev = 266338304

// hostileMounts are the mutations of TestMountsHostile (and seeds of
// FuzzImage).
var hostileMounts = []struct {
	name       string
	edit       func(t testing.TB, ms []MntEntry) []MntEntry
	strictOnly bool
	want       string
}{
	{"devtmpfs at /dev", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev").Fstype = FsDevtmpfs
		return ms
	}, false, "devtmpfs mount: not a filesystem"},
	{"overlay of host directories", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsOverlay, MntID: 900, RootDev: 900, ParentMntID: at(t, ms, "/").MntID, Root: "/",
			Mountpoint: "/mnt", Source: "overlay", Options: "lowerdir=/etc,upperdir=/var/tmp/u,workdir=/var/tmp/w", HasSbFlags: true})
	}, false, `option "lowerdir=/etc" names a host path`},
	{"overlay without options", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsOverlay, MntID: 900, RootDev: 900, ParentMntID: at(t, ms, "/").MntID, Root: "/",
			Mountpoint: "/mnt", Source: "overlay", HasSbFlags: true})
	}, false, "only the container's root may be one"},
	{"tmpfs with a relative upperdir", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev/shm").Options = "size=65536k,upperdir=x"
		return ms
	}, false, "names a host path"},
	{"bind of a host path, not external", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := at(t, ms, "/data")
		m.HasExtKey, m.ExtKey, m.Root = false, "", "/etc"
		return ms
	}, false, "no mount of the namespace to bind it from"},
	{"bind of the volume's directory below it, not declared", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := *at(t, ms, "/data")
		m.MntID, m.Mountpoint, m.Root, m.HasExtKey, m.ExtKey = 900, "/data2", m.Root+"/sub", false, ""
		return append(ms, m)
	}, true, `check mount 900 at /data2 (unsupported): not declared`},
	{"external mount not declared", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsUnsupported, MntID: 900, RootDev: hostDev, ParentMntID: at(t, ms, "/").MntID,
			Root: "/", Mountpoint: "/host", Source: "/dev/vda", HasSbFlags: true, HasExtKey: true, ExtKey: "/host"})
	}, true, `external mount keyed "/host"): not declared`},
	{"external mount keyed for CRIU's autodetection", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/data").ExtKey = keyAutodetected
		return ms
	}, false, "CRIU would take the host path from the image"},
	{"read-only bind made writable", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/hostdir").Flags &^= msRdonly
		return ms
	}, true, "at /hostdir (external mount keyed \"/hostdir\"): not declared"},
	{"external root escapes", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := at(t, ms, "/data")
		m.Root += "/../../../../../../etc"
		return ms
	}, false, "root: check path"},
	{"bind root escapes", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsTmpfs, MntID: 900, RootDev: at(t, ms, "/dev").RootDev, ParentMntID: at(t, ms, "/").MntID,
			Root: "/../../etc", Mountpoint: "/x", Source: "tmpfs", HasSbFlags: true})
	}, false, "not clean"},
	{"mountpoint escapes", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev/mqueue").Mountpoint = "/dev/../../etc"
		return ms
	}, false, "mountpoint: check path"},
	{"relative mountpoint", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev/mqueue").Mountpoint = "../etc"
		return ms
	}, false, "not absolute"},
	{"NUL in a mountpoint", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev/mqueue").Mountpoint = "/dev/mqueue\x00/../../etc"
		return ms
	}, false, "NUL byte"},
	{"masked path dropped", func(t testing.TB, ms []MntEntry) []MntEntry {
		return without(t, ms, "/proc/keys")
	}, true, "no mount at /proc/keys"},
	{"/proc/sys not read-only", func(t testing.TB, ms []MntEntry) []MntEntry {
		return without(t, ms, "/proc/sys")
	}, false, "without a read-only mount at /proc/sys"},
	{"/proc/sys writable", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/proc/sys").Flags &^= msRdonly
		return ms
	}, false, "bind of /proc/sys is writable"},
	{"second proc", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := *at(t, ms, "/proc")
		m.MntID, m.Mountpoint, m.ParentMntID = 900, "/tmp/p", at(t, ms, "/").MntID
		return append(ms, m)
	}, false, "proc mounted at /tmp/p: only at /proc"},
	{"proc's sysctls bound elsewhere", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := *at(t, ms, "/proc/sys")
		m.MntID, m.Mountpoint, m.ParentMntID = 900, "/tmp/s", at(t, ms, "/").MntID
		return append(ms, m)
	}, false, "a part of proc only over itself"},
	{"bind through a task's directory", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := *at(t, ms, "/proc/sys")
		m.MntID, m.Root, m.Mountpoint = 900, "/1/root", "/proc/1/root"
		return append(ms, m)
	}, false, "through a task's directory"},
	{"sysfs writable", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/sys").Flags &^= msRdonly
		return ms
	}, false, "sysfs is writable"},
	{"cgroup2 writable", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsCgroup2, MntID: 900, RootDev: 900, ParentMntID: at(t, ms, "/sys").MntID,
			Root: "/", Mountpoint: "/sys/fs/cgroup", Source: "cgroup2", HasSbFlags: true})
	}, false, "cgroup2 is writable"},
	{"binfmt_misc", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsBinfmtMisc, MntID: 900, RootDev: 900, ParentMntID: at(t, ms, "/proc/sys").MntID,
			Root: "/", Mountpoint: "/proc/sys/fs/binfmt_misc", Source: "binfmt_misc", HasSbFlags: true})
	}, false, "binfmt_misc mount"},
	{"filesystem mounted by name", func(t testing.TB, ms []MntEntry) []MntEntry {
		m := at(t, ms, "/dev/shm")
		m.Fstype, m.HasFsname, m.Fsname, m.Source = FsAuto, true, "ext4", "/dev/vda"
		return ms
	}, false, "mounted by name"},
	{"plugin", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev/shm").WithPlugin = true
		return ms
	}, false, "restored by a CRIU plugin"},
	{"parent cycle", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms,
			MntEntry{Fstype: FsTmpfs, MntID: 900, RootDev: 900, ParentMntID: 901, Root: "/", Mountpoint: "/x", Source: "tmpfs", HasSbFlags: true},
			MntEntry{Fstype: FsTmpfs, MntID: 901, RootDev: 901, ParentMntID: 900, Root: "/", Mountpoint: "/x", Source: "tmpfs", HasSbFlags: true})
	}, false, "its parents form a cycle"},
	{"duplicate mount id", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, *at(t, ms, "/dev/pts"))
	}, false, "listed twice"},
	{"two roots", func(t testing.TB, ms []MntEntry) []MntEntry {
		return append(ms, MntEntry{Fstype: FsTmpfs, MntID: 900, RootDev: 900, ParentMntID: 999999, Root: "/", Mountpoint: "/y", Source: "tmpfs", HasSbFlags: true})
	}, false, "parent 999999 not in the namespace"},
	{"child outside its parent", func(t testing.TB, ms []MntEntry) []MntEntry {
		at(t, ms, "/dev/pts").ParentMntID = at(t, ms, "/sys").MntID
		return ms
	}, false, "not at or below its parent"},
	{"too many mounts", func(t testing.TB, ms []MntEntry) []MntEntry {
		for i := range MaxMounts {
			ms = append(ms, MntEntry{Fstype: FsTmpfs, MntID: uint32(1000 + i), RootDev: 900, ParentMntID: at(t, ms, "/").MntID, Root: "/", Mountpoint: "/x", Source: "tmpfs", HasSbFlags: true})
		}
		return ms
	}, false, "more than 16384"},
}

// hasProblem reports whether err (a report's Err) has a line naming file
// that contains want, and wraps one of the sentinels of a refused image.
func hasProblem(err error, file, want string) bool {
	if !errors.Is(err, ErrImage) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMissing) {
		return false
	}
	for l := range strings.SplitSeq(err.Error(), "\n") {
		if strings.HasPrefix(l, file+":") && strings.Contains(l, want) {
			return true
		}
	}
	return false
}

// TestMountPolicyNeedsNamespace: with a policy, an image set without the
// root task's mount namespace (a process restored in the host's mounts)
// is refused; without one it is a plain process dump, checked as before.
func TestMountPolicyNeedsNamespace(t *testing.T) {
	files := loadArchive(t, ckptCounter)
	delete(files, mountsImage(t, files))
	if err := CheckImages(files, nil).Err(); err != nil {
		t.Errorf("CheckImages(default, no mount namespace) = %v, want nil", err)
	}
	err := CheckImages(files, &CheckOptions{Mounts: specPolicy(t, "../../testdata/ckpt/counter.spec.json", onSourceHost)}).Err()
	if !errors.Is(err, ErrMissing) || !strings.Contains(fmt.Sprint(err), "the root task's mount namespace") {
		t.Errorf("CheckImages(policy, no mount namespace) = %v, want ErrMissing naming the root task's mount namespace", err)
	}
}

// TestRuncMountPolicy checks how spec mounts map to policy entries.
func TestRuncMountPolicy(t *testing.T) {
	p := RuncMountPolicy(&RuncSpec{
		Mounts: []SpecMount{
			{Destination: "/proc", Type: "proc"},
			{Destination: "/v/", Type: "none", Options: []string{"rbind", "ro"}},
			{Destination: "relative", Type: "bind"},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Options: []string{"ro"}},
		},
		MaskedPaths:   []string{"/proc/kcore"},
		ReadonlyPaths: []string{"/proc/sys", "/etc/ro"},
		Exists:        func(p string) bool { return p != "/etc/ro" },
	})
	ro := MntEntry{Flags: msRdonly, HasSbFlags: true}
	for _, c := range []struct {
		m    MntEntry
		want bool
	}{
		{MntEntry{Mountpoint: "/proc", Fstype: FsProc}, true},
		{MntEntry{Mountpoint: "/proc", Fstype: FsTmpfs}, false},
		{MntEntry{Mountpoint: "/v", HasExtKey: true, ExtKey: "/v", Flags: msRdonly, HasSbFlags: true}, true},
		{MntEntry{Mountpoint: "/v", HasExtKey: true, ExtKey: "/v", HasSbFlags: true}, false},
		{MntEntry{Mountpoint: "/v", HasExtKey: true, ExtKey: "/w", Flags: msRdonly, HasSbFlags: true}, false},
		{MntEntry{Mountpoint: "/relative", HasExtKey: true, ExtKey: "/relative"}, false},
		{MntEntry{Mountpoint: "/sys/fs/cgroup", Fstype: FsTmpfs}, true},
		{MntEntry{Mountpoint: "/sys/fs/cgroup", Fstype: FsCgroup2}, false},
		{MntEntry{Mountpoint: "/sys/fs/cgroup", Fstype: FsCgroup2, Flags: ro.Flags, HasSbFlags: true}, true},
		{MntEntry{Mountpoint: "/sys/fs/cgroup/cpu", HasExtKey: true, ExtKey: "/sys/fs/cgroup/cpu", Flags: ro.Flags, HasSbFlags: true}, true},
		{MntEntry{Mountpoint: "/sys/fs/cgroup/cpu", HasExtKey: true, ExtKey: "/sys/fs/cgroup/memory", Flags: ro.Flags, HasSbFlags: true}, false},
		{MntEntry{Mountpoint: "/proc/kcore", HasExtKey: true, ExtKey: "/dev/null"}, true},
		{MntEntry{Mountpoint: "/proc/kcore", Fstype: FsTmpfs, Flags: ro.Flags, HasSbFlags: true}, true},
		{MntEntry{Mountpoint: "/proc/kcore", Fstype: FsTmpfs}, false},
		{MntEntry{Mountpoint: "/proc/sys", Fstype: FsProc, Flags: ro.Flags, HasSbFlags: true}, true},
		{MntEntry{Mountpoint: "/proc/sys", Fstype: FsProc, Flags: ro.Flags}, false}, // old image: MS_RDONLY goes to the superblock
		{MntEntry{Mountpoint: "/etc/ro", Fstype: FsOverlay, Flags: ro.Flags, HasSbFlags: true}, true},
		{MntEntry{Mountpoint: "/dev/null", HasExtKey: true, ExtKey: "/dev/null"}, true},
		{MntEntry{Mountpoint: "/dev/console", Fstype: FsDevpts}, true},
	} {
		got := false
		for i := range p.Mounts {
			got = got || p.Mounts[i].matches(&c.m)
		}
		if got != c.want {
			t.Errorf("policy matches %+v = %v, want %v", c.m, got, c.want)
		}
	}
	var required []string
	for _, m := range p.Mounts {
		if m.Required {
			required = append(required, m.Path)
		}
	}
	if got := strings.Join(required, " "); got != "/proc/kcore /proc/kcore /proc/sys" {
		t.Errorf("required paths = %q, want /proc/kcore (twice: two forms) and /proc/sys", got)
	}
}
