package criuimg

import (
	"fmt"
	"strconv"
)

// Field numbers below come from go-criu v8.4.0's crit/images/*.proto, which
// are CRIU 4.x's images/*.proto. Fields not listed are skipped; required
// fields of the listed messages must be present, as protobuf-c (CRIU) and
// crit require.

// MaxRepeated caps the values of one repeated field that a decoder keeps
// (pstree threads, mm VMAs, plugins): 1 Mi. The slices grow only with
// values actually present in the entry, so this bounds work, not trust.
const MaxRepeated = 1 << 20

// Pagemap entry flags (criu/include/pagemap.h).
const (
	// PEParent marks pages stored in the parent image set.
	PEParent uint32 = 1
	// PELazy marks pages that may be restored lazily (by a page server).
	PELazy uint32 = 2
	// PEPresent marks pages stored in this image set's pages-<id>.img.
	PEPresent uint32 = 4
)

// Task states in core_entry.tc.task_state (compel task-state.h; CRIU
// writes TaskDead for zombies).
const (
	// TaskAlive is a running task; it has mm, pagemap and ids images.
	TaskAlive uint32 = 1
	// TaskDead is a zombie; it has only its core image.
	TaskDead uint32 = 2
	// TaskStopped is a stopped task; it has the images of an alive one.
	TaskStopped uint32 = 3
)

// Machine types of core_entry.mtype.
const (
	MarchUnknown     uint32 = 0 // MarchUnknown is core_entry.UNKNOWN.
	MarchX86_64      uint32 = 1 // MarchX86_64 is core_entry.X86_64.
	MarchARM         uint32 = 2 // MarchARM is core_entry.ARM.
	MarchAARCH64     uint32 = 3 // MarchAARCH64 is core_entry.AARCH64.
	MarchPPC64       uint32 = 4 // MarchPPC64 is core_entry.PPC64.
	MarchS390        uint32 = 5 // MarchS390 is core_entry.S390.
	MarchMIPS        uint32 = 6 // MarchMIPS is core_entry.MIPS.
	MarchLOONGARCH64 uint32 = 7 // MarchLOONGARCH64 is core_entry.LOONGARCH64.
	MarchRISCV64     uint32 = 8 // MarchRISCV64 is core_entry.RISCV64.
)

// File descriptor types of fdinfo_entry.type and file_entry.type (fd_types).
const (
	FdUnd       uint32 = 0  // FdUnd is fd_types.UND.
	FdReg       uint32 = 1  // FdReg is fd_types.REG, a regular file.
	FdPipe      uint32 = 2  // FdPipe is fd_types.PIPE.
	FdFifo      uint32 = 3  // FdFifo is fd_types.FIFO.
	FdInetSk    uint32 = 4  // FdInetSk is fd_types.INETSK.
	FdUnixSk    uint32 = 5  // FdUnixSk is fd_types.UNIXSK.
	FdEventfd   uint32 = 6  // FdEventfd is fd_types.EVENTFD.
	FdEventpoll uint32 = 7  // FdEventpoll is fd_types.EVENTPOLL.
	FdInotify   uint32 = 8  // FdInotify is fd_types.INOTIFY.
	FdSignalfd  uint32 = 9  // FdSignalfd is fd_types.SIGNALFD.
	FdPacketSk  uint32 = 10 // FdPacketSk is fd_types.PACKETSK.
	FdTTY       uint32 = 11 // FdTTY is fd_types.TTY.
	FdFanotify  uint32 = 12 // FdFanotify is fd_types.FANOTIFY.
	FdNetlinkSk uint32 = 13 // FdNetlinkSk is fd_types.NETLINKSK.
	FdNs        uint32 = 14 // FdNs is fd_types.NS.
	FdTun       uint32 = 15 // FdTun is fd_types.TUNF.
	FdExt       uint32 = 16 // FdExt is fd_types.EXT.
	FdTimerfd   uint32 = 17 // FdTimerfd is fd_types.TIMERFD.
	FdMemfd     uint32 = 18 // FdMemfd is fd_types.MEMFD.
	FdBpfmap    uint32 = 19 // FdBpfmap is fd_types.BPFMAP.
	FdPidfd     uint32 = 20 // FdPidfd is fd_types.PIDFD.
)

