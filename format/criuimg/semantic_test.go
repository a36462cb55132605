package criuimg

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCheckPstree refuses process trees CRIU must not be asked to fork.
func TestCheckPstree(t *testing.T) {
	root := PstreeEntry{PID: 1, PGID: 1, SID: 1, Threads: []uint32{1}}
	task := func(pid, ppid uint32) PstreeEntry {
		return PstreeEntry{PID: pid, PPID: ppid, PGID: 1, SID: 1, Threads: []uint32{pid}}
	}
	many := []PstreeEntry{root}
	for i := range MaxTasks {
		many = append(many, task(uint32(i+2), 1))
	}
	tests := []struct {
		name  string
		tasks []PstreeEntry
		want  string // "" for a sound tree
	}{
		{"sound", []PstreeEntry{root, task(2, 1), task(3, 2)}, ""},
		{"zombie with garbage threads", []PstreeEntry{root, {PID: 2, PPID: 1, PGID: 1, SID: 1, Threads: []uint32{3770122912}}}, ""},
		{"empty", nil, "no task"},
		{"cycle", []PstreeEntry{root, task(2, 3), task(3, 2)}, "its parents form a cycle"},
		{"cycle below a task", []PstreeEntry{root, task(2, 3), task(3, 4), task(4, 3)}, "its parents form a cycle"},
		{"root's parent in the tree", []PstreeEntry{{PID: 1, PPID: 2, PGID: 1, SID: 1}, task(2, 1)}, "the root task's parent 2 is in the tree"},
		{"duplicate pid", []PstreeEntry{root, task(2, 1), task(2, 1)}, "listed twice"},
		{"parent missing", []PstreeEntry{root, task(2, 9)}, "parent 9 not in the tree"},
		{"pid 0", []PstreeEntry{root, task(0, 1)}, "pid out of range"},
		{"pid over the limit", []PstreeEntry{root, task(MaxPID+1, 1)}, "pid out of range"},
		{"session over the limit", []PstreeEntry{root, {PID: 2, PPID: 1, PGID: 1, SID: MaxPID + 1}}, "out of range 0-"},
		{"group leader in another session", []PstreeEntry{root, {PID: 2, PPID: 1, PGID: 2, SID: 2}, {PID: 3, PPID: 1, PGID: 2, SID: 1}}, "its group leader 2 is in session 2"},
		{"session of a task that leads none", []PstreeEntry{root, task(2, 1), {PID: 3, PPID: 1, PGID: 3, SID: 2}}, "task 2 does not lead a session"},
		{"too many tasks", many, "more than 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckPstree(tt.tasks)
			if tt.want == "" {
				if len(errs) != 0 {
					t.Errorf("CheckPstree() = %v, want no problem", errs)
				}
				return
			}
			err := errors.Join(errs...)
			if !errors.Is(err, ErrImage) || !strings.Contains(fmt.Sprint(err), tt.want) {
				t.Errorf("CheckPstree() = %v, want ErrImage containing %q", err, tt.want)
			}
		})
	}
}

// pstreeImage encodes tasks as pstree.img.
func pstreeImage(tasks []PstreeEntry) []byte {
	var parts [][]byte
	for _, tk := range tasks {
		m := enc(nil).u(1, uint64(tk.PID)).u(2, uint64(tk.PPID)).u(3, uint64(tk.PGID)).u(4, uint64(tk.SID))
		for _, th := range tk.Threads {
			m = m.u(5, uint64(th))
		}
		parts = append(parts, entry(m))
	}
	return image("PSTREE", parts...)
}

