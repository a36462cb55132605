package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/ckpt/ckpt/format/criuimg"
)

// PageSize is the page size the inspector assumes for CRIU images (CRIU
// records none): 4 KiB, as on amd64.
const PageSize = 4096

// MaxArgSize bounds the command line and environment read from a
// process's memory.
const MaxArgSize = 1 << 20

// CRIU VMA status bits (criu/include/image.h).
const (
	vmaAreaRegular  = 1 << 0
	vmaAreaStack    = 1 << 1
	vmaAreaVsyscall = 1 << 2
	vmaAreaVdso     = 1 << 3
	vmaAreaHeap     = 1 << 5
	vmaFilePrivate  = 1 << 6
	vmaFileShared   = 1 << 7
	vmaAnonShared   = 1 << 8
	vmaAreaSysVIPC  = 1 << 10
	vmaAreaVvar     = 1 << 12
)

// memRange is a run of pages of a pagemap.
type memRange struct {
	addr  uint64 // first page's address
	pages uint64
	off   int64 // offset in the pages file, -1 when not stored there
	flags uint32
}

// inParent reports a run whose pages are in the parent checkpoint
// (PE_PARENT).
func (r memRange) inParent() bool { return r.off < 0 && r.flags&criuimg.PEParent != 0 }

// procMem reads a process's memory from its pagemap and pages image.
type procMem struct {
	pid    uint32
	ranges []memRange
	f      pagesFile // nil when the pages image is not available
	size   int64     // pages file size
	mm     *criuimg.MmEntry
	// parent is the same task's memory in the parent archive, which
	// resolves the runs in parent; nil when no parent was given (or the
	// parent has no such task: then such runs cannot be read).
	parent *procMem
	// parentGiven reports that the archive's parents were loaded.
	parentGiven bool
}

// Close closes the pages file and the parents'.
func (m *procMem) Close() error {
	var err error
	if m.parent != nil {
		err = m.parent.Close()
	}
	if m.f != nil {
		if e := m.f.Close(); err == nil {
			err = e
		}
	}
	return err
}

// ErrParentNotGiven reports memory of an incremental checkpoint that
// lives in a parent archive that was not given (see [LoadOptions.Parents]).
var ErrParentNotGiven = errors.New("in parent (not given)")

// errNoTask reports a task without pagemap.
var errNoTask = errors.New("missing")

// readable reports whether the pages of r can be read: stored here, or
// in parent with the parent given.
func (m *procMem) readable(r memRange) bool {
	return r.off >= 0 || (r.inParent() && m.parentGiven)
}

// readRun reads len(p) bytes of run r starting off bytes into it, from
// the pages file or, for a run in parent, from the parent chain by
// address.
func (m *procMem) readRun(r memRange, p []byte, off int64) error {
	if r.off >= 0 {
		if _, err := m.f.ReadAt(p, r.off+off); err != nil {
			return fmt.Errorf("read pages: %w", err)
		}
		return nil
	}
	addr := r.addr + uint64(off)
	if !r.inParent() {
		return fmt.Errorf("memory at %#x: not stored", addr)
	}
	if !m.parentGiven {
		return fmt.Errorf("memory at %#x: %w", addr, ErrParentNotGiven)
	}
	if m.parent == nil {
		return fmt.Errorf("memory at %#x: marked in parent, but the parent has no task %d", addr, m.pid)
	}
	ok, err := m.parent.readAt(p, addr)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("memory at %#x: marked in parent, but not stored in the parent chain", addr)
	}
	return nil
}

// inParent returns the bytes of [start, end) marked in parent.
func (m *procMem) inParent(start, end uint64) uint64 {
	var n uint64
	for _, r := range m.ranges {
		if r.inParent() {
			s, e := max(start, r.addr), min(end, r.addr+r.pages*PageSize)
			if s < e {
				n += e - s
			}
		}
	}
	return n
}

