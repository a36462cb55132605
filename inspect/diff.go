package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/format"
)

// maxFlatKeys bounds the fields compared in one JSON document.
const maxFlatKeys = 100_000

// Change marks: added, removed, changed, unchanged.
const (
	Added     = "+"
	Removed   = "-"
	Changed   = "~"
	Unchanged = "="
)

// FieldChange is a metadata field whose value differs.
type FieldChange struct {
	// Field is "manifest.container.name", "config.<path>", "spec.<path>",
	// "member <name>"...
	Field string `json:"field"`
	A     string `json:"a"`
	B     string `json:"b"`
}

// ProcChange compares a process of both checkpoints.
type ProcChange struct {
	// Change is Added, Removed, Changed (Detail says what) or Unchanged.
	PID    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Change string `json:"change"`
	Detail string `json:"detail,omitempty"`
}

// ItemChange is an open file or socket of a process present in only one
// checkpoint.
type ItemChange struct {
	// Item is "<fd> <type> <path>" for a file, "<fd> <description>" for a
	// socket; Change is Added or Removed.
	PID    uint32 `json:"pid"`
	Item   string `json:"item"`
	Change string `json:"change"`
}

// MemChange counts the pages of one mapping of a process whose contents
// differ between the checkpoints, compared address by address.
type MemChange struct {
	PID     uint32 `json:"pid"`
	Comm    string `json:"comm"`
	Mapping string `json:"mapping"`
	Start   uint64 `json:"start"`
	End     uint64 `json:"end"`
	// ChangedPages are pages stored in both whose contents differ;
	// ChangedBytes counts the differing bytes in them.
	ChangedPages int64 `json:"changedPages"`
	ChangedBytes int64 `json:"changedBytes"`
	// AddedPages are stored only in B, RemovedPages only in A.
	AddedPages   int64 `json:"addedPages"`
	RemovedPages int64 `json:"removedPages"`
	// Pages lists the addresses of the first changed pages (at most
	// maxListedPages).
	Pages []uint64 `json:"pages,omitempty"`
}

// maxListedPages bounds MemChange.Pages.
const maxListedPages = 64

// FileChange is a file of an inner tar (rootfs diff, volume) that
// differs.
type FileChange struct {
	// Tar is the member: rootfs-diff.tar or volumes/<name>.tar.
	Tar    string `json:"tar"`
	Path   string `json:"path"`
	Change string `json:"change"`
	Detail string `json:"detail,omitempty"`
}

// Diff is the difference between two archives.
type Diff struct {
	// A and B are the archives compared; Identical reports no
	// difference at all.
	A         string        `json:"a"`
	B         string        `json:"b"`
	Identical bool          `json:"identical"`
	Fields    []FieldChange `json:"fields"`
	Processes []ProcChange  `json:"processes"`
	Files     []ItemChange  `json:"files"`
	Sockets   []ItemChange  `json:"sockets"`
	Memory    []MemChange   `json:"memory"`
	// MemoryTotal sums Memory.
	MemoryTotal MemChange    `json:"memoryTotal"`
	Rootfs      []FileChange `json:"rootfs"`
	// Notes are what could not be compared: memory of an incremental
	// checkpoint stored in a parent archive that was not given. A diff
	// with notes is not Identical.
	Notes []string `json:"notes,omitempty"`
}

// DiffOptions configure DiffArchives.
type DiffOptions struct {
	// TempDir is where pages are copied to compare memory; empty means
	// os.TempDir().
	TempDir string
	// Parents are the parent archives, nearest first, of whichever of the
	// two archives is an incremental checkpoint (of both, when both are
	// incremental checkpoints of the same chain); each chain is checked
	// with format.CheckChain before use, and memory in parent is compared
	// with the parents' pages at the same addresses.
	Parents []string
}

