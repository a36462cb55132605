package criuimg

import (
	"fmt"
	"sort"
	"strconv"
)

// Stale is an image of an image directory that the dump does not lead
// to: CRIU never reads it on restore. Podman checkpoints a container into
// the same directory every time, and CRIU overwrites the images of the
// tasks it dumps but deletes none, so after a task has exited its images
// of an earlier dump stay behind.
type Stale struct {
	// File is the image's file name, such as "pagemap-11.img".
	File string
	// Reason says why the dump does not lead to it, such as "pid 11 is
	// not in pstree.img".
	Reason string
}

// String returns "<file>: <reason>".
func (s Stale) String() string { return s.File + ": " + s.Reason }

// Per-task images, by how their number is chosen (criu/image-desc.c):
// per thread (the tid), per task (the pid), and fdinfo (the task's
// files_id with fdinfo_per_id, else its pid).
var (
	perThread = map[string]bool{"core": true, "creds": true, "signal-p": true}
	perTask   = map[string]bool{"mm": true, "pagemap": true, "ids": true, "fs": true, "sigacts": true,
		"itimers": true, "posix-timers": true, "rlimit": true, "signal-s": true, "vmas": true}
)

// FindStale returns the images of files (keyed by base name, as for
// [CheckImages]) that the dump does not lead to, sorted by name. It
// judges only the images CRIU names after a task or what a task
// references: the per-thread and per-task images (core, mm, pagemap,
// ids, fs, ... -<pid>.img) of a pid that pstree.img does not list (a
// zombie's other than its core too), fdinfo-<id>.img of no listed task,
// and pages-<id>.img that no pagemap of the dump names (a pages image
// named by a live and a stale pagemap belongs to the live one). Whatever
// it cannot decide is live: nothing is stale without a readable
// pstree.img, fdinfo images are judged only with a readable inventory
// and the ids of every live task, and pages images only when every live
// pagemap names its pages_id. Unreadable images are [CheckImages]'s to
// report; FindStale reports nothing.
func FindStale(files map[string]Info) []Stale {
	tasks, ok := staleTasks(files)
	if !ok {
		return nil
	}
	var out []Stale
	for name := range files {
		if r := tasks.judge(name); r != "" {
			out = append(out, Stale{File: name, Reason: r})
		}
	}
	if live, ok := tasks.livePages(files, out); ok {
		for name := range files {
			if p, kind, n := lookupName(name); kind == KindRaw && p == raw && n >= 0 && name == "pages-"+strconv.FormatInt(n, 10)+".img" && !live[name] {
				out = append(out, Stale{File: name, Reason: "no pagemap of the dump names it"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// livePages returns the pages images the live pagemaps name (every
// pagemap of files not in stale); ok is false when one of them is
// unreadable or a live task has none, so its pages_id is unknown.
func (t taskSet) livePages(files map[string]Info, stale []Stale) (map[string]bool, bool) {
	isStale := map[string]bool{}
	for _, s := range stale {
		isStale[s.File] = true
	}
	for pid := range t.pids {
		if _, ok := files[fmt.Sprintf("pagemap-%d.img", pid)]; !ok && !t.zombies[pid] {
			return nil, false
		}
	}
	live := map[string]bool{}
	for name, fi := range files {
		if m, kind := ExpectedMagic(name); kind != KindProto || m != "PAGEMAP" || isStale[name] {
			continue
		}
		head, _, err := ReadPagemap(name, full(fi))
		if err != nil {
			return nil, false
		}
		live["pages-"+strconv.FormatUint(uint64(head.PagesID), 10)+".img"] = true
	}
	return live, true
}

// full returns fi's data when it holds the whole image, else nil (which
// no Read function accepts).
func full(fi Info) []byte {
	if int64(len(fi.Data)) != fi.Size {
		return nil
	}
	return fi.Data
}

// taskSet is what FindStale knows of the dump's tasks.
type taskSet struct {
	pids    map[uint32]bool // every task of pstree.img
	zombies map[uint32]bool // tasks whose core says TaskDead
	tids    map[uint32]bool // threads of the tasks
	files   map[uint32]bool // files_id of the live tasks; nil: fdinfo not judged
	perID   bool            // fdinfo images are named by files_id
}

// staleTasks reads pstree.img and what it calls for; ok is false when
// pstree.img is missing or unreadable.
func staleTasks(files map[string]Info) (taskSet, bool) {
	tasks, err := ReadPstree(full(files["pstree.img"]))
	if err != nil || len(CheckPstree(tasks)) > 0 {
		return taskSet{}, false
	}
	t := taskSet{pids: map[uint32]bool{}, zombies: map[uint32]bool{}, tids: map[uint32]bool{}, files: map[uint32]bool{}}
	inv, err := ReadInventory(full(files["inventory.img"]))
	if err != nil {
		t.files = nil
	}
	t.perID = inv.FdinfoPerID
	for _, task := range tasks {
		t.pids[task.PID] = true
		for _, tid := range task.Threads {
			t.tids[tid] = true
		}
		pid := strconv.FormatUint(uint64(task.PID), 10)
		core, err := ReadCore("core-"+pid+".img", full(files["core-"+pid+".img"]))
		if err == nil && core.TC != nil && core.TC.TaskState == TaskDead {
			t.zombies[task.PID] = true
			continue
		}
		ids := core.IDs
		if err != nil || ids == nil {
			v, err := ReadIDs("ids-"+pid+".img", full(files["ids-"+pid+".img"]))
			if err == nil {
				ids = &v
			}
		}
		switch {
		case t.files == nil:
		case ids == nil:
			t.files = nil // a live task whose files_id is unknown
		case t.perID:
			t.files[ids.FilesID] = true
		default:
			t.files[task.PID] = true
		}
	}
	return t, true
}

// judge returns why the dump does not lead to the image name, or "" if it
// does or cannot tell.
func (t taskSet) judge(name string) string {
	prefix, n, ok := numbered(name)
	if !ok {
		return ""
	}
	id := uint32(n)
	switch {
	case perThread[prefix]:
		if !t.pids[id] && !t.tids[id] {
			return fmt.Sprintf("pid %d is not in pstree.img", n)
		}
	case perTask[prefix]:
		if !t.pids[id] {
			return fmt.Sprintf("pid %d is not in pstree.img", n)
		}
		if t.zombies[id] {
			return fmt.Sprintf("task %d is a zombie (CRIU reads only its core)", n)
		}
	case prefix == "fdinfo" && t.files != nil:
		if t.files[id] {
			return ""
		}
		if t.perID {
			return fmt.Sprintf("no live task of pstree.img has files id %d", n)
		}
		if !t.pids[id] {
			return fmt.Sprintf("pid %d is not in pstree.img", n)
		}
		return fmt.Sprintf("task %d is a zombie (CRIU reads only its core)", n)
	}
	return ""
}

// numbered splits a numbered image name "<prefix>-<n>.img" of a known
// prefix; n fits in 32 bits.
func numbered(name string) (prefix string, n int64, ok bool) {
	_, kind, n := lookupName(name)
	if kind != KindProto || n < 0 || n > 1<<32-1 {
		return "", 0, false
	}
	base := name[:len(name)-len(".img")]
	prefix = base[:len(base)-len(strconv.FormatInt(n, 10))-1]
	if base != prefix+"-"+strconv.FormatInt(n, 10) {
		return "", 0, false // leading zeros: not a name CRIU writes
	}
	return prefix, n, true
}
