package criuimg

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"
)

// DefaultPageSize is the page size CheckImages assumes when
// [CheckOptions.PageSize] is 0: 4 KiB, as on amd64. arm64 and ppc64 hosts
// may use 16 KiB or 64 KiB pages; CRIU images record no page size, so the
// caller must know the dumping host's.
const DefaultPageSize = 4096

// imagesVersion is the only images version (inventory img_version) the
// package reads: CRTOOLS_IMAGES_V1_1, with a magic header in every image.
const imagesVersion = 2

// Report limits: a hostile image set could otherwise make CheckImages
// build one problem per pagemap entry or per task.
const (
	// MaxProblemsPerFile caps the problems reported for one file; one more
	// problem then says how many were left out.
	MaxProblemsPerFile = 20
	// MaxProblems caps the problems of one report; one more problem then
	// says that the rest were left out.
	MaxProblems = 1000
)

// Info describes one file of an image directory for [CheckImages].
type Info struct {
	// Size is the file's size in bytes.
	Size int64
	// Data holds the file's contents: all of them for the images
	// [NeedsContent] names, and at least the first 8 bytes (or the whole
	// file if shorter) of every other image with a magic. Data may be nil
	// for raw images (pages-<id>.img) and files that are not images.
	Data []byte
}

// CheckOptions tunes [CheckImages]. A nil *CheckOptions means the zero
// value.
type CheckOptions struct {
	// PageSize is the dumping host's page size, a power of two; 0 means
	// [DefaultPageSize].
	PageSize int64
	// HasParent reports that the image set has a parent image set (a
	// "parent" link), so pagemap entries may carry PEParent.
	HasParent bool
	// Mounts, when set, is the stricter mount policy of the engine that
	// restores the images (see [MountPolicy]); nil applies the default
	// mount rules only.
	Mounts *MountPolicy
	// Caps, when not zero, is the capability set the restoring engine
	// grants its containers: every live thread must record credentials
	// ([ReadCreds]) whose sets lie within it ([ErrPrivilege] otherwise).
	Caps uint64
	// Namespaces are the namespace kinds ([NsPID] ...) no task may share
	// with the CRIU that dumped it ([CheckNamespaces]); nil checks none.
	Namespaces []string
}

// Report lists the problems [CheckImages] found, sorted by file name, and
// the stale images it left unchecked.
type Report struct {
	// Problems holds one *Error per problem; each names its image file.
	Problems []*Error
	// Stale lists the images the dump does not lead to ([FindStale]),
	// sorted by file name: they are not checked, and are no problem.
	Stale []Stale
}