// DiffArchives compares the archives a and b: metadata fields, members,
// process tree, open files, sockets, memory contents page by page, and
// the files of the rootfs diff and volumes. Each archive is read once.
func DiffArchives(ctx context.Context, a, b string, opts *DiffOptions) (*Diff, error) {
	var o DiffOptions
	if opts != nil {
		o = *opts
	}
	load := func(name string) (*Archive, error) {
		lo := &LoadOptions{Images: true, Pages: true, Tars: true, TempDir: o.TempDir}
		if len(o.Parents) > 0 {
			l, err := readLink(name)
			if err != nil && !errors.Is(err, format.ErrNoManifest) {
				return nil, fmt.Errorf("load %s: %w", name, err)
			}
			if err == nil && l.Manifest.Parent != nil {
				lo.Parents = o.Parents
			}
		}
		return Load(ctx, name, lo)
	}
	if len(o.Parents) > 0 {
		la, errA := readLink(a)
		lb, errB := readLink(b)
		if (errA != nil || la.Manifest.Parent == nil) && (errB != nil || lb.Manifest.Parent == nil) {
			return nil, fmt.Errorf("diff %s %s: parent given, but neither is an incremental checkpoint: %w", a, b, format.ErrParent)
		}
	}
	aa, err := load(a)
	if err != nil {
		return nil, err
	}
	defer aa.Close()
	ab, err := load(b)
	if err != nil {
		return nil, err
	}
	defer ab.Close()
	d, err := diffArchives(ctx, aa, ab)
	if err != nil {
		return nil, fmt.Errorf("diff %s %s: %w", a, b, err)
	}
	return d, nil
}

func diffArchives(ctx context.Context, a, b *Archive) (*Diff, error) {
	d := &Diff{A: a.Path, B: b.Path, Fields: []FieldChange{}, Processes: []ProcChange{}, Files: []ItemChange{},
		Sockets: []ItemChange{}, Memory: []MemChange{}, Rootfs: []FileChange{}}
	if err := d.fields(a, b); err != nil {
		return nil, err
	}
	_, hasA := a.Images["pstree.img"]
	_, hasB := b.Images["pstree.img"]
	if hasA && hasB {
		if err := d.processes(ctx, a, b); err != nil {
			return nil, err
		}
	}
	d.tars(a, b)
	d.Identical = len(d.Fields) == 0 && len(d.Files) == 0 && len(d.Sockets) == 0 && len(d.Memory) == 0 && len(d.Rootfs) == 0 && len(d.Notes) == 0
	for _, p := range d.Processes {
		if p.Change != Unchanged {
			d.Identical = false
		}
	}
	return d, nil
}

func (d *Diff) fields(a, b *Archive) error {
	ia, err := a.Info()
	if err != nil {
		return err
	}
	ib, err := b.Info()
	if err != nil {
		return err
	}
	fa, fb := map[string]string{}, map[string]string{}
	for _, x := range []struct {
		in   Info
		a    *Archive
		flat map[string]string
	}{{ia, a, fa}, {ib, b, fb}} {
		raw, _ := json.Marshal(x.in)
		flatten(raw, "info", x.flat)
		if !x.a.Legacy {
			m := *x.a.Manifest
			m.Members = nil
			raw, _ := json.Marshal(m)
			flatten(raw, "manifest", x.flat)
		}
		for _, name := range []string{format.ConfigName, format.SpecName, format.NetworkStatusName, format.DeletedFilesName} {
			if raw, ok := x.a.Meta[name]; ok {
				flatten(raw, name, x.flat)
			}
		}
		for _, e := range x.a.Manifest.Members {
			x.flat["member "+e.Name] = fmt.Sprintf("%d bytes %s", e.Size, e.Digest)
		}
	}
	d.Fields = compareFlat(fa, fb)
	return nil
}

// flatten turns a JSON document into path -> value lines; a document that
// is not JSON is one value.
func flatten(raw []byte, prefix string, out map[string]string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		out[prefix] = fmt.Sprintf("%d bytes %s", len(raw), format.DigestBytes(raw))
		return
	}
	var rec func(p string, v any)
	rec = func(p string, v any) {
		if len(out) >= maxFlatKeys {
			return
		}
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				rec(p+"."+k, x)
			}
		case []any:
			for i, x := range t {
				rec(p+"["+strconv.Itoa(i)+"]", x)
			}
		case nil:
			out[p] = "null"
		default:
			out[p] = fmt.Sprint(t)
		}
	}
	rec(prefix, v)
}

