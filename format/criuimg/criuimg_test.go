package criuimg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/critoracle"
	"github.com/ckpt/ckpt/internal/testutil"
)

// tinyDir holds a real CRIU 4.1.1 image set of testdata/tiny.c, made by
// testdata/gen.sh; tinyDir+".crit" holds CRIU's Python crit's JSON for
// each image, which TestCritCommitted keeps comparing against.
const tinyDir = "testdata/tiny"

// realDirs are all the committed real image sets: tinyDir, and the same
// process tree dumped by CRIU 4.2.1 (which writes the 64-bit nr_pages
// field of pagemap entries instead of compat_nr_pages).
var realDirs = []string{tinyDir, "testdata/tiny-4.2.1"}

// loadDir reads every file of an image directory into an Info map.
func loadDir(t testing.TB, dir string) map[string]Info {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]Info{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = Info{Size: int64(len(b)), Data: b}
	}
	return files
}

// sortedNames returns the keys of files, sorted.
func sortedNames(files map[string]Info) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestExpectedMagic(t *testing.T) {
	tests := []struct {
		name  string
		magic string
		kind  Kind
	}{
		{"inventory.img", "INVENTORY", KindProto},
		{"pstree.img", "PSTREE", KindProto},
		{"core-1.img", "CORE", KindProto},
		{"core-4294967295.img", "CORE", KindProto},
		{"mm-12.img", "MM", KindProto},
		{"pagemap-12.img", "PAGEMAP", KindProto},
		{"pagemap-shmem-1234.img", "PAGEMAP", KindProto},
		{"pagemap-secretmem-7.img", "PAGEMAP", KindProto},
		{"pages-1.img", "", KindRaw},
		{"files.img", "FILES", KindProto},
		{"fdinfo-2.img", "FDINFO", KindProto},
		{"ids-1.img", "IDS", KindProto},
		{"ipcns-var-11.img", "IPC_VAR", KindProto},
		{"ipcns-shm-11.img", "IPCNS_SHM", KindProto},
		{"eventpoll-tfd.img", "EVENTPOLL_TFD", KindProto},
		{"ghost-file-1a.img", "GHOST_FILE", KindProto},
		{"tcp-stream-ff.img", "TCP_STREAM", KindProto},
		{"signal-p-3.img", "SIGNAL", KindProto},
		{"binfmt-misc.img", "BINFMT_MISC", KindProto},
		{"binfmt-misc-3.img", "BINFMT_MISC", KindProto},
		{"stats-dump", "STATS", KindProto},
		{"stats-restore", "STATS", KindProto},
		{"irmap-cache", "IRMAP_CACHE", KindProto},
		{"ifaddr-9.img", "", KindRaw},
		{"tmpfs-dev-9.tar.gz", "", KindRaw},
		{"tmpfs-9.tar.gz", "", KindRaw},
		{"netns-ct-9.img", "", KindRaw},
		{"core.img", "", KindUnknown},
		{"core-.img", "", KindUnknown},
		{"core-x.img", "", KindUnknown},
		{"core--1.img", "", KindUnknown},
		{"ghost-file-G.img", "", KindUnknown},
		{"dump.log", "", KindUnknown},
		{"descriptors.json", "", KindUnknown},
		{"parent", "", KindUnknown},
		{"stats-dump.img", "", KindUnknown},
	}
	for _, tt := range tests {
		m, k := ExpectedMagic(tt.name)
		if m != tt.magic || k != tt.kind {
			t.Errorf("ExpectedMagic(%q) = %q, %v, want %q, %v", tt.name, m, k, tt.magic, tt.kind)
		}
		if k == KindProto {
			if _, ok := magicByName[m]; !ok {
				t.Errorf("ExpectedMagic(%q) = %q, not in go-criu's magic table", tt.name, m)
			}
		}
	}
	for _, tab := range []map[string]string{fixedNames, numberedNames, hexNames} {
		for p, m := range tab {
			if _, ok := magicByName[m]; m != raw && !ok {
				t.Errorf("name %q: magic %q not in go-criu's magic table", p, m)
			}
		}
	}
}

func le32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return b
}