// Err returns nil if the report holds no problem, else an error joining
// all of them, one per line.
func (r *Report) Err() error {
	if r == nil || len(r.Problems) == 0 {
		return nil
	}
	errs := make([]error, len(r.Problems))
	for i, p := range r.Problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// NeedsContent reports whether [CheckImages] needs the full contents of
// the image called name: inventory.img, pstree.img, files.img,
// remap-fpath.img and the core, mm, ids, fdinfo, pagemap and mountpoints
// images. All of them are metadata, small next to the pages images.
func NeedsContent(name string) bool {
	return Needs(name) < 0
}

// Needs returns how much of the image called name [CheckImages] needs in
// [Info.Data]: -1 for all of it (the images [NeedsContent] names),
// [GhostHeadSize] bytes of a ghost file image, and 8 (its header) of any
// other; 0 for raw images and files that are not images. An image shorter
// than that is given whole.
func Needs(name string) int64 {
	m, kind := ExpectedMagic(name)
	if kind != KindProto {
		return 0
	}
	switch m {
	case "INVENTORY", "PSTREE", "FILES", "CORE", "MM", "IDS", "FDINFO", "PAGEMAP", "MNTS", "REMAP_FPATH":
		return -1
	case "GHOST_FILE":
		return GhostHeadSize
	}
	return 8
}

// checker accumulates problems for CheckImages.
type checker struct {
	files    map[string]Info
	pageSize uint64
	parent   bool
	problems []*Error
	perFile  map[string]int  // problems found per file, reported or not
	bad      map[string]bool // images already reported as unreadable

	filesLoaded bool
	fileIDs     map[uint32]bool // ids of files.img entries; nil if unreadable
	regFiles    map[uint32]bool // ids of its regular-file (REG) entries

	rootPID        uint32 // the root task (the first of pstree.img)
	rootMntNS      uint32 // its mount namespace id (names mountpoints-<id>.img)
	rootMntNSKnown bool
	mounts         *MountPolicy
	caps           uint64
	namespaces     []string
}

// fileSet returns the ids of the entries of files.img (loaded once), or nil
// if files.img is missing or unreadable (reported once, naming why).
func (c *checker) fileSet(why string) map[uint32]bool {
	if c.filesLoaded {
		return c.fileIDs
	}
	c.filesLoaded = true
	const name = "files.img"
	data, ok := c.content(name, why)
	if !ok {
		return nil
	}
	entries, err := ReadFiles(data)
	if c.failed(name, err) {
		return nil
	}
	c.fileIDs = make(map[uint32]bool, len(entries))
	c.regFiles = map[uint32]bool{}
	for _, e := range entries {
		if c.fileIDs[e.ID] {
			c.add(name, fmt.Errorf("check file %d: listed twice: %w", e.ID, ErrImage))
		}
		c.fileIDs[e.ID] = true
		if e.Reg != nil {
			c.regFiles[e.ID] = true
			if err := CheckFilePath(e.Reg.Name); err != nil {
				c.add(name, fmt.Errorf("check file %d: %w", e.ID, err))
			}
		}
	}
	return c.fileIDs
}

func (c *checker) add(file string, err error) {
	var fe *Error
	if !errors.As(err, &fe) {
		fe = &Error{File: file, Offset: -1, Err: err}
	}
	n := c.perFile[fe.File]
	c.perFile[fe.File] = n + 1
	switch {
	case len(c.problems) > MaxProblems:
		return
	case len(c.problems) == MaxProblems:
		fe = &Error{File: "", Offset: -1, Err: fmt.Errorf("check images: more than %d problems, rest left out: %w", MaxProblems, ErrImage)}
	case n >= MaxProblemsPerFile:
		return
	}
	c.problems = append(c.problems, fe)
}

// flushLeftOut adds, for each file with more than MaxProblemsPerFile
// problems, one problem counting those left out.
func (c *checker) flushLeftOut() {
	for file, n := range c.perFile {
		if n > MaxProblemsPerFile && len(c.problems) < MaxProblems {
			c.problems = append(c.problems, &Error{File: file, Offset: -1,
				Err: fmt.Errorf("check image: %d more problems left out: %w", n-MaxProblemsPerFile, ErrImage)})
		}
	}
}

// content returns the full contents of name, reporting a missing image
// (with why, when it is required) or one whose contents were not given.
func (c *checker) content(name, why string) ([]byte, bool) {
	if c.bad[name] {
		return nil, false
	}
	fi, ok := c.files[name]
	if !ok {
		if why != "" {
			c.add(name, fmt.Errorf("find image: %s: %w", why, ErrMissing))
		}
		c.bad[name] = true
		return nil, false
	}
	if int64(len(fi.Data)) != fi.Size {
		c.add(name, fmt.Errorf("read image: %d of %d bytes provided: %w", len(fi.Data), fi.Size, ErrMissing))
		c.bad[name] = true
		return nil, false
	}
	return fi.Data, true
}

// failed records err (if any) for name and reports whether there was one.
func (c *checker) failed(name string, err error) bool {
	if err == nil {
		return false
	}
	c.add(name, err)
	c.bad[name] = true
	return true
}

// CheckImages checks the consistency of one CRIU image set (one image
// directory, CRIU images v1.1) whose files are described by files, keyed
// by base name. It reports every problem it finds, never stopping at the
// first; see the package documentation for the list of checks. Files that
// are not CRIU images (dump.log, descriptors.json, "parent") are ignored,
// and so are the stale images [FindStale] finds: the report lists them.
func CheckImages(files map[string]Info, opts *CheckOptions) *Report {
	stale := FindStale(files)
	if len(stale) > 0 {
		live := make(map[string]Info, len(files))
		for name, fi := range files {
			live[name] = fi
		}
		for _, s := range stale {
			delete(live, s.File)
		}
		files = live
	}
	rep := checkImages(files, opts)
	rep.Stale = stale
	return rep
}

// checkImages is CheckImages on the images of the dump.
func checkImages(files map[string]Info, opts *CheckOptions) *Report {
	c := &checker{files: files, pageSize: DefaultPageSize, bad: map[string]bool{}, perFile: map[string]int{}}
	if opts != nil {
		c.parent = opts.HasParent
		c.mounts = opts.Mounts
		c.caps, c.namespaces = opts.Caps, opts.Namespaces
		if opts.PageSize != 0 {
			c.pageSize = uint64(opts.PageSize)
			if opts.PageSize < 0 || bits.OnesCount64(c.pageSize) != 1 {
				c.add("", fmt.Errorf("check page size %d: not a power of two: %w", opts.PageSize, ErrImage))
				return c.report()
			}
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)

	c.checkHeaders(names)
	inv, invOK := c.checkInventory()
	c.checkTasks(inv, invOK)
	c.checkPagemaps(names)
	c.checkRemaps(names)
	c.checkMountImages(names)
	return c.report()
}

func (c *checker) report() *Report {
	c.flushLeftOut()
	sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].File < c.problems[j].File })
	return &Report{Problems: c.problems}
}