// TaskKobjIDs is a task_kobj_ids_entry: the ids of the kernel objects a
// task uses (ids-<pid>.img, inventory's root_ids).
type TaskKobjIDs struct {
	VMID       uint32 // VMID is field 1, vm_id.
	FilesID    uint32 // FilesID is field 2, files_id (names fdinfo-<id>.img).
	FsID       uint32 // FsID is field 3, fs_id.
	SighandID  uint32 // SighandID is field 4, sighand_id.
	PidNsID    uint32 // PidNsID is field 5, pid_ns_id.
	NetNsID    uint32 // NetNsID is field 6, net_ns_id.
	IpcNsID    uint32 // IpcNsID is field 7, ipc_ns_id.
	UtsNsID    uint32 // UtsNsID is field 8, uts_ns_id.
	MntNsID    uint32 // MntNsID is field 9, mnt_ns_id.
	UserNsID   uint32 // UserNsID is field 10, user_ns_id.
	CgroupNsID uint32 // CgroupNsID is field 11, cgroup_ns_id.
	TimeNsID   uint32 // TimeNsID is field 12, time_ns_id.
}

// DecodeTaskKobjIDs decodes a task_kobj_ids_entry.
func DecodeTaskKobjIDs(b []byte) (TaskKobjIDs, error) {
	var e TaskKobjIDs
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		var p *uint32
		switch num {
		case 1:
			p = &e.VMID
		case 2:
			p = &e.FilesID
		case 3:
			p = &e.FsID
		case 4:
			p = &e.SighandID
		case 5:
			p = &e.PidNsID
		case 6:
			p = &e.NetNsID
		case 7:
			p = &e.IpcNsID
		case 8:
			p = &e.UtsNsID
		case 9:
			p = &e.MntNsID
		case 10:
			p = &e.UserNsID
		case 11:
			p = &e.CgroupNsID
		case 12:
			p = &e.TimeNsID
		}
		if p == nil {
			err = d.skip(wt)
		} else {
			*p, err = d.u32(num, wt)
			req.set(num)
		}
		if err != nil {
			return e, err
		}
	}
	return e, req.check("task_kobj_ids_entry", 1, 2, 3, 4)
}

// Inventory is an inventory_entry (inventory.img).
type Inventory struct {
	ImgVersion        uint32       // ImgVersion is field 1, img_version (required).
	FdinfoPerID       bool         // FdinfoPerID is field 2: fdinfo images are named by files_id.
	RootIDs           *TaskKobjIDs // RootIDs is field 3, root_ids; nil if absent.
	NsPerID           bool         // NsPerID is field 4, ns_per_id.
	RootCgSet         uint32       // RootCgSet is field 5, root_cg_set.
	LSMType           uint32       // LSMType is field 6: 0 none, 1 SELinux, 2 AppArmor.
	DumpUptime        uint64       // DumpUptime is field 8, dump_uptime.
	PreDumpMode       uint32       // PreDumpMode is field 9, pre_dump_mode.
	HasPreDumpMode    bool         // HasPreDumpMode reports whether field 9 was present.
	TCPClose          bool         // TCPClose is field 10, tcp_close.
	NetworkLockMethod uint32       // NetworkLockMethod is field 11.
	Plugins           []string     // Plugins is field 12, plugins_entry, and its field 12, plugins.
	DumpCriuRunID     string       // DumpCriuRunID is field 13, dump_criu_run_id.
	AllowUprobes      bool         // AllowUprobes is field 14, allow_uprobes.
}

// DecodeInventory decodes an inventory_entry.
func DecodeInventory(b []byte) (Inventory, error) {
	var e Inventory
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.ImgVersion, err = d.u32(num, wt)
		case 2:
			e.FdinfoPerID, err = d.boolean(num, wt)
		case 3:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				// proto2 would merge repeated occurrences of a message
				// field; CRIU writes one, so the last one wins here.
				var ids TaskKobjIDs
				ids, err = DecodeTaskKobjIDs(m)
				e.RootIDs = &ids
			}
		case 4:
			e.NsPerID, err = d.boolean(num, wt)
		case 5:
			e.RootCgSet, err = d.u32(num, wt)
		case 6:
			e.LSMType, err = d.u32(num, wt)
		case 8:
			e.DumpUptime, err = d.u64(num, wt)
		case 9:
			e.PreDumpMode, err = d.u32(num, wt)
			e.HasPreDumpMode = true
		case 10:
			e.TCPClose, err = d.boolean(num, wt)
		case 11:
			e.NetworkLockMethod, err = d.u32(num, wt)
		case 12:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				e.Plugins, err = decodePlugins(e.Plugins, m)
			}
		case 13:
			var s []byte
			s, err = d.message(num, wt)
			e.DumpCriuRunID = string(s)
		case 14:
			e.AllowUprobes, err = d.boolean(num, wt)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode inventory_entry field %d: %w", num, err)
		}
	}
	return e, req.check("inventory_entry", 1)
}

