package inspect

import (
	"encoding/binary"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	"github.com/ckpt/ckpt/internal/testutil/archtest"
)

// archiveImages reads the checkpoint/ images of a real archive.
func archiveImages(t *testing.T, file string) map[string][]byte {
	t.Helper()
	m, members := archtest.Members(t, file)
	out := map[string][]byte{}
	for _, mb := range m.Members {
		if mb.Kind == format.KindImage {
			out[path.Base(mb.Name)] = members[mb.Name]
		}
	}
	return out
}

// TestMountsCrit decodes the mount namespaces of the real archives with
// criuimg's decoder and with go-criu's generated one (an independent
// reading of images/mnt.proto): every field must agree.
func TestMountsCrit(t *testing.T) {
	n := 0
	for _, file := range []string{"../testdata/podman/counter.tar.zst", "../testdata/ckpt/counter.tar.zst", "../testdata/ckpt/from-podman.tar.zst"} {
		for name, data := range archiveImages(t, file) {
			if !strings.HasPrefix(name, "mountpoints-") {
				continue
			}
			ours, err := criuimg.ReadMountpoints(name, data)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := decodeAll(name, data, func() *mnt.MntEntry { return &mnt.MntEntry{} })
			if err != nil || len(theirs) != len(ours) {
				t.Fatalf("%s: go-criu decoded %d entries (%v), criuimg %d", file, len(theirs), err, len(ours))
			}
			for i, g := range theirs {
				o := ours[i]
				key, ext := o.External()
				want := criuimg.MntEntry{
					Fstype: g.GetFstype(), MntID: g.GetMntId(), RootDev: g.GetRootDev(), ParentMntID: g.GetParentMntId(),
					Flags: g.GetFlags(), Root: g.GetRoot(), Mountpoint: g.GetMountpoint(), Source: g.GetSource(),
					Options: g.GetOptions(), SharedID: g.GetSharedId(), MasterID: g.GetMasterId(), WithPlugin: g.GetWithPlugin(),
					ExtMount: g.GetExtMount(), Fsname: g.GetFsname(), HasFsname: g.Fsname != nil, InternalSharing: g.GetInternalSharing(),
					Deleted: g.GetDeleted(), SbFlags: g.GetSbFlags(), HasSbFlags: g.SbFlags != nil, ExtKey: g.GetExtKey(), HasExtKey: g.ExtKey != nil,
				}
				if o != want {
					t.Errorf("%s %s entry %d: criuimg %+v, go-criu %+v", file, name, i, o, want)
				}
				if ext != (g.ExtKey != nil || g.GetExtMount()) || ext && key != g.GetExtKey() && key != g.GetRoot() {
					t.Errorf("%s %s entry %d: External() = %q, %v; go-criu ext_key %v", file, name, i, key, ext, g.ExtKey)
				}
				n++
			}
		}
	}
	if n < 40 {
		t.Errorf("compared %d mounts, want the real archives' (at least 40)", n)
	}
}

// pstreeImage encodes tasks as pstree.img, with head as its magic.
func pstreeImage(head []byte, tasks []criuimg.PstreeEntry) []byte {
	out := append([]byte{}, head...)
	for _, tk := range tasks {
		var m []byte
		for num, v := range []uint32{tk.PID, tk.PPID, tk.PGID, tk.SID} {
			m = binary.AppendUvarint(append(m, byte((num+1)<<3)), uint64(v))
		}
		for _, th := range tk.Threads {
			m = binary.AppendUvarint(append(m, 5<<3), uint64(th))
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	return out
}

// TestTreeAgreesWithVerify: the inspector builds a process tree exactly
// when the verifier's check accepts it (one check, criuimg.CheckPstree).
func TestTreeAgreesWithVerify(t *testing.T) {
	head := archiveImages(t, "../testdata/ckpt/counter.tar.zst")["pstree.img"][:8]
	task := func(pid, ppid uint32) criuimg.PstreeEntry {
		return criuimg.PstreeEntry{PID: pid, PPID: ppid, PGID: 1, SID: 1, Threads: []uint32{pid}}
	}
	for _, c := range []struct {
		name  string
		tasks []criuimg.PstreeEntry
	}{
		{"sound", []criuimg.PstreeEntry{task(1, 0), task(2, 1), task(3, 2)}},
		{"cycle", []criuimg.PstreeEntry{task(1, 0), task(2, 3), task(3, 2)}},
		{"cycle through the root", []criuimg.PstreeEntry{task(1, 2), task(2, 1)}},
		{"duplicate pid", []criuimg.PstreeEntry{task(1, 0), task(2, 1), task(2, 1)}},
		{"missing parent", []criuimg.PstreeEntry{task(1, 0), task(2, 7)}},
		{"session mismatch", []criuimg.PstreeEntry{task(1, 0), {PID: 2, PPID: 1, PGID: 1, SID: 2}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &Archive{ImageDir: "checkpoint", Images: map[string][]byte{"pstree.img": pstreeImage(head, c.tasks)}}
			roots, err := a.Tree()
			verr := errors.Join(criuimg.CheckPstree(c.tasks)...)
			if (err == nil) != (verr == nil) {
				t.Fatalf("Tree() = %v, CheckPstree() = %v: they must agree", err, verr)
			}
			if err != nil {
				if !errors.Is(err, ErrImage) {
					t.Errorf("Tree() = %v, want ErrImage", err)
				}
				return
			}
			seen := 0
			Walk(roots, func(*Process, int) { seen++ })
			if len(roots) != 1 || seen != len(c.tasks) {
				t.Errorf("Tree() = %d roots, %d tasks, want 1 root and %d tasks", len(roots), seen, len(c.tasks))
			}
		})
	}
}