// checkHeaders checks every image's magic and, for images whose contents
// are given, the entry framing.
func (c *checker) checkHeaders(names []string) {
	for _, name := range names {
		fi := c.files[name]
		_, kind := ExpectedMagic(name)
		if kind != KindProto {
			// Raw images have no header; unknown names are not CRIU
			// images, or images of a newer CRIU this package cannot judge.
			continue
		}
		if fi.Size < 0 {
			c.failed(name, fmt.Errorf("check size %d: %w", fi.Size, ErrImage))
			continue
		}
		head := fi.Data
		if int64(len(head)) < min(fi.Size, 8) {
			c.failed(name, fmt.Errorf("read magic: %d bytes provided: %w", len(head), ErrMissing))
			continue
		}
		if int64(len(head)) > fi.Size {
			c.failed(name, fmt.Errorf("read image: %d bytes provided, size %d: %w", len(head), fi.Size, ErrImage))
			continue
		}
		if _, err := Magic(name, head); err != nil {
			c.failed(name, fileError(name, 0, err))
			continue
		}
		if int64(len(head)) == fi.Size {
			if err := eachEntry(name, head, func(int, []byte) error { return nil }); err != nil {
				c.failed(name, err)
			}
		}
	}
}

func (c *checker) checkInventory() (Inventory, bool) {
	const name = "inventory.img"
	data, ok := c.content(name, "every image set has one")
	if !ok {
		return Inventory{}, false
	}
	inv, err := ReadInventory(data)
	if c.failed(name, err) {
		return inv, false
	}
	if inv.ImgVersion != imagesVersion {
		c.add(name, fmt.Errorf("check images version: %d, want %d: %w", inv.ImgVersion, imagesVersion, ErrImage))
	}
	return inv, true
}

// checkTasks checks pstree.img and the per-task images it calls for.
func (c *checker) checkTasks(inv Inventory, invOK bool) {
	const name = "pstree.img"
	data, ok := c.content(name, "every image set has one")
	if !ok {
		return
	}
	tasks, err := ReadPstree(data)
	if c.failed(name, err) {
		return
	}
	errs := CheckPstree(tasks)
	for _, err := range errs {
		c.add(name, err)
	}
	if len(tasks) == 0 || len(tasks) > MaxTasks {
		return
	}
	threads := 0
	for _, t := range tasks {
		threads += len(t.Threads)
	}
	if threads > MaxThreads {
		c.add(name, fmt.Errorf("read process tree: %d threads, more than %d: %w", threads, MaxThreads, ErrImage))
		return
	}
	c.rootPID = tasks[0].PID
	tids := map[uint32]uint32{}
	for _, t := range tasks {
		c.checkTask(t, tids, inv, invOK)
	}
}