// decodePlugins appends the plugins (field 12) of a plugins_entry.
func decodePlugins(dst []string, b []byte) ([]string, error) {
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return dst, err
		}
		if num != 12 {
			if err := d.skip(wt); err != nil {
				return dst, err
			}
			continue
		}
		s, err := d.message(num, wt)
		if err != nil {
			return dst, err
		}
		if len(dst) >= MaxRepeated {
			return dst, fmt.Errorf("decode plugins: more than %d: %w", MaxRepeated, ErrTooLarge)
		}
		dst = append(dst, string(s))
	}
	return dst, nil
}

// PstreeEntry is a pstree_entry (pstree.img), one per task.
type PstreeEntry struct {
	PID     uint32   // PID is field 1, pid.
	PPID    uint32   // PPID is field 2, ppid (0 for the root task).
	PGID    uint32   // PGID is field 3, pgid.
	SID     uint32   // SID is field 4, sid.
	Threads []uint32 // Threads is field 5, threads, packed or not.
}

// DecodePstreeEntry decodes a pstree_entry.
func DecodePstreeEntry(b []byte) (PstreeEntry, error) {
	var e PstreeEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.PID, err = d.u32(num, wt)
		case 2:
			e.PPID, err = d.u32(num, wt)
		case 3:
			e.PGID, err = d.u32(num, wt)
		case 4:
			e.SID, err = d.u32(num, wt)
		case 5:
			e.Threads, err = d.repeatedU32(e.Threads, num, wt, MaxRepeated)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode pstree_entry field %d: %w", num, err)
		}
	}
	return e, req.check("pstree_entry", 1, 2, 3, 4)
}

// PagemapHead is a pagemap_head, the first entry of a pagemap image.
type PagemapHead struct {
	// PagesID is field 1, pages_id: the pages are in pages-<PagesID>.img.
	PagesID uint32
}

// DecodePagemapHead decodes a pagemap_head.
func DecodePagemapHead(b []byte) (PagemapHead, error) {
	var e PagemapHead
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		if num == 1 {
			req.set(num)
			e.PagesID, err = d.u32(num, wt)
		} else {
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode pagemap_head field %d: %w", num, err)
		}
	}
	return e, req.check("pagemap_head", 1)
}

// PagemapEntry is a pagemap_entry, normalized as CRIU's
// init_compat_pagemap_entry does: NrPages falls back to compat_nr_pages,
// and Flags is PEParent for old images with in_parent set, PEPresent for
// old images with neither in_parent nor flags.
type PagemapEntry struct {
	Vaddr    uint64 // Vaddr is field 1, vaddr: the first page's address.
	NrPages  uint64 // NrPages is field 5, nr_pages, or field 2, compat_nr_pages.
	Flags    uint32 // Flags is field 4, flags (PE*), normalized.
	InParent bool   // InParent is field 3, in_parent, as stored (old images).
	HasFlags bool   // HasFlags reports whether field 4 was present.
}

// Present reports whether the pages are stored in this image set's pages
// file.
func (e PagemapEntry) Present() bool { return e.Flags&PEPresent != 0 }

// Parent reports whether the pages are stored in the parent image set.
func (e PagemapEntry) Parent() bool { return e.Flags&PEParent != 0 }

// Lazy reports whether the pages may be restored lazily.
func (e PagemapEntry) Lazy() bool { return e.Flags&PELazy != 0 }

// DecodePagemapEntry decodes a pagemap_entry.
func DecodePagemapEntry(b []byte) (PagemapEntry, error) {
	var e PagemapEntry
	var req required
	var compat uint32
	hasNr := false
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.Vaddr, err = d.u64(num, wt)
		case 2:
			compat, err = d.u32(num, wt)
		case 3:
			e.InParent, err = d.boolean(num, wt)
		case 4:
			e.Flags, err = d.u32(num, wt)
			e.HasFlags = true
		case 5:
			e.NrPages, err = d.u64(num, wt)
			hasNr = true
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode pagemap_entry field %d: %w", num, err)
		}
	}
	if err := req.check("pagemap_entry", 1, 2); err != nil {
		return e, err
	}
	if e.InParent {
		e.Flags |= PEParent
	} else if !e.HasFlags {
		e.Flags = PEPresent
	}
	if !hasNr {
		e.NrPages = uint64(compat)
	}
	return e, nil
}