func TestMagic(t *testing.T) {
	core := magicByName["CORE"]
	tests := []struct {
		name string
		head []byte
		want string // magic name, "!magic" for ErrMagic, "!truncated" for ErrTruncated
	}{
		{"core-1.img", le32(MagicCommon, core), "CORE"},
		{"inventory.img", le32(MagicInventory, 10), "INVENTORY"},
		{"inventory.img", le32(MagicCommon, MagicInventory), "!magic"},
		{"inventory.img", le32(MagicCommon), "!magic"},
		{"core-1.img", le32(MagicService, core), "!magic"},
		{"core-1.img", le32(core, 0), "!magic"},
		{"core-1.img", le32(MagicCommon, magicByName["MM"]), "!magic"},
		{"core-1.img", le32(MagicCommon, 0x12345678), "!magic"},
		{"core-1.img", le32(MagicCommon), "!truncated"},
		{"core-1.img", []byte{0x19, 0x43}, "!truncated"},
		{"core-1.img", nil, "!truncated"},
		{"stats-dump", le32(MagicService, magicByName["STATS"]), "STATS"},
		{"stats-dump", le32(MagicCommon, magicByName["STATS"]), "!magic"},
		{"unknown.img", le32(MagicCommon, magicByName["FILES"]), "FILES"},
		{"unknown.img", le32(MagicInventory, 0), "INVENTORY"},
		{"unknown.img", le32(0, 0), "!magic"},
		{"pages-1.img", nil, ""},
	}
	for _, tt := range tests {
		info, err := Magic(tt.name, tt.head)
		got := info.Name
		switch {
		case errors.Is(err, ErrMagic):
			got = "!magic"
		case errors.Is(err, ErrTruncated):
			got = "!truncated"
		case err != nil:
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Magic(%q, % x) = %q (%v), want %q", tt.name, tt.head, got, err, tt.want)
		}
	}
}

// TestTinyClean checks that the committed real image sets pass
// CheckImages, and that the Reader finds as many entries in every image as
// crit does (which exercises the extra payloads of pipes-data and
// ghost-file).
func TestTinyClean(t *testing.T) {
	for _, dir := range realDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkClean(t, dir) })
	}
}

func checkClean(t *testing.T, dir string) {
	files := loadDir(t, dir)
	if err := CheckImages(files, nil).Err(); err != nil {
		t.Fatalf("CheckImages(%s) = %v, want no problem", dir, err)
	}
	for _, name := range sortedNames(files) {
		if _, kind := ExpectedMagic(name); kind != KindProto {
			continue
		}
		img := loadCrit(t, filepath.Join(dir+".crit", name+".json"))
		data := files[name].Data
		r := NewReader(name, bytes.NewReader(data), int64(len(data)), nil)
		n := 0
		var extra int64
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Reader(%s).Next() = %v", name, err)
			}
			n++
			extra += r.ExtraSize()
		}
		if n != len(img.Entries) {
			t.Errorf("Reader(%s) read %d entries, crit %d", name, n, len(img.Entries))
		}
		if info, _ := r.Magic(); info.Name != img.Magic {
			t.Errorf("Reader(%s).Magic() = %s, crit %s", name, info.Name, img.Magic)
		}
		switch name {
		case "pipes-data.img":
			if extra != int64(len("pipe data")) {
				t.Errorf("Reader(%s) skipped %d extra bytes, want %d", name, extra, len("pipe data"))
			}
		case "ghost-file-1.img":
			if extra != int64(len("ghost contents\n")) {
				t.Errorf("Reader(%s) skipped %d extra bytes, want %d", name, extra, len("ghost contents\n"))
			}
		}
	}
}

// critImage is crit's JSON for one image.
type critImage struct {
	Magic   string           `json:"magic"`
	Entries []map[string]any `json:"entries"`
}

func loadCrit(t testing.TB, path string) critImage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCrit(t, b)
}

func parseCrit(t testing.TB, b []byte) critImage {
	t.Helper()
	var img critImage
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&img); err != nil {
		t.Fatalf("parse crit JSON: %v", err)
	}
	return img
}