// checkCreds checks the credentials recorded in the core image name
// against the capability set of CheckOptions.Caps.
func (c *checker) checkCreds(name string, data []byte) {
	if c.caps == 0 {
		return
	}
	cr, err := ReadCreds(name, data)
	switch {
	case err != nil:
		c.failed(name, err)
	case cr == nil:
		c.add(name, fmt.Errorf("check credentials: none recorded (CRIU would leave the thread its own): %w", ErrPrivilege))
	default:
		if err := cr.CheckCaps(c.caps); err != nil {
			c.add(name, err)
		}
	}
}

// checkTask checks the images of one task.
func (c *checker) checkTask(t PstreeEntry, tids map[uint32]uint32, inv Inventory, invOK bool) {
	pid := strconv.FormatUint(uint64(t.PID), 10)
	coreName := "core-" + pid + ".img"
	data, ok := c.content(coreName, "task "+pid+" is in pstree.img")
	if !ok {
		return
	}
	core, err := ReadCore(coreName, data)
	if c.failed(coreName, err) {
		return
	}
	c.checkCreds(coreName, data)
	if core.TC == nil {
		c.add(coreName, fmt.Errorf("check task %s: core of a leader lacks task core (tc): %w", pid, ErrImage))
		return
	}
	switch core.TC.TaskState {
	case TaskDead:
		// A zombie: CRIU writes its core image only, and its pstree
		// threads are not meaningful.
		return
	case TaskAlive, TaskStopped:
	default:
		c.add(coreName, fmt.Errorf("check task %s: task state %d: %w", pid, core.TC.TaskState, ErrImage))
		return
	}
	c.checkThreads(t, pid, tids)
	why := "task " + pid + " is alive"
	c.checkMm(pid, why)
	pmName := "pagemap-" + pid + ".img"
	if _, ok := c.files[pmName]; !ok {
		c.add(pmName, fmt.Errorf("find image: %s: %w", why, ErrMissing))
		c.bad[pmName] = true
	}
	ids := core.IDs
	if ids == nil {
		idsName := "ids-" + pid + ".img"
		if d, ok := c.content(idsName, why); ok {
			v, err := ReadIDs(idsName, d)
			if !c.failed(idsName, err) {
				ids = &v
			}
		}
	}
	if t.PID == c.rootPID && ids != nil {
		c.rootMntNS, c.rootMntNSKnown = ids.MntNsID, true
	}
	if invOK && ids != nil && len(c.namespaces) > 0 {
		if err := CheckNamespaces(inv, map[uint32]TaskKobjIDs{t.PID: *ids}, c.namespaces); err != nil {
			c.add("ids-"+pid+".img", err)
		}
	}
	if invOK && ids != nil {
		n := pid
		if inv.FdinfoPerID {
			n = strconv.FormatUint(uint64(ids.FilesID), 10)
		}
		fdName := "fdinfo-" + n + ".img"
		if d, ok := c.content(fdName, why); ok {
			fds, err := ReadFdinfo(fdName, d)
			if !c.failed(fdName, err) && len(fds) > 0 {
				if ids := c.fileSet(fdName + " lists descriptors"); ids != nil {
					for _, fd := range fds {
						if !ids[fd.ID] {
							c.add(fdName, fmt.Errorf("check fd %d: file %d not in files.img: %w", fd.Fd, fd.ID, ErrImage))
						}
					}
				}
			}
		}
	}
}