func compareFlat(a, b map[string]string) []FieldChange {
	out := []FieldChange{}
	for k, va := range a {
		if vb, ok := b[k]; !ok {
			out = append(out, FieldChange{Field: k, A: va})
		} else if va != vb {
			out = append(out, FieldChange{Field: k, A: va, B: vb})
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, FieldChange{Field: k, B: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func flatProcs(roots []*Process) map[uint32]*Process {
	m := map[uint32]*Process{}
	Walk(roots, func(p *Process, _ int) { m[p.PID] = p })
	return m
}

func sortedPIDs(ms ...map[uint32]*Process) []uint32 {
	set := map[uint32]bool{}
	for _, m := range ms {
		for p := range m {
			set[p] = true
		}
	}
	var out []uint32
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (d *Diff) processes(ctx context.Context, a, b *Archive) error {
	ra, err := a.Tree()
	if err != nil {
		return err
	}
	rb, err := b.Tree()
	if err != nil {
		return err
	}
	pa, pb := flatProcs(ra), flatProcs(rb)
	fa, err := a.Files()
	if err != nil {
		return err
	}
	fb, err := b.Files()
	if err != nil {
		return err
	}
	sa, err := a.Sockets()
	if err != nil {
		return err
	}
	sb, err := b.Sockets()
	if err != nil {
		return err
	}
	for _, pid := range sortedPIDs(pa, pb) {
		x, y := pa[pid], pb[pid]
		switch {
		case y == nil:
			d.Processes = append(d.Processes, ProcChange{PID: pid, Comm: x.Comm, Change: Removed})
			continue
		case x == nil:
			d.Processes = append(d.Processes, ProcChange{PID: pid, Comm: y.Comm, Change: Added})
			continue
		}
		pc := ProcChange{PID: pid, Comm: y.Comm, Change: Unchanged}
		var det []string
		if x.Comm != y.Comm {
			det = append(det, fmt.Sprintf("comm %s -> %s", x.Comm, y.Comm))
		}
		if x.PPID != y.PPID {
			det = append(det, fmt.Sprintf("ppid %d -> %d", x.PPID, y.PPID))
		}
		if x.State != y.State {
			det = append(det, fmt.Sprintf("state %s -> %s", x.State, y.State))
		}
		if len(x.Threads) != len(y.Threads) {
			det = append(det, fmt.Sprintf("threads %d -> %d", len(x.Threads), len(y.Threads)))
		}
		if len(det) > 0 {
			pc.Change, pc.Detail = Changed, strings.Join(det, ", ")
		}
		d.Processes = append(d.Processes, pc)
		var fla, flb, ska, skb []string
		for _, f := range fa[pid] {
			fla = append(fla, fmt.Sprintf("%s %s %s", f.Fd, f.Type, f.Path))
		}
		for _, f := range fb[pid] {
			flb = append(flb, fmt.Sprintf("%s %s %s", f.Fd, f.Type, f.Path))
		}
		for _, s := range sa[pid] {
			ska = append(ska, fmt.Sprintf("%d %s", s.Fd, socketLine(s)))
		}
		for _, s := range sb[pid] {
			skb = append(skb, fmt.Sprintf("%d %s", s.Fd, socketLine(s)))
		}
		d.Files = append(d.Files, diffItems(pid, fla, flb)...)
		d.Sockets = append(d.Sockets, diffItems(pid, ska, skb)...)
		if x.State != "zombie" && y.State != "zombie" {
			if err := d.memory(ctx, a, b, pid, y.Comm); err != nil {
				return err
			}
		}
	}
	return nil
}

func diffItems(pid uint32, a, b []string) []ItemChange {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []ItemChange
	for _, x := range a {
		if !mb[x] {
			out = append(out, ItemChange{PID: pid, Item: x, Change: Removed})
		}
	}
	for _, x := range b {
		if !ma[x] {
			out = append(out, ItemChange{PID: pid, Item: x, Change: Added})
		}
	}
	return out
}

// storedRuns lists m's readable pages (stored, or in a given parent) in
// address order, in runs.
func (m *procMem) storedRuns() []memRange {
	var out []memRange
	for _, r := range m.ranges {
		if m.readable(r) {
			out = append(out, r)
		}
	}
	return out
}

// notGiven reports whether the page at addr is in a parent that was not
// given.
func (m *procMem) notGiven(addr uint64) bool {
	if m.parentGiven {
		return false
	}
	i := sort.Search(len(m.ranges), func(i int) bool {
		r := m.ranges[i]
		return r.addr+r.pages*PageSize > addr
	})
	return i < len(m.ranges) && m.ranges[i].addr <= addr && m.ranges[i].inParent()
}

// memory compares the memory of pid page by page.
func (d *Diff) memory(ctx context.Context, a, b *Archive, pid uint32, comm string) error {
	ma, err := a.memory(pid)
	if err != nil {
		return err
	}
	defer ma.Close()
	mb, err := b.memory(pid)
	if err != nil {
		return err
	}
	defer mb.Close()
	if ma.f == nil || mb.f == nil {
		return fmt.Errorf("compare memory of %d: pages not loaded", pid)
	}
	byMap := map[uint64]*MemChange{}
	var keys []uint64
	get := func(addr uint64) *MemChange {
		start, end, name := b.mappingName(mb, addr)
		if name == "?" {
			start, end, name = a.mappingName(ma, addr)
		}
		c, ok := byMap[start]
		if !ok {
			c = &MemChange{PID: pid, Comm: comm, Mapping: name, Start: start, End: end}
			byMap[start] = c
			keys = append(keys, start)
		}
		return c
	}
	ra, rb := ma.storedRuns(), mb.storedRuns()
	d.noteUncompared(a, ma, pid)
	d.noteUncompared(b, mb, pid)
	// Walk both lists of runs page by page in address order.
	i, j := 0, 0
	var pa, pb uint64 // page index within the current run
	bufA, bufB := make([]byte, PageSize), make([]byte, PageSize)
	n := 0
	for i < len(ra) || j < len(rb) {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var addrA, addrB uint64 = ^uint64(0), ^uint64(0)
		if i < len(ra) {
			addrA = ra[i].addr + pa*PageSize
		}
		if j < len(rb) {
			addrB = rb[j].addr + pb*PageSize
		}
		switch {
		case addrA < addrB:
			if !mb.notGiven(addrA) {
				get(addrA).RemovedPages++
			}
		case addrB < addrA:
			if !ma.notGiven(addrB) {
				get(addrB).AddedPages++
			}
		default:
			if err := ma.readRun(ra[i], bufA, int64(pa*PageSize)); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read memory: %w", err)
			}
			if err := mb.readRun(rb[j], bufB, int64(pb*PageSize)); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read memory: %w", err)
			}
			if !bytes.Equal(bufA, bufB) {
				countChange(get(addrA), addrA, bufA, bufB)
			}
		}
		if addrA <= addrB && i < len(ra) {
			if pa++; pa == ra[i].pages {
				i, pa = i+1, 0
			}
		}
		if addrB <= addrA && j < len(rb) {
			if pb++; pb == rb[j].pages {
				j, pb = j+1, 0
			}
		}
	}
	sort.Slice(keys, func(x, y int) bool { return keys[x] < keys[y] })
	for _, k := range keys {
		c := byMap[k]
		d.Memory = append(d.Memory, *c)
		d.MemoryTotal.ChangedPages += c.ChangedPages
		d.MemoryTotal.ChangedBytes += c.ChangedBytes
		d.MemoryTotal.AddedPages += c.AddedPages
		d.MemoryTotal.RemovedPages += c.RemovedPages
	}
	return nil
}

// noteUncompared notes the pages of pid in ar that are in a parent not
// given, which the comparison skips.
func (d *Diff) noteUncompared(ar *Archive, m *procMem, pid uint32) {
	skip := 0
	for _, r := range m.ranges {
		if r.inParent() && !m.parentGiven {
			skip += int(r.pages)
		}
	}
	if skip > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("memory of [%d] in %s: %d page(s) %v, not compared (pass its parent with --parent)", pid, ar.Path, skip, ErrParentNotGiven))
	}
}

// countChange counts the page at addr, whose contents differ (a, b), as
// changed in c.
func countChange(c *MemChange, addr uint64, a, b []byte) {
	c.ChangedPages++
	if len(c.Pages) < maxListedPages {
		c.Pages = append(c.Pages, addr)
	}
	for k := range a {
		if a[k] != b[k] {
			c.ChangedBytes++
		}
	}
}

func (d *Diff) tars(a, b *Archive) {
	names := map[string]bool{}
	for n := range a.Tars {
		names[n] = true
	}
	for n := range b.Tars {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		ea, eb := map[string]TarEntry{}, map[string]TarEntry{}
		for _, e := range a.Tars[n] {
			ea[e.Name] = e
		}
		for _, e := range b.Tars[n] {
			eb[e.Name] = e
		}
		var paths []string
		for p := range ea {
			paths = append(paths, p)
		}
		for p := range eb {
			if _, ok := ea[p]; !ok {
				paths = append(paths, p)
			}
		}
		sort.Strings(paths)
		for _, p := range paths {
			x, okA := ea[p]
			y, okB := eb[p]
			switch {
			case !okB:
				d.Rootfs = append(d.Rootfs, FileChange{Tar: n, Path: p, Change: Removed, Detail: x.Type})
			case !okA:
				d.Rootfs = append(d.Rootfs, FileChange{Tar: n, Path: p, Change: Added, Detail: y.Type})
			case x != y:
				var det []string
				if x.Type != y.Type {
					det = append(det, fmt.Sprintf("type %s -> %s", x.Type, y.Type))
				}
				if x.Digest != y.Digest || x.Size != y.Size {
					det = append(det, fmt.Sprintf("content %d -> %d bytes", x.Size, y.Size))
				}
				if x.Mode != y.Mode {
					det = append(det, fmt.Sprintf("mode %o -> %o", x.Mode, y.Mode))
				}
				if x.Link != y.Link {
					det = append(det, fmt.Sprintf("link %s -> %s", x.Link, y.Link))
				}
				d.Rootfs = append(d.Rootfs, FileChange{Tar: n, Path: p, Change: Changed, Detail: strings.Join(det, ", ")})
			}
		}
	}
}

// WriteDiff writes a diff as a tree.
func WriteDiff(w io.Writer, d *Diff) error {
	ew := newErrWriter(w)
	status := "different"
	if d.Identical {
		status = "identical"
	}
	root := &node{label: fmt.Sprintf("diff %s %s: %s", d.A, d.B, status)}
	if len(d.Fields) > 0 {
		n := root.add("Fields")
		for _, f := range d.Fields {
			n.add("%s: %s -> %s", f.Field, dash(f.A), dash(f.B))
		}
	}
	if len(d.Processes) > 0 {
		n := root.add("Processes")
		for _, p := range d.Processes {
			l := fmt.Sprintf("%s [%d] %s", p.Change, p.PID, p.Comm)
			if p.Detail != "" {
				l += ": " + p.Detail
			}
			n.add("%s", l)
		}
	}
	if len(d.Files) > 0 {
		n := root.add("Files")
		for _, f := range d.Files {
			n.add("%s [%d] %s", f.Change, f.PID, f.Item)
		}
	}
	if len(d.Sockets) > 0 {
		n := root.add("Sockets")
		for _, f := range d.Sockets {
			n.add("%s [%d] %s", f.Change, f.PID, f.Item)
		}
	}
	if len(d.Memory) > 0 {
		t := d.MemoryTotal
		n := root.add("Memory: %d page(s) changed (%d bytes), %d added, %d removed", t.ChangedPages, t.ChangedBytes, t.AddedPages, t.RemovedPages)
		for _, m := range d.Memory {
			mn := n.add("[%d] %s %x-%x %s: %d changed (%d bytes), %d added, %d removed", m.PID, m.Comm, m.Start, m.End, m.Mapping,
				m.ChangedPages, m.ChangedBytes, m.AddedPages, m.RemovedPages)
			if len(m.Pages) > 0 {
				var ps []string
				for i, p := range m.Pages {
					if i == 8 {
						ps = append(ps, "...")
						break
					}
					ps = append(ps, fmt.Sprintf("%x", p))
				}
				mn.add("changed pages: %s", strings.Join(ps, " "))
			}
		}
	}
	if len(d.Notes) > 0 {
		n := root.add("Not compared")
		for _, s := range d.Notes {
			n.add("%s", s)
		}
	}
	if len(d.Rootfs) > 0 {
		n := root.add("Root FS diff and volumes")
		for _, f := range d.Rootfs {
			l := fmt.Sprintf("%s %s:%s", f.Change, f.Tar, f.Path)
			if f.Detail != "" {
				l += " (" + f.Detail + ")"
			}
			n.add("%s", l)
		}
	}
	root.write(ew)
	return ew.err
}