// TaskCore is the part of a task_core_entry (core_entry.tc) the package
// decodes. Only the thread-group leader's core image has it.
type TaskCore struct {
	TaskState   uint32 // TaskState is field 1, task_state: TaskAlive, TaskDead or TaskStopped.
	ExitCode    uint32 // ExitCode is field 2, exit_code (wait status of a zombie).
	Personality uint32 // Personality is field 3, personality.
	Flags       uint32 // Flags is field 4, flags (PF_*).
	BlkSigset   uint64 // BlkSigset is field 5, blk_sigset.
	Comm        string // Comm is field 6, comm.
	StopSigno   uint32 // StopSigno is field 21, stop_signo.
}

// ThreadCore is the part of a thread_core_entry (core_entry.thread_core)
// the package decodes.
type ThreadCore struct {
	FutexRla    uint64 // FutexRla is field 1, futex_rla.
	FutexRlaLen uint32 // FutexRlaLen is field 2, futex_rla_len.
	Comm        string // Comm is field 13, the thread's comm.
}

// CoreEntry is the part of a core_entry (core-<tid>.img) the package
// decodes; architecture-specific thread info is skipped.
type CoreEntry struct {
	Mtype      uint32       // Mtype is field 1, mtype (March*).
	TC         *TaskCore    // TC is field 3, tc; nil in non-leader threads.
	IDs        *TaskKobjIDs // IDs is field 4, ids (old images); nil if absent.
	ThreadCore *ThreadCore  // ThreadCore is field 5, thread_core; nil if absent.
}

// DecodeCoreEntry decodes a core_entry.
func DecodeCoreEntry(b []byte) (CoreEntry, error) {
	var e CoreEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.Mtype, err = d.u32(num, wt)
		case 3:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				var tc TaskCore
				tc, err = decodeTaskCore(m)
				e.TC = &tc
			}
		case 4:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				var ids TaskKobjIDs
				ids, err = DecodeTaskKobjIDs(m)
				e.IDs = &ids
			}
		case 5:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				var th ThreadCore
				th, err = decodeThreadCore(m)
				e.ThreadCore = &th
			}
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode core_entry field %d: %w", num, err)
		}
	}
	return e, req.check("core_entry", 1)
}

func decodeTaskCore(b []byte) (TaskCore, error) {
	var e TaskCore
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.TaskState, err = d.u32(num, wt)
		case 2:
			e.ExitCode, err = d.u32(num, wt)
		case 3:
			e.Personality, err = d.u32(num, wt)
		case 4:
			e.Flags, err = d.u32(num, wt)
		case 5:
			e.BlkSigset, err = d.u64(num, wt)
		case 6:
			var s []byte
			s, err = d.message(num, wt)
			e.Comm = string(s)
		case 21:
			e.StopSigno, err = d.u32(num, wt)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode task_core_entry field %d: %w", num, err)
		}
	}
	return e, req.check("task_core_entry", 1, 2, 3, 4, 5, 6)
}

func decodeThreadCore(b []byte) (ThreadCore, error) {
	var e ThreadCore
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.FutexRla, err = d.u64(num, wt)
		case 2:
			e.FutexRlaLen, err = d.u32(num, wt)
		case 13:
			var s []byte
			s, err = d.message(num, wt)
			e.Comm = string(s)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode thread_core_entry field %d: %w", num, err)
		}
	}
	return e, req.check("thread_core_entry", 1, 2)
}

// VmaEntry is a vma_entry, one memory mapping of an mm_entry.
type VmaEntry struct {
	Start   uint64 // Start is field 1, start.
	End     uint64 // End is field 2, end (exclusive).
	Pgoff   uint64 // Pgoff is field 3, pgoff.
	Shmid   uint64 // Shmid is field 4, shmid.
	Prot    uint32 // Prot is field 5, prot (PROT_*).
	Flags   uint32 // Flags is field 6, flags (MAP_*).
	Status  uint32 // Status is field 7, status (CRIU's VMA_* bits).
	Fd      int64  // Fd is field 8, fd (sint64, unused, -1).
	Madv    uint64 // Madv is field 9, madv.
	Fdflags uint32 // Fdflags is field 10, fdflags.
}