// replaceField returns msg with every length-delimited field num replaced
// by val.
func replaceField(t testing.TB, msg []byte, num int, val []byte) []byte {
	t.Helper()
	var out enc
	d := decoder{b: msg}
	for !d.done() {
		start := d.off
		n, wt, err := d.key()
		if err == nil {
			err = d.skip(wt)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == num && wt == wireBytes {
			out = out.bytes(num, val)
			continue
		}
		out = append(out, msg[start:d.off]...)
	}
	return out
}

// field returns the value of length-delimited field num of msg.
func fieldBytes(t testing.TB, msg []byte, num int) []byte {
	t.Helper()
	d := decoder{b: msg}
	for !d.done() {
		n, wt, err := d.key()
		if err != nil {
			t.Fatal(err)
		}
		if n == num && wt == wireBytes {
			b, err := d.bytes()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		if err := d.skip(wt); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no field %d", num)
	return nil
}

// setRegName renames the regular file id of files.img.
func setRegName(t testing.TB, files map[string]Info, id uint32, name string) {
	t.Helper()
	entries, err := ReadFiles(files["files.img"].Data)
	if err != nil {
		t.Fatal(err)
	}
	var parts [][]byte
	i := 0
	err = eachEntry("files.img", files["files.img"].Data, func(_ int, b []byte) error {
		msg := append([]byte{}, b...)
		if entries[i].ID == id {
			reg := replaceField(t, fieldBytes(t, msg, 3), 6, []byte(name))
			msg = replaceField(t, msg, 3, reg)
		}
		i++
		parts = append(parts, entry(msg))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	setData(files, "files.img", image("FILES", parts...))
}

// ghostImage encodes a ghost file image of mode, device and declared size,
// with contents.
func ghostImage(mode, rdev uint32, size uint64, contents string) []byte {
	return image("GHOST_FILE", entry(enc(nil).u(1, 0).u(2, 0).u(3, uint64(mode)).u(6, uint64(rdev)).u(10, size)), []byte(contents))
}

// TestCheckImagesSemantic refuses image sets whose process tree, files or
// memory are not what CRIU may be asked to restore; each case names the
// image it must be found in.
func TestCheckImagesSemantic(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, s tinySet)
		file string
		want string
	}{
		{"pstree cycle", func(t *testing.T, s tinySet) {
			tasks, _ := ReadPstree(s.files["pstree.img"].Data)
			tasks[1].PPID, tasks[2].PPID = tasks[2].PID, tasks[1].PID
			setData(s.files, "pstree.img", pstreeImage(tasks))
		}, "pstree.img", "its parents form a cycle"},
		{"pstree duplicate pid", func(t *testing.T, s tinySet) {
			tasks, _ := ReadPstree(s.files["pstree.img"].Data)
			tasks[2].PID = tasks[1].PID
			setData(s.files, "pstree.img", pstreeImage(tasks))
		}, "pstree.img", "listed twice"},
		{"thread out of range", func(t *testing.T, s tinySet) {
			tasks, _ := ReadPstree(s.files["pstree.img"].Data)
			tasks[0].Threads[1] = MaxPID + 1
			setData(s.files, "pstree.img", pstreeImage(tasks))
		}, "pstree.img", "out of range 1-"},
		{"file path with ..", func(t *testing.T, s tinySet) { setRegName(t, s.files, 8, "/tmp/../../etc/shadow") }, "files.img", "not clean"},
		{"file path relative", func(t *testing.T, s tinySet) { setRegName(t, s.files, 8, "../etc/shadow") }, "files.img", "not absolute"},
		{"file path with NUL", func(t *testing.T, s tinySet) { setRegName(t, s.files, 8, "/tmp/ghost\x00/../../etc/shadow") }, "files.img", "NUL byte"},
		{"file path too long", func(t *testing.T, s tinySet) { setRegName(t, s.files, 8, "/"+strings.Repeat("a/", MaxPathLength/2)) }, "files.img", "longer than 4096"},
		{"ghost block device", func(t *testing.T, s tinySet) {
			setData(s.files, "ghost-file-1.img", ghostImage(0o60600, 8<<8, 0, ""))
		}, "ghost-file-1.img", "block device 8:0"},
		{"ghost /dev/mem", func(t *testing.T, s tinySet) {
			setData(s.files, "ghost-file-1.img", ghostImage(0o20600, 1<<8|1, 0, ""))
		}, "ghost-file-1.img", "character device 1:1"},
		{"ghost declared oversize", func(t *testing.T, s tinySet) {
			setData(s.files, "ghost-file-1.img", ghostImage(0o100600, 0, 1<<40, "x"))
		}, "ghost-file-1.img", "more than 67108864"},
		{"ghost image oversize", func(t *testing.T, s tinySet) {
			head := ghostImage(0o100600, 0, 15, "ghost contents\n")
			s.files["ghost-file-1.img"] = Info{Size: MaxGhostFileSize + 1, Data: head}
		}, "ghost-file-1.img", "image of 67108865 bytes"},
		{"remap to a missing ghost", func(t *testing.T, s tinySet) {
			setData(s.files, "remap-fpath.img", image("REMAP_FPATH", entry(enc(nil).u(1, 8).u(2, 7).u(3, uint64(RemapGhost)))))
		}, "ghost-file-7.img", "remap of file 8 names it"},
		{"remap of an unknown file", func(t *testing.T, s tinySet) {
			setData(s.files, "remap-fpath.img", image("REMAP_FPATH", entry(enc(nil).u(1, 99).u(2, 1).u(3, uint64(RemapGhost)))))
		}, "remap-fpath.img", "not a regular file of files.img"},
		{"remap of an old image's ghost bit", func(t *testing.T, s tinySet) {
			setData(s.files, "remap-fpath.img", image("REMAP_FPATH", entry(enc(nil).u(1, 8).u(2, 1<<31|5))))
		}, "ghost-file-5.img", "remap of file 8 names it"},
		{"pagemap of 2^40 pages", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].NrPages = 1 << 40
				return e
			})
		}, img("pagemap", 22557), "pages outside the VMAs"},
		{"pagemap of 2^40 lazy pages", func(t *testing.T, s tinySet) {
			editPagemap(t, s.files, s.leader, func(e []PagemapEntry) []PagemapEntry {
				e[0].NrPages, e[0].Flags = 1<<40, PELazy
				return e
			})
		}, img("pagemap", 22557), "pages outside the VMAs"},
		{"inverted VMA", func(t *testing.T, s tinySet) {
			n := img("mm", s.leader)
			setData(s.files, n, rewriteVma(t, s.files[n].Data, 0, func(v []byte) []byte { return setVarint(t, v, 2, 0) }))
		}, img("mm", 22557), "empty, inverted or not aligned"},
		{"overlapping VMAs", func(t *testing.T, s tinySet) {
			n := img("mm", s.leader)
			mm, _ := ReadMm(n, s.files[n].Data)
			setData(s.files, n, rewriteVma(t, s.files[n].Data, 1, func(v []byte) []byte { return setVarint(t, v, 1, mm.Vmas[0].Start) }))
		}, img("mm", 22557), "overlaps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadTiny(t)
			if s.leader != 22557 {
				t.Fatalf("testdata leader %d, the table names 22557", s.leader)
			}
			tt.edit(t, s)
			if err := CheckImages(s.files, nil).Err(); !hasProblem(err, tt.file, tt.want) {
				t.Errorf("CheckImages() = %v, want a problem of %s containing %q", err, tt.file, tt.want)
			}
		})
	}
}