// jnum renders a JSON value the way fmt renders our decoded numbers:
// crit writes enums as names, flags and hex fields as numbers in compact
// output, strings as strings.
func jstr(v any) string {
	switch v := v.(type) {
	case nil:
		return "<nil>"
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	case string:
		return v
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// field returns m[key] rendered, or def when absent (proto2 default).
func field(m map[string]any, key, def string) string {
	v, ok := m[key]
	if !ok {
		return def
	}
	return jstr(v)
}

func sub(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

// compareWithCrit checks that the package's decoders agree with crit's
// JSON (crit) on every field they decode, for the images of one set.
func compareWithCrit(t *testing.T, files map[string]Info, crit func(name string) critImage) {
	t.Helper()
	check := func(name, what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s = %s, crit says %s", name, what, got, want)
		}
	}
	marchNames := map[uint32]string{MarchX86_64: "X86_64", MarchAARCH64: "AARCH64"}
	fdNames := map[uint32]string{FdReg: "REG", FdPipe: "PIPE", FdFifo: "FIFO", FdUnixSk: "UNIXSK", FdInetSk: "INETSK", FdTTY: "TTY"}
	lsm := map[uint32]string{0: "NO_LSM", 1: "SELINUX", 2: "APPARMOR"}
	seen := map[string]bool{}
	for _, name := range sortedNames(files) {
		data := files[name].Data
		m, _ := ExpectedMagic(name)
		switch m {
		case "INVENTORY", "PSTREE", "CORE", "PAGEMAP", "MM", "IDS", "FILES", "FDINFO":
		default:
			continue
		}
		seen[m] = true
		img := crit(name)
		switch m {
		case "INVENTORY":
			inv, err := ReadInventory(data)
			if err != nil {
				t.Fatal(err)
			}
			e := img.Entries[0]
			check(name, "img_version", fmt.Sprint(inv.ImgVersion), field(e, "img_version", ""))
			check(name, "fdinfo_per_id", fmt.Sprint(inv.FdinfoPerID), field(e, "fdinfo_per_id", "false"))
			check(name, "ns_per_id", fmt.Sprint(inv.NsPerID), field(e, "ns_per_id", "false"))
			check(name, "root_cg_set", fmt.Sprint(inv.RootCgSet), field(e, "root_cg_set", "0"))
			check(name, "lsmtype", lsm[inv.LSMType], field(e, "lsmtype", "NO_LSM"))
			check(name, "dump_criu_run_id", inv.DumpCriuRunID, field(e, "dump_criu_run_id", ""))
			check(name, "pre_dump_mode", fmt.Sprint(inv.PreDumpMode), field(e, "pre_dump_mode", "0"))
			check(name, "root_ids.files_id", fmt.Sprint(inv.RootIDs.FilesID), field(sub(e, "root_ids"), "files_id", ""))
			check(name, "root_ids.mnt_ns_id", fmt.Sprint(inv.RootIDs.MntNsID), field(sub(e, "root_ids"), "mnt_ns_id", ""))
			check(name, "root_ids.time_ns_id", fmt.Sprint(inv.RootIDs.TimeNsID), field(sub(e, "root_ids"), "time_ns_id", ""))
		case "PSTREE":
			tasks, err := ReadPstree(data)
			if err != nil {
				t.Fatal(err)
			}
			check(name, "entries", fmt.Sprint(len(tasks)), fmt.Sprint(len(img.Entries)))
			for i := range min(len(tasks), len(img.Entries)) {
				e, p := img.Entries[i], tasks[i]
				check(name, "pid", fmt.Sprint(p.PID), field(e, "pid", ""))
				check(name, "ppid", fmt.Sprint(p.PPID), field(e, "ppid", ""))
				check(name, "pgid", fmt.Sprint(p.PGID), field(e, "pgid", ""))
				check(name, "sid", fmt.Sprint(p.SID), field(e, "sid", ""))
				th := make([]string, len(p.Threads))
				for j, v := range p.Threads {
					th[j] = fmt.Sprint(v)
				}
				var want []string
				for _, v := range e["threads"].([]any) {
					want = append(want, jstr(v))
				}
				check(name, "threads", strings.Join(th, ","), strings.Join(want, ","))
			}
		case "CORE":
			c, err := ReadCore(name, data)
			if err != nil {
				t.Fatal(err)
			}
			e := img.Entries[0]
			check(name, "mtype", marchNames[c.Mtype], field(e, "mtype", ""))
			tc := sub(e, "tc")
			check(name, "has tc", fmt.Sprint(c.TC != nil), fmt.Sprint(tc != nil))
			if c.TC != nil && tc != nil {
				check(name, "tc.task_state", fmt.Sprint(c.TC.TaskState), field(tc, "task_state", ""))
				check(name, "tc.exit_code", fmt.Sprint(c.TC.ExitCode), field(tc, "exit_code", ""))
				check(name, "tc.personality", fmt.Sprint(c.TC.Personality), field(tc, "personality", ""))
				check(name, "tc.flags", fmt.Sprint(c.TC.Flags), field(tc, "flags", ""))
				check(name, "tc.blk_sigset", fmt.Sprint(c.TC.BlkSigset), field(tc, "blk_sigset", ""))
				check(name, "tc.comm", c.TC.Comm, field(tc, "comm", ""))
				check(name, "tc.stop_signo", fmt.Sprint(c.TC.StopSigno), field(tc, "stop_signo", "0"))
			}
			th := sub(e, "thread_core")
			check(name, "has thread_core", fmt.Sprint(c.ThreadCore != nil), fmt.Sprint(th != nil))
			if c.ThreadCore != nil && th != nil {
				check(name, "thread_core.futex_rla", fmt.Sprint(c.ThreadCore.FutexRla), field(th, "futex_rla", ""))
				check(name, "thread_core.futex_rla_len", fmt.Sprint(c.ThreadCore.FutexRlaLen), field(th, "futex_rla_len", ""))
				check(name, "thread_core.comm", c.ThreadCore.Comm, field(th, "comm", ""))
			}
			check(name, "has ids", fmt.Sprint(c.IDs != nil), fmt.Sprint(sub(e, "ids") != nil))
		case "PAGEMAP":
			head, entries, err := ReadPagemap(name, data)
			if err != nil {
				t.Fatal(err)
			}
			check(name, "pages_id", fmt.Sprint(head.PagesID), field(img.Entries[0], "pages_id", ""))
			check(name, "entries", fmt.Sprint(len(entries)), fmt.Sprint(len(img.Entries)-1))
			for i := range min(len(entries), len(img.Entries)-1) {
				e, p := img.Entries[i+1], entries[i]
				check(name, "vaddr", fmt.Sprint(p.Vaddr), field(e, "vaddr", ""))
				// CRIU 4.1's proto calls field 2 nr_pages; 4.2 renames it
				// compat_nr_pages and adds a 64-bit nr_pages (field 5).
				check(name, "nr_pages", fmt.Sprint(p.NrPages), field(e, "nr_pages", field(e, "compat_nr_pages", "")))
				check(name, "flags", fmt.Sprint(p.Flags), field(e, "flags", ""))
				check(name, "in_parent", fmt.Sprint(p.InParent), field(e, "in_parent", "false"))
			}
		case "MM":
			mm, err := ReadMm(name, data)
			if err != nil {
				t.Fatal(err)
			}
			e := img.Entries[0]
			check(name, "mm_start_code", fmt.Sprint(mm.StartCode), field(e, "mm_start_code", ""))
			check(name, "mm_brk", fmt.Sprint(mm.Brk), field(e, "mm_brk", ""))
			check(name, "mm_env_end", fmt.Sprint(mm.EnvEnd), field(e, "mm_env_end", ""))
			check(name, "exe_file_id", fmt.Sprint(mm.ExeFileID), field(e, "exe_file_id", ""))
			check(name, "dumpable", fmt.Sprint(mm.Dumpable), field(e, "dumpable", "0"))
			auxv, _ := e["mm_saved_auxv"].([]any)
			check(name, "len(mm_saved_auxv)", fmt.Sprint(mm.NAuxv), fmt.Sprint(len(auxv)))
			vmas, _ := e["vmas"].([]any)
			check(name, "len(vmas)", fmt.Sprint(len(mm.Vmas)), fmt.Sprint(len(vmas)))
			for i := range min(len(vmas), len(mm.Vmas)) {
				w, v := vmas[i].(map[string]any), mm.Vmas[i]
				got := fmt.Sprint(v.Start, v.End, v.Pgoff, v.Shmid, v.Prot, v.Flags, v.Status, v.Fd, v.Madv, v.Fdflags)
				want := fmt.Sprint(field(w, "start", ""), " ", field(w, "end", ""), " ", field(w, "pgoff", ""), " ",
					field(w, "shmid", ""), " ", field(w, "prot", ""), " ", field(w, "flags", ""), " ",
					field(w, "status", ""), " ", field(w, "fd", ""), " ", field(w, "madv", "0"), " ", field(w, "fdflags", "0"))
				check(name, fmt.Sprintf("vmas[%d]", i), got, want)
			}
		case "IDS":
			ids, err := ReadIDs(name, data)
			if err != nil {
				t.Fatal(err)
			}
			e := img.Entries[0]
			got := fmt.Sprint(ids.VMID, ids.FilesID, ids.FsID, ids.SighandID, ids.PidNsID, ids.NetNsID,
				ids.IpcNsID, ids.UtsNsID, ids.MntNsID, ids.UserNsID, ids.CgroupNsID, ids.TimeNsID)
			var want []string
			for _, k := range []string{"vm_id", "files_id", "fs_id", "sighand_id", "pid_ns_id", "net_ns_id",
				"ipc_ns_id", "uts_ns_id", "mnt_ns_id", "user_ns_id", "cgroup_ns_id", "time_ns_id"} {
				want = append(want, field(e, k, "0"))
			}
			check(name, "ids", got, strings.Join(want, " "))
		case "FILES":
			fs, err := ReadFiles(data)
			if err != nil {
				t.Fatal(err)
			}
			check(name, "entries", fmt.Sprint(len(fs)), fmt.Sprint(len(img.Entries)))
			for i := range min(len(fs), len(img.Entries)) {
				e, f := img.Entries[i], fs[i]
				check(name, "id", fmt.Sprint(f.ID), field(e, "id", ""))
				if n, ok := fdNames[f.Type]; ok {
					check(name, "type", n, field(e, "type", ""))
				}
				reg := sub(e, "reg")
				check(name, "has reg", fmt.Sprint(f.Reg != nil), fmt.Sprint(reg != nil))
				if f.Reg != nil && reg != nil {
					check(name, "reg.name", f.Reg.Name, field(reg, "name", ""))
					check(name, "reg.flags", fmt.Sprint(f.Reg.Flags), field(reg, "flags", ""))
					check(name, "reg.pos", fmt.Sprint(f.Reg.Pos), field(reg, "pos", ""))
					check(name, "reg.size", fmt.Sprint(f.Reg.Size), field(reg, "size", "0"))
					check(name, "reg.mode", fmt.Sprint(f.Reg.Mode), field(reg, "mode", "0"))
					check(name, "reg.mnt_id", fmt.Sprint(f.Reg.MntID), field(reg, "mnt_id", "-1"))
				}
			}
		case "FDINFO":
			fds, err := ReadFdinfo(name, data)
			if err != nil {
				t.Fatal(err)
			}
			check(name, "entries", fmt.Sprint(len(fds)), fmt.Sprint(len(img.Entries)))
			for i := range min(len(fds), len(img.Entries)) {
				e, f := img.Entries[i], fds[i]
				check(name, "fdinfo", fmt.Sprint(f.ID, f.Flags, f.Fd), fmt.Sprint(field(e, "id", ""), " ", field(e, "flags", ""), " ", field(e, "fd", "")))
				if n, ok := fdNames[f.Type]; ok {
					check(name, "type", n, field(e, "type", ""))
				}
			}
		}
	}
	for _, m := range []string{"INVENTORY", "PSTREE", "CORE", "PAGEMAP", "MM", "IDS", "FILES", "FDINFO"} {
		if !seen[m] {
			t.Errorf("image set has no %s image to compare", m)
		}
	}
}

// TestCritCommitted compares the decoders with crit's JSON committed next
// to the images.
func TestCritCommitted(t *testing.T) {
	for _, dir := range realDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := loadDir(t, dir)
			compareWithCrit(t, files, func(name string) critImage {
				return loadCrit(t, filepath.Join(dir+".crit", name+".json"))
			})
		})
	}
}