// DecodeVmaEntry decodes a vma_entry.
func DecodeVmaEntry(b []byte) (VmaEntry, error) {
	var e VmaEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.Start, err = d.u64(num, wt)
		case 2:
			e.End, err = d.u64(num, wt)
		case 3:
			e.Pgoff, err = d.u64(num, wt)
		case 4:
			e.Shmid, err = d.u64(num, wt)
		case 5:
			e.Prot, err = d.u32(num, wt)
		case 6:
			e.Flags, err = d.u32(num, wt)
		case 7:
			e.Status, err = d.u32(num, wt)
		case 8:
			e.Fd, err = d.sint64(num, wt)
		case 9:
			e.Madv, err = d.u64(num, wt)
		case 10:
			e.Fdflags, err = d.u32(num, wt)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode vma_entry field %d: %w", num, err)
		}
	}
	return e, req.check("vma_entry", 1, 2, 3, 4, 5, 6, 7, 8)
}

// MmEntry is the part of an mm_entry (mm-<pid>.img) the package decodes.
type MmEntry struct {
	StartCode  uint64     // StartCode is field 1, mm_start_code.
	EndCode    uint64     // EndCode is field 2, mm_end_code.
	StartData  uint64     // StartData is field 3, mm_start_data.
	EndData    uint64     // EndData is field 4, mm_end_data.
	StartStack uint64     // StartStack is field 5, mm_start_stack.
	StartBrk   uint64     // StartBrk is field 6, mm_start_brk.
	Brk        uint64     // Brk is field 7, mm_brk.
	ArgStart   uint64     // ArgStart is field 8, mm_arg_start.
	ArgEnd     uint64     // ArgEnd is field 9, mm_arg_end.
	EnvStart   uint64     // EnvStart is field 10, mm_env_start.
	EnvEnd     uint64     // EnvEnd is field 11, mm_env_end.
	ExeFileID  uint32     // ExeFileID is field 12, exe_file_id (a files.img id).
	NAuxv      int        // NAuxv counts field 13, mm_saved_auxv.
	Vmas       []VmaEntry // Vmas is field 14, vmas, in image order.
	Dumpable   int32      // Dumpable is field 15, dumpable.
	NAios      int        // NAios counts field 16, aios.
}

// DecodeMmEntry decodes an mm_entry.
func DecodeMmEntry(b []byte) (MmEntry, error) {
	var e MmEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		var p *uint64
		switch num {
		case 1:
			p = &e.StartCode
		case 2:
			p = &e.EndCode
		case 3:
			p = &e.StartData
		case 4:
			p = &e.EndData
		case 5:
			p = &e.StartStack
		case 6:
			p = &e.StartBrk
		case 7:
			p = &e.Brk
		case 8:
			p = &e.ArgStart
		case 9:
			p = &e.ArgEnd
		case 10:
			p = &e.EnvStart
		case 11:
			p = &e.EnvEnd
		case 12:
			e.ExeFileID, err = d.u32(num, wt)
		case 13:
			var n int
			n, err = d.countRepeated(num, wt)
			e.NAuxv += n
		case 14:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				if len(e.Vmas) >= MaxRepeated {
					err = fmt.Errorf("more than %d VMAs: %w", MaxRepeated, ErrTooLarge)
					break
				}
				var v VmaEntry
				v, err = DecodeVmaEntry(m)
				e.Vmas = append(e.Vmas, v)
			}
		case 15:
			e.Dumpable, err = d.i32(num, wt)
		case 16:
			_, err = d.message(num, wt)
			e.NAios++
		default:
			err = d.skip(wt)
		}
		if p != nil {
			*p, err = d.u64(num, wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode mm_entry field %d: %w", num, err)
		}
	}
	return e, req.check("mm_entry", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
}

// FdinfoEntry is an fdinfo_entry (fdinfo-<id>.img): one open descriptor.
type FdinfoEntry struct {
	ID    uint32 // ID is field 1, id: the file_entry id in files.img.
	Flags uint32 // Flags is field 2, flags (FD_CLOEXEC).
	Type  uint32 // Type is field 3, type (Fd*).
	Fd    uint32 // Fd is field 4, fd: the descriptor number.
}