// checkThreads checks the threads of task t (pid) in pstree.img and their
// core images, recording each thread's task in tids.
func (c *checker) checkThreads(t PstreeEntry, pid string, tids map[uint32]uint32) {
	leader := false
	for _, tid := range t.Threads {
		if other, dup := tids[tid]; dup {
			c.add("pstree.img", fmt.Errorf("check thread %d of task %s: also a thread of task %d: %w", tid, pid, other, ErrImage))
			continue
		}
		tids[tid] = t.PID
		if tid == 0 || tid > MaxPID {
			c.add("pstree.img", fmt.Errorf("check thread %d of task %s: out of range 1-%d: %w", tid, pid, MaxPID, ErrImage))
			continue
		}
		if tid == t.PID {
			leader = true
			continue
		}
		name := "core-" + strconv.FormatUint(uint64(tid), 10) + ".img"
		if d, ok := c.content(name, "thread of task "+pid+" in pstree.img"); ok {
			_, err := ReadCore(name, d)
			if !c.failed(name, err) {
				c.checkCreds(name, d)
			}
		}
	}
	if !leader {
		c.add("pstree.img", fmt.Errorf("check task %s: its threads do not include it: %w", pid, ErrImage))
	}
}

// checkMm checks the mm image of task pid: its VMAs and executable.
func (c *checker) checkMm(pid, why string) {
	mmName := "mm-" + pid + ".img"
	if d, ok := c.content(mmName, why); ok {
		mm, err := ReadMm(mmName, d)
		if !c.failed(mmName, err) {
			c.checkVmas(mmName, mm.Vmas)
			if ids := c.fileSet(mmName + " names an executable"); ids != nil && !ids[mm.ExeFileID] {
				c.add(mmName, fmt.Errorf("check exe_file_id %d: not in files.img: %w", mm.ExeFileID, ErrImage))
			}
		}
	}
}

// pageSet is what the pagemaps say about one pages-<id>.img.
type pageSet struct {
	pagemap string // the pagemap naming it
	pages   uint64 // pages stored in it
}

// checkPagemaps checks every pagemap image and the pages images they name.
func (c *checker) checkPagemaps(names []string) {
	sets := map[uint32]pageSet{}
	for _, name := range names {
		if m, kind := ExpectedMagic(name); kind != KindProto || m != "PAGEMAP" {
			continue
		}
		data, ok := c.content(name, "")
		if !ok {
			continue
		}
		head, entries, err := ReadPagemap(name, data)
		if c.failed(name, err) {
			continue
		}
		var mm *MmEntry
		if pid, ok := strings.CutPrefix(strings.TrimSuffix(name, ".img"), "pagemap-"); ok && isDecimal(pid) {
			mmName := "mm-" + pid + ".img"
			if d, ok := c.content(mmName, ""); ok {
				if v, err := ReadMm(mmName, d); err == nil {
					mm = &v
				}
			}
		}
		pages := c.checkEntries(name, entries, mm)
		if prev, dup := sets[head.PagesID]; dup {
			c.add(name, fmt.Errorf("check pages_id %d: also used by %s: %w", head.PagesID, prev.pagemap, ErrImage))
			continue
		}
		sets[head.PagesID] = pageSet{pagemap: name, pages: pages}
	}
	for id, s := range sets {
		pname := "pages-" + strconv.FormatUint(uint64(id), 10) + ".img"
		fi, ok := c.files[pname]
		if !ok {
			c.add(pname, fmt.Errorf("find image: named by %s: %w", s.pagemap, ErrMissing))
			continue
		}
		hi, lo := bits.Mul64(s.pages, c.pageSize)
		if hi != 0 || lo > 1<<63-1 || int64(lo) != fi.Size {
			c.add(pname, fmt.Errorf("check size: %d bytes, want %d pages of %d bytes listed by %s: %w",
				fi.Size, s.pages, c.pageSize, s.pagemap, ErrImage))
		}
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "pages-") {
			continue
		}
		_, kind, n := lookupName(name)
		if kind != KindRaw || n < 0 {
			continue
		}
		if n > 1<<32-1 {
			c.add(name, fmt.Errorf("check pages image: named by no pagemap: %w", ErrImage))
			continue
		}
		if _, ok := sets[uint32(n)]; !ok {
			c.add(name, fmt.Errorf("check pages image: named by no pagemap: %w", ErrImage))
		}
	}
}

