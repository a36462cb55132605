package inspect

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// node is a line of a tree rendering and its children.
type node struct {
	label string
	kids  []*node
}

func (n *node) add(format string, args ...any) *node {
	k := &node{label: fmt.Sprintf(format, args...)}
	n.kids = append(n.kids, k)
	return k
}

func (n *node) write(w *errWriter) {
	w.printf("%s\n", n.label)
	var rec func(kids []*node, prefix string)
	rec = func(kids []*node, prefix string) {
		for i, k := range kids {
			branch, next := "├── ", "│   "
			if i == len(kids)-1 {
				branch, next = "└── ", "    "
			}
			w.printf("%s%s%s\n", prefix, branch, k.label)
			rec(k.kids, prefix+next)
		}
	}
	rec(n.kids, "")
}

// Size formats a byte count with binary units.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortID(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 {
		return s[:12]
	}
	return dash(s)
}

// WriteShow writes show's table, one row per archive, led by the archive's
// path as given: several checkpoints of one container differ only there.
func WriteShow(w io.Writer, rows []*Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ew := newErrWriter(tw)
	// A POD column (namespace/pod) only where a kubelet archive is listed.
	pods := slices.ContainsFunc(rows, func(r *Summary) bool { return r.Pod != "" })
	pod := func(r *Summary) string {
		if !pods {
			return ""
		}
		if r.Pod == "" {
			return "-\t"
		}
		return dash(r.Namespace) + "/" + r.Pod + "\t"
	}
	head := "FILE\tCONTAINER\t"
	if pods {
		head += "POD\t"
	}
	ew.printf("%sIMAGE\tID\tRUNTIME\tCREATED\tCHECKPOINTED\tENGINE\tFORMAT\tCHKPT SIZE\tPAGES SIZE\tROOTFS DIFF\tCHAIN\tVERIFIED\n", head)
	for _, r := range rows {
		ew.printf("%s\t%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Path, dash(r.Name), pod(r), dash(r.Image), shortID(r.ID), dash(r.Runtime),
			when(r.Created), when(r.Checkpointed), r.Engine, r.Format, r.size("checkpointSize", r.CheckpointSize),
			r.size("memoryPagesSize", r.PagesSize), r.size("rootfsDiffSize", r.RootfsDiffSize), chain(r), r.Verified)
	}
	if ew.err != nil {
		return ew.err
	}
	return tw.Flush()
}

// chain describes a summary's place in a checkpoint chain: "full",
// "pre-checkpoint", or "delta of sha256:<12 hex> depth N" (CHKPT SIZE is
// then the delta's size).
func chain(r *Summary) string {
	switch {
	case r.Format == "sealed", r.Format == "legacy" && r.Parent == nil && !r.PreCheckpoint:
		return "-"
	case r.Parent != nil:
		return fmt.Sprintf("delta of %s depth %d", shortDigest(string(r.Parent.Manifest)), r.Parent.Depth)
	case r.PreCheckpoint:
		return "pre-checkpoint"
	}
	return "full"
}

// shortDigest abbreviates "sha256:<hex>" to 12 hex digits.
func shortDigest(s string) string {
	if len(s) > len("sha256:")+12 {
		s = s[:len("sha256:")+12]
	}
	return s
}

// WriteInspection writes an inspection as a tree.
func WriteInspection(w io.Writer, in *Inspection) error {
	ew := newErrWriter(w)
	root := &node{label: fmt.Sprintf("%s (%s, %s)", dash(in.Name), in.Engine, in.Format)}
	root.add("Archive: %s", in.Path)
	root.add("Image: %s", dash(in.Image))
	root.add("ID: %s", dash(in.ID))
	root.add("Runtime: %s", dash(in.Runtime))
	if in.Pod != "" {
		root.add("Pod: %s/%s", dash(in.Namespace), in.Pod)
	}
	if in.IP != "" {
		root.add("IP: %s", in.IP)
	}
	root.add("Created: %s", when(in.Created))
	root.add("Checkpointed: %s", when(in.Checkpointed))
	if c := chain(&in.Summary); c != "full" && c != "-" {
		root.add("Chain: %s", c)
	}
	cs := root.add("Checkpoint size: %s", Size(in.CheckpointSize))
	cs.add("Memory pages size: %s", Size(in.PagesSize))
	root.add("Root FS diff size: %s", Size(in.RootfsDiffSize))
	root.add("Verified: %s", in.Verified)
	if len(in.Stale) > 0 {
		root.add("Stale images: %d, not read by CRIU and not shown (ckptinspect verify lists them)", len(in.Stale))
	}
	if md := in.Metadata; md != nil {
		addMetadata(root, md)
	}
	if s := in.Stats; s != nil {
		n := root.add("CRIU dump statistics")
		n.add("Freezing time: %s", time.Duration(s.FreezingTime)*time.Microsecond)
		n.add("Frozen time: %s", time.Duration(s.FrozenTime)*time.Microsecond)
		n.add("Memdump time: %s", time.Duration(s.MemdumpTime)*time.Microsecond)
		n.add("Memwrite time: %s", time.Duration(s.MemwriteTime)*time.Microsecond)
		n.add("Pages scanned: %d", s.PagesScanned)
		n.add("Pages written: %d", s.PagesWritten)
	}
	if len(in.Mounts) > 0 {
		n := root.add("Mounts")
		for _, m := range in.Mounts {
			n.add("%s (%s, %s)", m.Destination, dash(m.Type), dash(m.Source))
		}
	}
	if in.Processes != nil {
		n := root.add("Process tree")
		for _, p := range in.Processes {
			addProcess(n, p)
		}
	}
	root.write(ew)
	return ew.err
}