// DecodeFdinfoEntry decodes an fdinfo_entry.
func DecodeFdinfoEntry(b []byte) (FdinfoEntry, error) {
	var e FdinfoEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.ID, err = d.u32(num, wt)
		case 2:
			e.Flags, err = d.u32(num, wt)
		case 3:
			e.Type, err = d.u32(num, wt)
		case 4:
			e.Fd, err = d.u32(num, wt)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode fdinfo_entry field %d: %w", num, err)
		}
	}
	return e, req.check("fdinfo_entry", 1, 2, 3, 4)
}

// RegFile is the part of a reg_file_entry (file_entry.reg) the package
// decodes.
type RegFile struct {
	ID    uint32 // ID is field 1, id.
	Flags uint32 // Flags is field 2, flags (open flags).
	Pos   uint64 // Pos is field 3, pos.
	Name  string // Name is field 6, name: the path, relative to the mount.
	MntID int32  // MntID is field 7, mnt_id (sint32, -1 if absent).
	Size  uint64 // Size is field 8, size.
	Mode  uint32 // Mode is field 10, mode.
}

// FileEntry is the part of a file_entry (files.img) the package decodes.
type FileEntry struct {
	Type uint32   // Type is field 1, type (Fd*).
	ID   uint32   // ID is field 2, id.
	Reg  *RegFile // Reg is field 3, reg; nil for other types.
}

// DecodeFileEntry decodes a file_entry.
func DecodeFileEntry(b []byte) (FileEntry, error) {
	var e FileEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.Type, err = d.u32(num, wt)
		case 2:
			e.ID, err = d.u32(num, wt)
		case 3:
			var m []byte
			if m, err = d.message(num, wt); err == nil {
				var r RegFile
				r, err = decodeRegFile(m)
				e.Reg = &r
			}
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode file_entry field %d: %w", num, err)
		}
	}
	return e, req.check("file_entry", 1, 2)
}

func decodeRegFile(b []byte) (RegFile, error) {
	e := RegFile{MntID: -1}
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.ID, err = d.u32(num, wt)
		case 2:
			e.Flags, err = d.u32(num, wt)
		case 3:
			e.Pos, err = d.u64(num, wt)
		case 6:
			var s []byte
			s, err = d.message(num, wt)
			e.Name = string(s)
		case 7:
			e.MntID, err = d.sint32(num, wt)
		case 8:
			e.Size, err = d.u64(num, wt)
		case 10:
			e.Mode, err = d.u32(num, wt)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode reg_file_entry field %d: %w", num, err)
		}
	}
	return e, req.check("reg_file_entry", 1, 2, 3, 5, 6)
}

// Filesystem types of mnt_entry.fstype (images/mnt.proto enum fstype).
const (
	FsUnsupported uint32 = 0  // FsUnsupported is fstype.UNSUPPORTED: a filesystem CRIU cannot mount itself.
	FsProc        uint32 = 1  // FsProc is fstype.PROC.
	FsSysfs       uint32 = 2  // FsSysfs is fstype.SYSFS.
	FsDevtmpfs    uint32 = 3  // FsDevtmpfs is fstype.DEVTMPFS: the host's device tree.
	FsBinfmtMisc  uint32 = 4  // FsBinfmtMisc is fstype.BINFMT_MISC.
	FsTmpfs       uint32 = 5  // FsTmpfs is fstype.TMPFS.
	FsDevpts      uint32 = 6  // FsDevpts is fstype.DEVPTS.
	FsSimfs       uint32 = 7  // FsSimfs is fstype.SIMFS.
	FsPstore      uint32 = 8  // FsPstore is fstype.PSTORE.
	FsSecurityfs  uint32 = 9  // FsSecurityfs is fstype.SECURITYFS.
	FsFusectl     uint32 = 10 // FsFusectl is fstype.FUSECTL.
	FsDebugfs     uint32 = 11 // FsDebugfs is fstype.DEBUGFS.
	FsCgroup      uint32 = 12 // FsCgroup is fstype.CGROUP (cgroup v1).
	FsAufs        uint32 = 13 // FsAufs is fstype.AUFS.
	FsMqueue      uint32 = 14 // FsMqueue is fstype.MQUEUE.
	FsFuse        uint32 = 15 // FsFuse is fstype.FUSE.
	FsAuto        uint32 = 16 // FsAuto is fstype.AUTO: mounted by the name in fsname.
	FsOverlay     uint32 = 17 // FsOverlay is fstype.OVERLAYFS.
	FsAutofs      uint32 = 18 // FsAutofs is fstype.AUTOFS.
	FsTracefs     uint32 = 19 // FsTracefs is fstype.TRACEFS.
	FsCgroup2     uint32 = 23 // FsCgroup2 is fstype.CGROUP2.
)