// checkEntries checks the entries of one pagemap and returns the number of
// pages they store in the pages image: PEPresent and not PEParent.
func (c *checker) checkEntries(name string, entries []PagemapEntry, mm *MmEntry) uint64 {
	var pages, prevEnd uint64
	parentReported := false
	vmas := sortedVmas(mm)
	for i, e := range entries {
		where := fmt.Sprintf("entry %d at %#x", i+1, e.Vaddr)
		if e.Flags&^(PEParent|PELazy|PEPresent) != 0 {
			c.add(name, fmt.Errorf("check %s: unknown flags %#x: %w", where, e.Flags, ErrImage))
		}
		if e.Parent() && e.Present() {
			c.add(name, fmt.Errorf("check %s: both PE_PARENT and PE_PRESENT: %w", where, ErrImage))
		}
		if e.Parent() && !c.parent && !parentReported {
			c.add(name, fmt.Errorf("check %s: pages in parent, but the image set has no parent: %w", where, ErrParent))
			parentReported = true
		}
		if e.NrPages == 0 {
			c.add(name, fmt.Errorf("check %s: no pages: %w", where, ErrImage))
			continue
		}
		if e.Vaddr%c.pageSize != 0 {
			c.add(name, fmt.Errorf("check %s: not aligned to %d-byte pages: %w", where, c.pageSize, ErrImage))
		}
		hi, size := bits.Mul64(e.NrPages, c.pageSize)
		end, carry := bits.Add64(e.Vaddr, size, 0)
		if hi != 0 || carry != 0 {
			c.add(name, fmt.Errorf("check %s: %d pages run past the address space: %w", where, e.NrPages, ErrImage))
			return pages
		}
		if i > 0 && e.Vaddr < prevEnd {
			if e.Vaddr < entries[i-1].Vaddr {
				c.add(name, fmt.Errorf("check %s: not sorted by address: %w", where, ErrImage))
			} else {
				c.add(name, fmt.Errorf("check %s: overlaps the previous entry (ends at %#x): %w", where, prevEnd, ErrImage))
			}
		}
		if end > prevEnd {
			prevEnd = end
		}
		if vmas != nil && !covered(vmas, e.Vaddr, end) {
			c.add(name, fmt.Errorf("check %s: pages outside the VMAs of the mm image: %w", where, ErrImage))
		}
		if e.Present() && !e.Parent() {
			var carry uint64
			pages, carry = bits.Add64(pages, e.NrPages, 0)
			if carry != 0 {
				c.add(name, fmt.Errorf("check %s: page count overflows: %w", where, ErrImage))
				return pages
			}
		}
	}
	return pages
}

// checkVmas checks the memory mappings of an mm image: each starts below
// its end, both page-aligned, and no two overlap (the pagemap check counts
// on it).
func (c *checker) checkVmas(name string, vmas []VmaEntry) {
	for i, v := range vmas {
		if v.Start >= v.End || v.Start%c.pageSize != 0 || v.End%c.pageSize != 0 {
			c.add(name, fmt.Errorf("check VMA %d %#x-%#x: empty, inverted or not aligned to %d-byte pages: %w", i+1, v.Start, v.End, c.pageSize, ErrImage))
			return
		}
	}
	sorted := sortedVmas(&MmEntry{Vmas: vmas})
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Start < sorted[i-1].End {
			c.add(name, fmt.Errorf("check VMA %#x-%#x: overlaps %#x-%#x: %w", sorted[i].Start, sorted[i].End, sorted[i-1].Start, sorted[i-1].End, ErrImage))
			return
		}
	}
}

// sortedVmas returns mm's VMAs sorted by start, or nil without mm.
func sortedVmas(mm *MmEntry) []VmaEntry {
	if mm == nil {
		return nil
	}
	v := append([]VmaEntry{}, mm.Vmas...)
	sort.Slice(v, func(i, j int) bool { return v[i].Start < v[j].Start })
	return v
}

// covered reports whether [start, end) lies inside the union of vmas
// (sorted by start).
func covered(vmas []VmaEntry, start, end uint64) bool {
	i := sort.Search(len(vmas), func(i int) bool { return vmas[i].End > start })
	for ; i < len(vmas) && start < end; i++ {
		if vmas[i].Start > start {
			return false
		}
		if vmas[i].End > start {
			start = vmas[i].End
		}
	}
	return start >= end
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