// critDecode decodes one image file with go-criu's crit (the oracle).
func critDecode(t *testing.T, path string) critImage {
	t.Helper()
	out, err := critoracle.Decode(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCrit(t, out)
}

// TestCritLive decodes the committed images with go-criu's crit and
// compares.
func TestCritLive(t *testing.T) {
	for _, dir := range realDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := loadDir(t, dir)
			compareWithCrit(t, files, func(name string) critImage {
				return critDecode(t, filepath.Join(dir, name))
			})
		})
	}
}

// TestLiveDump dumps a fresh process tree with CRIU (testdata/gen.sh) and
// checks the image set and the decoders against go-criu's crit. It needs
// root, criu and gcc (under CI=true it fails without them), and is skipped
// in -short mode.
func TestLiveDump(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: dumps a process with CRIU")
	}
	testutil.RequireRoot(t)
	for _, tool := range []string{"criu", "gcc", "sh"} {
		testutil.RequireTool(t, tool)
	}
	dir := filepath.Join(t.TempDir(), "dump")
	out, err := exec.Command("sh", "testdata/gen.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("testdata/gen.sh: %v\n%s", err, out)
	}
	files := loadDir(t, dir)
	if err := CheckImages(files, nil).Err(); err != nil {
		t.Fatalf("CheckImages(live dump) = %v, want no problem", err)
	}
	compareWithCrit(t, files, func(name string) critImage {
		return critDecode(t, filepath.Join(dir, name))
	})
}