// fsNames are the kernel's names of the fstype values.
var fsNames = map[uint32]string{
	FsUnsupported: "unsupported", FsProc: "proc", FsSysfs: "sysfs", FsDevtmpfs: "devtmpfs",
	FsBinfmtMisc: "binfmt_misc", FsTmpfs: "tmpfs", FsDevpts: "devpts", FsSimfs: "simfs",
	FsPstore: "pstore", FsSecurityfs: "securityfs", FsFusectl: "fusectl", FsDebugfs: "debugfs",
	FsCgroup: "cgroup", FsAufs: "aufs", FsMqueue: "mqueue", FsFuse: "fuse", FsAuto: "auto",
	FsOverlay: "overlay", FsAutofs: "autofs", FsTracefs: "tracefs", FsCgroup2: "cgroup2",
}

// FsName returns the kernel's name of an mnt_entry fstype value
// ("tmpfs", "overlay"), or "fstype-N" for a value CRIU does not define.
func FsName(fstype uint32) string {
	if n, ok := fsNames[fstype]; ok {
		return n
	}
	return "fstype-" + strconv.FormatUint(uint64(fstype), 10)
}

// MntEntry is an mnt_entry (mountpoints-<mnt ns id>.img): one mount of a
// mount namespace as CRIU restores it.
type MntEntry struct {
	Fstype          uint32 // Fstype is field 1, fstype (Fs*).
	MntID           uint32 // MntID is field 2, mnt_id.
	RootDev         uint32 // RootDev is field 3, root_dev: the superblock's device.
	ParentMntID     uint32 // ParentMntID is field 4, parent_mnt_id.
	Flags           uint32 // Flags is field 5, flags (MS_* of the mount).
	Root            string // Root is field 6, root: the path in its filesystem the mount shows.
	Mountpoint      string // Mountpoint is field 7, mountpoint, relative to the namespace's root.
	Source          string // Source is field 8, source.
	Options         string // Options is field 9, options (filesystem options, comma-separated).
	SharedID        uint32 // SharedID is field 10, shared_id (peer group).
	MasterID        uint32 // MasterID is field 11, master_id (peer group it receives from).
	WithPlugin      bool   // WithPlugin is field 12, with_plugin: restored by a CRIU plugin.
	ExtMount        bool   // ExtMount is field 13, ext_mount: external, keyed by Root (old images).
	Fsname          string // Fsname is field 14, fsname: the filesystem to mount for FsAuto.
	HasFsname       bool   // HasFsname reports whether field 14 was present.
	InternalSharing bool   // InternalSharing is field 15, internal_sharing.
	Deleted         bool   // Deleted is field 16, deleted: the mountpoint was deleted.
	SbFlags         uint32 // SbFlags is field 17, sb_flags (MS_* of the superblock).
	HasSbFlags      bool   // HasSbFlags reports whether field 17 was present.
	ExtKey          string // ExtKey is field 18, ext_key: the key of an external mount.
	HasExtKey       bool   // HasExtKey reports whether field 18 was present.
}

// External reports whether CRIU restores the mount from a path the
// restoring engine supplies (an external mount: ext_key, or ext_mount in
// old images), and returns its key.
func (e *MntEntry) External() (key string, ok bool) {
	switch {
	case e.HasExtKey:
		return e.ExtKey, true
	case e.ExtMount:
		return e.Root, true
	}
	return "", false
}