// addMetadata adds the Metadata subtree of md to root.
func addMetadata(root *node, md *Metadata) {
	n := root.add("Metadata")
	n.add("Engine: %s %s", md.Engine.Name, md.Engine.Version)
	n.add("Compression: %s", md.Compression)
	n.add("Members: %d", md.Members)
	if h := md.Host; h != nil {
		hn := n.add("Host")
		hn.add("Kernel: %s", dash(h.Kernel))
		hn.add("Arch: %s", dash(h.Arch))
		hn.add("CRIU: %s", dash(h.CRIUVersion))
		hn.add("Runtime: %s", dash(h.RuntimeVersion))
		hn.add("CPU: %s", dash(strings.TrimSpace(h.CPU.Vendor+" "+h.CPU.Model)))
	}
	if o := md.Options; o != nil {
		n.add("Options: leaveRunning=%t tcpEstablished=%t fileLocks=%t preCheckpoint=%t withPrevious=%t ignoreRootfs=%t ignoreVolumes=%t",
			o.LeaveRunning, o.TCPEstablished, o.FileLocks, o.PreCheckpoint, o.WithPrevious, o.IgnoreRootfs, o.IgnoreVolumes)
	}
	if p := md.Parent; p != nil {
		pn := n.add("Parent")
		pn.add("Manifest: %s", p.Manifest)
		pn.add("Images: %s", p.Images)
		pn.add("Depth: %d", p.Depth)
	}
	if md.ParentLink {
		n.add("Parent link: checkpoint/parent -> ../pre-checkpoint")
	}
	if len(md.Annotations) > 0 {
		an := n.add("Annotations")
		keys := make([]string, 0, len(md.Annotations))
		for k := range md.Annotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			an.add("%s: %s", k, md.Annotations[k])
		}
	}
	if len(md.DeletedFiles) > 0 {
		dn := n.add("Deleted files")
		for _, f := range md.DeletedFiles {
			dn.add("%s", f)
		}
	}
}

// addProcess adds p and its children, with what is known of each, to
// parent.
func addProcess(parent *node, p *Process) {
	pn := parent.add("[%d] %s (%s)", p.PID, p.Comm, p.State)
	if p.MemoryNote != "" {
		pn.add("Memory: %s", p.MemoryNote)
	}
	if len(p.Cmdline) > 0 {
		pn.add("Command line: %s", strings.Join(p.Cmdline, " "))
	}
	if len(p.Env) > 0 {
		en := pn.add("Environment")
		for _, e := range p.Env {
			en.add("%s", e)
		}
	}
	if len(p.Files) > 0 {
		fn := pn.add("Open files")
		for _, f := range p.Files {
			fn.add("[%s %s] %s", f.Type, f.Fd, f.Path)
		}
	}
	if len(p.Sockets) > 0 {
		sn := pn.add("Sockets")
		for _, s := range p.Sockets {
			sn.add("[%d] %s", s.Fd, socketLine(s))
		}
	}
	for _, k := range p.Kids {
		addProcess(pn, k)
	}
}

func socketLine(s Socket) string {
	var parts []string
	for _, v := range []string{s.Family, s.Proto, s.SockType, s.State} {
		if v != "" {
			parts = append(parts, v)
		}
	}
	l := strings.Join(parts, " ")
	if s.Src != "" || s.Dst != "" {
		l += fmt.Sprintf(" %s -> %s", dash(s.Src), dash(s.Dst))
	}
	if s.Family == "UNIX" {
		l += fmt.Sprintf(" ino %d peer %d", s.Ino, s.Peer)
	}
	return l
}

// WriteVerify writes verify results, one block per archive.
func WriteVerify(w io.Writer, rs []*VerifyResult) error {
	ew := newErrWriter(w)
	for _, r := range rs {
		status := "ok"
		if !r.OK() {
			status = fmt.Sprintf("%d problem(s)", len(r.Problems))
		}
		ew.printf("%s: %s (%s)\n", r.Path, status, r.Format)
		for _, p := range r.Problems {
			for _, line := range strings.Split(p, "\n") {
				ew.printf("  problem: %s\n", line)
			}
		}
		for _, n := range r.Notes {
			ew.printf("  note: %s\n", n)
		}
	}
	return ew.err
}

// WriteMemUsage writes memparse's table.
func WriteMemUsage(w io.Writer, rows []MemUsage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ew := newErrWriter(tw)
	inParent := false
	for _, r := range rows {
		inParent = inParent || r.InParent > 0
	}
	if !inParent {
		ew.printf("PID\tPROCESS\tMEMORY\tSHARED MEMORY\n")
		for _, r := range rows {
			ew.printf("%d\t%s\t%s\t%s\n", r.PID, r.Comm, Size(r.Memory), Size(r.Shared))
		}
	} else {
		// An incremental checkpoint: MEMORY is the delta.
		ew.printf("PID\tPROCESS\tMEMORY\tIN PARENT\tSHARED MEMORY\n")
		for _, r := range rows {
			ew.printf("%d\t%s\t%s\t%s\t%s\n", r.PID, r.Comm, Size(r.Memory), Size(r.InParent), Size(r.Shared))
		}
	}
	if ew.err != nil {
		return ew.err
	}
	return tw.Flush()
}

// WriteMatches writes memory search results.
func WriteMatches(w io.Writer, ms []Match) error {
	ew := newErrWriter(w)
	for _, m := range ms {
		ew.printf("pid %d at %#x: %s[%s]%s\n", m.PID, m.Addr, quoteBytes(m.Before), quoteBytes(m.Match), quoteBytes(m.After))
	}
	return ew.err
}

// quoteBytes shows s with non-printable bytes escaped as \xNN.
func quoteBytes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '[' || c == ']':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	return b.String()
}