// memory opens the memory of task pid. The pages image is needed only
// when the archive was loaded with LoadOptions.Pages.
func (a *Archive) memory(pid uint32) (*procMem, error) {
	name := fmt.Sprintf("pagemap-%d.img", pid)
	b, ok := a.Images[name]
	if why, stale := a.stale[name]; stale {
		return nil, fmt.Errorf("find process %d: not in the checkpoint, %s is stale (%s): %w: %w", pid, name, why, ErrImage, errNoTask)
	}
	if !ok {
		return nil, fmt.Errorf("find %s: %w: %w", name, ErrImage, errNoTask)
	}
	head, ents, err := readPagemap(name, b)
	if err != nil {
		return nil, err
	}
	m := &procMem{pid: pid}
	if mb, ok := a.Images[fmt.Sprintf("mm-%d.img", pid)]; ok {
		mm, err := criuimg.ReadMm(fmt.Sprintf("mm-%d.img", pid), mb)
		if err != nil {
			return nil, wrapImg(err)
		}
		m.mm = &mm
	}
	pagesName := fmt.Sprintf("pages-%d.img", head.PagesID)
	m.size = a.ImageSizes[pagesName]
	var off int64
	for _, e := range ents {
		r := memRange{addr: e.Vaddr, pages: e.NrPages, off: -1, flags: e.Flags}
		if e.Vaddr%PageSize != 0 || e.NrPages == 0 || e.NrPages > (1<<52)/PageSize || e.Vaddr > ^uint64(0)-e.NrPages*PageSize {
			return nil, fmt.Errorf("decode %s: entry at %#x of %d pages: %w", name, e.Vaddr, e.NrPages, ErrImage)
		}
		if e.Present() && !e.Parent() {
			n := int64(e.NrPages) * PageSize
			if n > m.size-off {
				return nil, fmt.Errorf("decode %s: pages past the end of %s (%d bytes): %w", name, pagesName, m.size, ErrImage)
			}
			r.off = off
			off += n
		}
		m.ranges = append(m.ranges, r)
	}
	sort.SliceStable(m.ranges, func(i, j int) bool { return m.ranges[i].addr < m.ranges[j].addr })
	for i := 1; i < len(m.ranges); i++ {
		p := m.ranges[i-1]
		if p.addr+p.pages*PageSize > m.ranges[i].addr {
			return nil, fmt.Errorf("decode %s: overlapping entries at %#x: %w", name, m.ranges[i].addr, ErrImage)
		}
	}
	if a.Parent != nil {
		m.parentGiven = true
		pm, err := a.Parent.memory(pid)
		if err != nil && !errors.Is(err, errNoTask) {
			m.Close()
			return nil, fmt.Errorf("parent %s: %w", a.Parent.Path, err)
		}
		m.parent = pm
	}
	if sp, ok := a.sparse[pagesName]; ok {
		m.f = sp
	} else if path, ok := a.pages[pagesName]; ok {
		f, err := os.Open(path)
		if err != nil {
			m.Close()
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != m.size {
			f.Close()
			m.Close()
			return nil, fmt.Errorf("open %s: size changed", pagesName)
		}
		m.f = f
	}
	return m, nil
}

// pagesFile is a pages image being read: a temporary file, or the
// segments captured while streaming.
type pagesFile interface {
	io.ReaderAt
	io.Closer
}

// segment is bytes of a pages image starting at off.
type segment struct {
	off  int64
	data []byte
}

// sparsePages holds the segments of a pages image Load captured; reading
// outside them is an error.
type sparsePages struct{ segs []segment }

func (s *sparsePages) ReadAt(p []byte, off int64) (int, error) {
	for _, g := range s.segs {
		if off >= g.off && off+int64(len(p)) <= g.off+int64(len(g.data)) {
			return copy(p, g.data[off-g.off:]), nil
		}
	}
	return 0, fmt.Errorf("read pages at %d: not captured", off)
}

func (s *sparsePages) Close() error { return nil }

// argSegments returns the byte ranges of the pages image base that hold
// the command lines and environments of the processes whose pagemap names
// it, from the pagemap and mm images already loaded. ok is false when
// they are not all there.
func (a *Archive) argSegments(base string) (segs [][2]int64, ok bool) {
	for name, b := range a.Images {
		pidStr, isPM := strings.CutPrefix(name, "pagemap-")
		if !isPM {
			continue
		}
		pidStr = strings.TrimSuffix(pidStr, ".img")
		head, ents, err := readPagemap(name, b)
		if err != nil || fmt.Sprintf("pages-%d.img", head.PagesID) != base {
			continue
		}
		mb, have := a.Images["mm-"+pidStr+".img"]
		if !have {
			return nil, false
		}
		mm, err := criuimg.ReadMm("mm-"+pidStr+".img", mb)
		if err != nil {
			return nil, false
		}
		for _, r := range [][2]uint64{{mm.ArgStart, mm.ArgEnd}, {mm.EnvStart, mm.EnvEnd}} {
			if r[1] <= r[0] {
				continue
			}
			end := min(r[1], r[0]+MaxArgSize)
			var off int64
			for _, e := range ents {
				if !e.Present() || e.Parent() || e.NrPages > 1<<40 {
					continue
				}
				n := int64(e.NrPages) * PageSize
				s, t := max(e.Vaddr, r[0]), min(e.Vaddr+uint64(n), end)
				if s < t {
					segs = append(segs, [2]int64{off + int64(s-e.Vaddr), off + int64(t-e.Vaddr)})
				}
				off += n
			}
		}
	}
	return segs, true
}

// maxCapture bounds the bytes of one pages image Load keeps in memory for
// command lines and environments; more is spilled to disk.
const maxCapture = 64 << 20

// MaxArgsTotal bounds the command-line and environment bytes kept for
// all the processes of an archive; further processes get none.
const MaxArgsTotal = 64 << 20

// maxArgStrings bounds the strings split from one process's arguments
// or environment.
const maxArgStrings = 1 << 16

// clipSegments returns the parts of segs that lie within size bytes.
func clipSegments(segs [][2]int64, size int64) [][2]int64 {
	out := segs[:0]
	for _, g := range segs {
		g[1] = min(g[1], size)
		if g[0] < g[1] {
			out = append(out, g)
		}
	}
	return out
}

// segmentsSize returns the bytes segs cover, counting overlaps once per
// segment (an upper bound).
func segmentsSize(segs [][2]int64) int64 {
	var n int64
	for _, g := range segs {
		n += g[1] - g[0]
	}
	return n
}

// capture reads the current member (size bytes) from r, keeping the
// bytes of segs.
func capture(r io.Reader, segs [][2]int64) (*sparsePages, error) {
	sort.Slice(segs, func(i, j int) bool { return segs[i][0] < segs[j][0] })
	sp := &sparsePages{}
	var pos int64
	for _, g := range segs {
		if g[0] < pos {
			continue // overlapping: the earlier segment serves it only partly; rare
		}
		if _, err := io.CopyN(io.Discard, r, g[0]-pos); err != nil {
			return nil, err
		}
		b := make([]byte, g[1]-g[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		sp.segs = append(sp.segs, segment{off: g[0], data: b})
		pos = g[1]
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return sp, nil
}

// stored returns the total size of the pages stored for the process.
func (m *procMem) stored() int64 {
	var n int64
	for _, r := range m.ranges {
		if r.off >= 0 {
			n += int64(r.pages) * PageSize
		}
	}
	return n
}

// readAt reads len(p) bytes of memory at addr. Pages not stored (not
// present, or in a parent checkpoint) read as zeros; ok is false when
// any byte was not stored.
func (m *procMem) readAt(p []byte, addr uint64) (ok bool, err error) {
	if m.f == nil {
		return false, errors.New("read memory: pages not loaded")
	}
	clear(p)
	ok = true
	end := addr + uint64(len(p))
	covered := uint64(0)
	i := sort.Search(len(m.ranges), func(i int) bool {
		r := m.ranges[i]
		return r.addr+r.pages*PageSize > addr
	})
	for ; i < len(m.ranges) && m.ranges[i].addr < end; i++ {
		r := m.ranges[i]
		rs, re := r.addr, r.addr+r.pages*PageSize
		s, e := max(rs, addr), min(re, end)
		if r.inParent() && m.parent != nil {
			pok, err := m.parent.readAt(p[s-addr:e-addr], s)
			if err != nil {
				return false, err
			}
			ok = ok && pok
			covered += e - s
			continue
		}
		if r.off < 0 {
			ok = false
			continue
		}
		if _, err := m.f.ReadAt(p[s-addr:e-addr], r.off+int64(s-rs)); err != nil {
			return false, fmt.Errorf("read pages: %w", err)
		}
		covered += e - s
	}
	return ok && covered == uint64(len(p)), nil
}

// strings reads the NUL-separated strings between start and end.
func (m *procMem) strings(start, end uint64) ([]string, error) {
	if end <= start {
		return nil, nil
	}
	n := end - start
	if n > MaxArgSize {
		n = MaxArgSize
	}
	buf := make([]byte, n)
	if _, err := m.readAt(buf, start); err != nil {
		return nil, err
	}
	buf = bytes.TrimRight(buf, "\x00")
	if len(buf) == 0 {
		return nil, nil
	}
	var out []string
	for _, s := range bytes.SplitN(buf, []byte{0}, maxArgStrings) {
		out = append(out, string(s))
	}
	return out, nil
}

// ProcessArgs fills Cmdline (and Env when env is set) of every alive
// process from its memory. The archive must have been loaded with Pages.
func (a *Archive) ProcessArgs(roots []*Process, env bool) error {
	var ferr error
	var total int64
	Walk(roots, func(p *Process, _ int) {
		if ferr != nil || p.State == "zombie" || total > MaxArgsTotal {
			return
		}
		defer func() {
			for _, s := range p.Cmdline {
				total += int64(len(s)) + 16
			}
			for _, s := range p.Env {
				total += int64(len(s)) + 16
			}
		}()
		m, err := a.memory(p.PID)
		if err != nil {
			ferr = err
			return
		}
		defer m.Close()
		if m.mm == nil {
			return
		}
		notGiven := func(start, end uint64) bool {
			return !m.parentGiven && end > start && m.inParent(start, min(end, start+MaxArgSize)) > 0
		}
		if notGiven(m.mm.ArgStart, m.mm.ArgEnd) {
			p.MemoryNote = "command line " + ErrParentNotGiven.Error()
		} else if p.Cmdline, err = m.strings(m.mm.ArgStart, m.mm.ArgEnd); err != nil {
			ferr = err
			return
		}
		if env {
			if notGiven(m.mm.EnvStart, m.mm.EnvEnd) {
				if p.MemoryNote != "" {
					p.MemoryNote = "command line and environment " + ErrParentNotGiven.Error()
				} else {
					p.MemoryNote = "environment " + ErrParentNotGiven.Error()
				}
			} else if p.Env, err = m.strings(m.mm.EnvStart, m.mm.EnvEnd); err != nil {
				ferr = err
			}
		}
	})
	return ferr
}

// MemUsage is one row of memparse's table.
type MemUsage struct {
	PID  uint32 `json:"pid"`
	Comm string `json:"comm"`
	// Memory is the size of the process's pages stored in the checkpoint.
	Memory int64 `json:"memory"`
	// Shared is the size of the process's shared anonymous mappings
	// (MAP_SHARED|MAP_ANONYMOUS, SysV shm).
	Shared int64 `json:"shared"`
	// InParent is the size of the process's pages marked in parent
	// (PE_PARENT) in an incremental checkpoint: stored in the parent
	// archive, not in this one; omitted when 0.
	InParent int64 `json:"inParent,omitempty"`
}

// MemoryUsage returns memparse's table: the memory stored per process.
func (a *Archive) MemoryUsage() ([]MemUsage, error) {
	roots, err := a.Tree()
	if err != nil {
		return nil, err
	}
	var out []MemUsage
	var ferr error
	Walk(roots, func(p *Process, _ int) {
		if ferr != nil || p.State == "zombie" {
			return
		}
		m, err := a.memory(p.PID)
		if err != nil {
			ferr = err
			return
		}
		defer m.Close()
		u := MemUsage{PID: p.PID, Comm: p.Comm, Memory: m.stored(), InParent: int64(m.inParent(0, ^uint64(0)))}
		if m.mm != nil {
			for _, v := range m.mm.Vmas {
				if v.Status&(vmaAnonShared|vmaAreaSysVIPC) != 0 && v.End > v.Start {
					u.Shared += int64(v.End - v.Start)
				}
			}
		}
		out = append(out, u)
	})
	return out, ferr
}

// mapping describes the VMA holding addr.
func (a *Archive) mappingName(m *procMem, addr uint64) (start, end uint64, name string) {
	if m.mm == nil {
		return 0, 0, "?"
	}
	for _, v := range m.mm.Vmas {
		if v.Start <= addr && addr < v.End {
			return v.Start, v.End, a.vmaName(m.mm, v)
		}
	}
	return 0, 0, "?"
}

func (a *Archive) vmaName(mm *criuimg.MmEntry, v criuimg.VmaEntry) string {
	switch {
	case v.Status&(vmaFilePrivate|vmaFileShared) != 0:
		im := &images{a: a}
		n, err := im.describe(fdinfo.FdTypes_REG, uint32(v.Shmid))
		if err != nil {
			return "file"
		}
		return n
	case v.Status&vmaAreaVdso != 0:
		return "[vdso]"
	case v.Status&vmaAreaVvar != 0:
		return "[vvar]"
	case v.Status&vmaAreaVsyscall != 0:
		return "[vsyscall]"
	case v.Status&vmaAreaStack != 0, v.Flags&0x0100 != 0:
		return "[stack]"
	case v.Status&vmaAreaHeap != 0, v.Start <= mm.Brk && v.End >= mm.StartBrk && mm.Brk > mm.StartBrk:
		return "[heap]"
	case v.Status&vmaAnonShared != 0:
		return "[shmem]"
	case v.Status&vmaAreaSysVIPC != 0:
		return "[sysv-shm]"
	}
	return "[anon]"
}

// HexDump writes the stored memory of task pid like `hexdump -C`: 16
// bytes a line with their address, runs of identical lines collapsed into
// one "*" line. The archive must have been loaded with Pages.
func (a *Archive) HexDump(w io.Writer, pid uint32) error {
	m, err := a.memory(pid)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.f == nil {
		return errors.New("dump memory: pages not loaded")
	}
	bw := newErrWriter(w)
	buf := make([]byte, 64<<10)
	var prev [16]byte
	havePrev, starred := false, false
	var next uint64 // address following the last line printed or starred
	// flush ends a run of lines: hexdump prints the address after the
	// last collapsed line.
	flush := func() {
		if starred {
			bw.printf("%016x\n", next)
		}
		havePrev, starred = false, false
	}
	for _, r := range m.ranges {
		n := int64(r.pages) * PageSize
		if r.inParent() && !m.parentGiven {
			flush()
			unit := "pages"
			if r.pages == 1 {
				unit = "page"
			}
			bw.printf("%016x-%016x  %d %s %s\n", r.addr, r.addr+uint64(n), r.pages, unit, ErrParentNotGiven)
			continue
		}
		if !m.readable(r) {
			continue
		}
		// Contiguous runs continue one another, whether stored here or
		// in parent, so a chain dumps like the full checkpoint.
		if havePrev && r.addr != next {
			flush()
		}
		for done := int64(0); done < n; {
			c := min(int64(len(buf)), n-done)
			if err := m.readRun(r, buf[:c], done); err != nil {
				return fmt.Errorf("dump memory: %w", err)
			}
			for i := int64(0); i < c; i += 16 {
				line := buf[i : i+16]
				addr := r.addr + uint64(done+i)
				if havePrev && bytes.Equal(line, prev[:]) {
					if !starred {
						bw.printf("*\n")
						starred = true
					}
					next = addr + 16
					continue
				}
				hexLine(bw, addr, line)
				copy(prev[:], line)
				havePrev, starred = true, false
				next = addr + 16
			}
			done += c
		}
	}
	flush()
	return bw.err
}

func hexLine(bw *errWriter, addr uint64, line []byte) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%016x  ", addr)
	for j := 0; j < 16; j++ {
		fmt.Fprintf(&b, "%02x ", line[j])
		if j == 7 {
			b.WriteByte(' ')
		}
	}
	b.WriteString(" |")
	b.Write(printable(line))
	b.WriteString("|\n")
	bw.write(b.Bytes())
}

func printable(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return out
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func newErrWriter(w io.Writer) *errWriter { return &errWriter{w: w} }

func (e *errWriter) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