// DecodeMntEntry decodes an mnt_entry.
func DecodeMntEntry(b []byte) (MntEntry, error) {
	var e MntEntry
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		var s *string
		switch num {
		case 1:
			e.Fstype, err = d.u32(num, wt)
		case 2:
			e.MntID, err = d.u32(num, wt)
		case 3:
			e.RootDev, err = d.u32(num, wt)
		case 4:
			e.ParentMntID, err = d.u32(num, wt)
		case 5:
			e.Flags, err = d.u32(num, wt)
		case 6:
			s = &e.Root
		case 7:
			s = &e.Mountpoint
		case 8:
			s = &e.Source
		case 9:
			s = &e.Options
		case 10:
			e.SharedID, err = d.u32(num, wt)
		case 11:
			e.MasterID, err = d.u32(num, wt)
		case 12:
			e.WithPlugin, err = d.boolean(num, wt)
		case 13:
			e.ExtMount, err = d.boolean(num, wt)
		case 14:
			s, e.HasFsname = &e.Fsname, true
		case 15:
			e.InternalSharing, err = d.boolean(num, wt)
		case 16:
			e.Deleted, err = d.boolean(num, wt)
		case 17:
			e.SbFlags, err = d.u32(num, wt)
			e.HasSbFlags = true
		case 18:
			s, e.HasExtKey = &e.ExtKey, true
		default:
			err = d.skip(wt)
		}
		if s != nil {
			var v []byte
			v, err = d.message(num, wt)
			*s = string(v)
		}
		if err != nil {
			return e, fmt.Errorf("decode mnt_entry field %d: %w", num, err)
		}
	}
	return e, req.check("mnt_entry", 1, 2, 3, 4, 5, 6, 7, 8, 9)
}

// Remap types of remap_file_path_entry.remap_type.
const (
	RemapLinked uint32 = 0 // RemapLinked: the file is reopened through a link CRIU made (a files.img entry).
	RemapGhost  uint32 = 1 // RemapGhost: the file is recreated from ghost-file-<remap_id>.img.
	RemapProcfs uint32 = 2 // RemapProcfs: a /proc/<pid> directory of a dead task.
)

// remapGhostBit marks a ghost remap in the remap_id of old images
// (REMAP_GHOST in criu/files-reg.c).
const remapGhostBit = 1 << 31

// RemapFilePath is a remap_file_path_entry (remap-fpath.img): a file CRIU
// opens through another one because it was deleted or unlinked.
type RemapFilePath struct {
	OrigID    uint32 // OrigID is field 1, orig_id: the files.img id of the file.
	RemapID   uint32 // RemapID is field 2, remap_id, without the old ghost bit.
	RemapType uint32 // RemapType is field 3, remap_type (Remap*), or derived from the ghost bit.
}

// DecodeRemapFilePath decodes a remap_file_path_entry, normalized as CRIU
// does for old images: without remap_type, a set bit 31 of remap_id means
// a ghost file.
func DecodeRemapFilePath(b []byte) (RemapFilePath, error) {
	var e RemapFilePath
	var req required
	hasType := false
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.OrigID, err = d.u32(num, wt)
		case 2:
			e.RemapID, err = d.u32(num, wt)
		case 3:
			e.RemapType, err = d.u32(num, wt)
			hasType = true
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode remap_file_path_entry field %d: %w", num, err)
		}
	}
	if !hasType && e.RemapID&remapGhostBit != 0 {
		e.RemapType = RemapGhost
	}
	e.RemapID &^= remapGhostBit
	return e, req.check("remap_file_path_entry", 1, 2)
}

// GhostFile is the part of a ghost_file_entry (the first entry of
// ghost-file-<id>.img) the package decodes: a deleted file CRIU recreates.
type GhostFile struct {
	UID     uint32 // UID is field 1, uid.
	GID     uint32 // GID is field 2, gid.
	Mode    uint32 // Mode is field 3, mode (file type and permissions).
	Rdev    uint32 // Rdev is field 6, rdev: the device of a device node.
	Chunks  bool   // Chunks is field 9, chunks: contents stored in chunks.
	Size    uint64 // Size is field 10, size: the file's size.
	Symlink string // Symlink is field 11, symlnk_target.
}

// DecodeGhostFile decodes a ghost_file_entry.
func DecodeGhostFile(b []byte) (GhostFile, error) {
	var e GhostFile
	var req required
	d := decoder{b: b}
	for !d.done() {
		num, wt, err := d.key()
		if err != nil {
			return e, err
		}
		req.set(num)
		switch num {
		case 1:
			e.UID, err = d.u32(num, wt)
		case 2:
			e.GID, err = d.u32(num, wt)
		case 3:
			e.Mode, err = d.u32(num, wt)
		case 6:
			e.Rdev, err = d.u32(num, wt)
		case 9:
			e.Chunks, err = d.boolean(num, wt)
		case 10:
			e.Size, err = d.u64(num, wt)
		case 11:
			var s []byte
			s, err = d.message(num, wt)
			e.Symlink = string(s)
		default:
			err = d.skip(wt)
		}
		if err != nil {
			return e, fmt.Errorf("decode ghost_file_entry field %d: %w", num, err)
		}
	}
	return e, req.check("ghost_file_entry", 1, 2, 3)
}