// setVarint returns msg with varint field num set to v.
func setVarint(t testing.TB, msg []byte, num int, v uint64) []byte {
	t.Helper()
	var out enc
	d := decoder{b: msg}
	for !d.done() {
		start := d.off
		n, wt, err := d.key()
		if err == nil {
			err = d.skip(wt)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == num && wt == wireVarint {
			out = out.u(num, v)
			continue
		}
		out = append(out, msg[start:d.off]...)
	}
	return out
}

// rewriteVma returns the mm image data with its i-th VMA (field 14)
// passed through edit.
func rewriteVma(t testing.TB, data []byte, i int, edit func([]byte) []byte) []byte {
	t.Helper()
	var msg []byte
	if err := eachEntry("mm.img", data, func(_ int, b []byte) error { msg = append([]byte{}, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	var out enc
	d := decoder{b: msg}
	k := 0
	for !d.done() {
		start := d.off
		n, wt, err := d.key()
		if err != nil {
			t.Fatal(err)
		}
		if n == 14 && wt == wireBytes {
			v, err := d.bytes()
			if err != nil {
				t.Fatal(err)
			}
			if k == i {
				v = edit(v)
			}
			k++
			out = out.bytes(14, v)
			continue
		}
		if err := d.skip(wt); err != nil {
			t.Fatal(err)
		}
		out = append(out, msg[start:d.off]...)
	}
	return image("MM", entry(out))
}
