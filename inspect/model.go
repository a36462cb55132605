package inspect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	fsimg "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/stats"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	"google.golang.org/protobuf/proto"
)

// messageFor returns a constructor of the go-criu message type of images
// with the given magic, for the images DecodeImage decodes with go-criu.
func messageFor(magic string) func() proto.Message {
	switch magic {
	case "FILES":
		return func() proto.Message { return &fdinfo.FileEntry{} }
	case "FS":
		return func() proto.Message { return &fsimg.FsEntry{} }
	case "STATS":
		return func() proto.Message { return &stats.StatsEntry{} }
	case "FDINFO":
		return func() proto.Message { return &fdinfo.FdinfoEntry{} }
	}
	return nil
}

func readPagemap(name string, data []byte) (criuimg.PagemapHead, []criuimg.PagemapEntry, error) {
	if len(data) > MaxImageSize {
		return criuimg.PagemapHead{}, nil, fmt.Errorf("decode %s: %d bytes over %d: %w", name, len(data), MaxImageSize, ErrImage)
	}
	h, e, err := criuimg.ReadPagemap(name, data)
	if err != nil {
		return h, nil, fmt.Errorf("decode %s: %w: %w", name, ErrImage, err)
	}
	return h, e, nil
}

// Process is one task of a checkpoint's process tree.
type Process struct {
	// PID, PPID, PGID and SID are the task's IDs as CRIU recorded them
	// (in the container's PID namespace).
	PID  uint32 `json:"pid"`
	PPID uint32 `json:"ppid"`
	PGID uint32 `json:"pgid"`
	SID  uint32 `json:"sid"`
	// Threads are the thread IDs of the task.
	Threads []uint32 `json:"threads,omitempty"`
	// Comm is the task's command name.
	Comm string `json:"comm"`
	// State is "alive", "zombie", "stopped" or "unknown".
	State string `json:"state"`
	// Cmdline and Env are read from the task's memory when asked for.
	Cmdline []string `json:"cmdline,omitempty"`
	Env     []string `json:"env,omitempty"`
	// MemoryNote says why Cmdline or Env is missing: "command line in
	// parent (not given)" when they live in the parent archive of an
	// incremental checkpoint and it was not given.
	MemoryNote string `json:"memoryNote,omitempty"`
	// Files and Sockets are the task's open files and sockets when asked
	// for.
	Files   []File   `json:"files,omitempty"`
	Sockets []Socket `json:"sockets,omitempty"`
	// Kids are the child tasks, sorted by PID.
	Kids []*Process `json:"children,omitempty"`
}

// File is an open file descriptor of a process (or its cwd and root).
type File struct {
	// Fd is the descriptor number, or "cwd" / "root".
	Fd string `json:"fd"`
	// Type is CRIU's file type (REG, PIPE, UNIXSK, INETSK, ...).
	Type string `json:"type"`
	// Path names the file the way `crit x DIR fds` does.
	Path string `json:"path"`
}

// Socket is a socket held by a process.
type Socket struct {
	// Fd is the descriptor number.
	Fd uint32 `json:"fd"`
	// Type is CRIU's file type (INETSK, UNIXSK, PACKETSK, NETLINKSK).
	Type string `json:"fdType"`
	// Family is IPv4, IPv6, UNIX, PACKET or NETLINK.
	Family string `json:"family,omitempty"`
	// Proto is TCP, UDP or the protocol number.
	Proto string `json:"protocol,omitempty"`
	// SockType is STREAM, DGRAM, RAW, SEQPACKET or the type number.
	SockType string `json:"type,omitempty"`
	// State is the TCP state name (LISTEN, ESTABLISHED, ...).
	State string `json:"state,omitempty"`
	// Src and Dst are the local and peer addresses (host:port), or the
	// socket path of a UNIX socket in Src.
	Src string `json:"src,omitempty"`
	Dst string `json:"dst,omitempty"`
	// Ino is the socket's inode; Peer the peer's inode (UNIX sockets).
	Ino  uint32 `json:"ino,omitempty"`
	Peer uint32 `json:"peer,omitempty"`
}

// images gives decoded views of an archive's CRIU images, caching the
// files table.
type images struct {
	a     *Archive
	files map[uint32]*fdinfo.FileEntry
}

func (im *images) data(name string) ([]byte, error) {
	b, ok := im.a.Images[name]
	if !ok {
		return nil, fmt.Errorf("find %s/%s: %w: missing", im.a.ImageDir, name, ErrImage)
	}
	return b, nil
}

func wrapImg(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrImage, err)
}

// Tree builds the process tree from pstree.img and the core images, once
// criuimg.CheckPstree (the verifier's check) accepts it. It returns the one
// root, the first task of pstree.img, with its descendants.
func (a *Archive) Tree() ([]*Process, error) {
	im := &images{a: a}
	b, err := im.data("pstree.img")
	if err != nil {
		return nil, err
	}
	if len(b) > MaxImageSize {
		return nil, fmt.Errorf("decode pstree.img: %w", ErrImage)
	}
	ents, err := criuimg.ReadPstree(b)
	if err != nil {
		return nil, wrapImg(err)
	}
	// The verifier's check of the tree (duplicate pids, cycles, missing
	// parents...): a tree it refuses is refused here too.
	if errs := criuimg.CheckPstree(ents); len(errs) > 0 {
		return nil, fmt.Errorf("decode pstree.img: %w", wrapImg(errors.Join(errs...)))
	}
	byPID := map[uint32]*Process{}
	var order []*Process
	for _, e := range ents {
		p := &Process{PID: e.PID, PPID: e.PPID, PGID: e.PGID, SID: e.SID, Threads: e.Threads, State: "unknown"}
		name := fmt.Sprintf("core-%d.img", e.PID)
		if cb, ok := a.Images[name]; ok {
			core, err := criuimg.ReadCore(name, cb)
			if err != nil {
				return nil, wrapImg(err)
			}
			if core.TC != nil {
				p.Comm = core.TC.Comm
				p.State = taskState(core.TC.TaskState)
			}
		}
		byPID[e.PID] = p
		order = append(order, p)
	}
	// CheckPstree made the first task the only root, every other task
	// reaching it through its parents.
	for _, p := range order[1:] {
		parent := byPID[p.PPID]
		parent.Kids = append(parent.Kids, p)
	}
	for _, p := range order {
		sort.Slice(p.Kids, func(i, j int) bool { return p.Kids[i].PID < p.Kids[j].PID })
	}
	return order[:1], nil
}

func taskState(s uint32) string {
	switch s {
	case criuimg.TaskAlive:
		return "alive"
	case criuimg.TaskDead:
		return "zombie"
	case criuimg.TaskStopped:
		return "stopped"
	}
	return "state-" + strconv.FormatUint(uint64(s), 10)
}

// Walk calls fn for every process of roots, parents before children.
func Walk(roots []*Process, fn func(p *Process, depth int)) {
	var w func(p *Process, d int)
	w = func(p *Process, d int) {
		fn(p, d)
		for _, k := range p.Kids {
			w(k, d+1)
		}
	}
	for _, r := range roots {
		w(r, 0)
	}
}

func (im *images) fileTable() (map[uint32]*fdinfo.FileEntry, error) {
	if im.files != nil {
		return im.files, nil
	}
	im.files = map[uint32]*fdinfo.FileEntry{}
	b, ok := im.a.Images["files.img"]
	if !ok {
		return im.files, nil
	}
	all, err := decodeAll("files.img", b, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} })
	if err != nil {
		return nil, err
	}
	for _, f := range all {
		im.files[f.GetId()] = f
	}
	return im.files, nil
}

// filesID returns the files_id of task pid (ids-<pid>.img).
func (im *images) filesID(pid uint32) (uint32, bool, error) {
	name := fmt.Sprintf("ids-%d.img", pid)
	b, ok := im.a.Images[name]
	if !ok {
		return 0, false, nil
	}
	ids, err := criuimg.ReadIDs(name, b)
	if err != nil {
		return 0, false, wrapImg(err)
	}
	return ids.FilesID, true, nil
}

func (im *images) fdinfos(pid uint32) ([]criuimg.FdinfoEntry, error) {
	fid, ok, err := im.filesID(pid)
	if err != nil || !ok {
		return nil, err
	}
	name := fmt.Sprintf("fdinfo-%d.img", fid)
	b, ok := im.a.Images[name]
	if !ok {
		return nil, nil
	}
	if len(b) > MaxImageSize {
		return nil, fmt.Errorf("decode %s: %w", name, ErrImage)
	}
	fds, err := criuimg.ReadFdinfo(name, b)
	return fds, wrapImg(err)
}

// describe names file id of type t the way crit's explore does.
func (im *images) describe(t fdinfo.FdTypes, id uint32) (string, error) {
	files, err := im.fileTable()
	if err != nil {
		return "", err
	}
	f := files[id]
	switch t {
	case fdinfo.FdTypes_REG:
		if f == nil || f.GetReg() == nil {
			return "unknown path", nil
		}
		return f.GetReg().GetName(), nil
	case fdinfo.FdTypes_PIPE:
		if f == nil || f.GetPipe() == nil {
			return "pipe[?]", nil
		}
		return fmt.Sprintf("pipe[%d]", f.GetPipe().GetPipeId()), nil
	case fdinfo.FdTypes_UNIXSK:
		if f == nil || f.GetUsk() == nil {
			return "unix[?]", nil
		}
		u := f.GetUsk()
		n := ""
		if len(u.GetName()) > 0 {
			n = " " + string(u.GetName())
		}
		return fmt.Sprintf("unix[%d (%d)%s]", u.GetIno(), u.GetPeer(), n), nil
	}
	return fmt.Sprintf("%s.%d", t.String(), id), nil
}

// Files returns the open files of every process with state (alive or
// stopped), plus its cwd and root, by PID.
func (a *Archive) Files() (map[uint32][]File, error) {
	roots, err := a.Tree()
	if err != nil {
		return nil, err
	}
	im := &images{a: a}
	out := map[uint32][]File{}
	var ferr error
	Walk(roots, func(p *Process, _ int) {
		if ferr != nil || p.State == "zombie" {
			return
		}
		fds, err := im.fdinfos(p.PID)
		if err != nil {
			ferr = err
			return
		}
		var files []File
		for _, fd := range fds {
			t := fdinfo.FdTypes(fd.Type)
			desc, err := im.describe(t, fd.ID)
			if err != nil {
				ferr = err
				return
			}
			files = append(files, File{Fd: strconv.FormatUint(uint64(fd.Fd), 10), Type: t.String(), Path: desc})
		}
		name := fmt.Sprintf("fs-%d.img", p.PID)
		if b, ok := a.Images[name]; ok {
			fs, err := decodeOne(name, b, func() *fsimg.FsEntry { return &fsimg.FsEntry{} })
			if err != nil {
				ferr = err
				return
			}
			cwd, _ := im.describe(fdinfo.FdTypes_REG, fs.GetCwdId())
			root, _ := im.describe(fdinfo.FdTypes_REG, fs.GetRootId())
			files = append(files, File{Fd: "cwd", Type: "REG", Path: cwd}, File{Fd: "root", Type: "REG", Path: root})
		}
		out[p.PID] = files
	})
	return out, ferr
}

// Sockets returns the sockets of every process with state, by PID.
func (a *Archive) Sockets() (map[uint32][]Socket, error) {
	roots, err := a.Tree()
	if err != nil {
		return nil, err
	}
	im := &images{a: a}
	files, err := im.fileTable()
	if err != nil {
		return nil, err
	}
	out := map[uint32][]Socket{}
	var ferr error
	Walk(roots, func(p *Process, _ int) {
		if ferr != nil || p.State == "zombie" {
			return
		}
		fds, err := im.fdinfos(p.PID)
		if err != nil {
			ferr = err
			return
		}
		for _, fd := range fds {
			f := files[fd.ID]
			if f == nil {
				continue
			}
			s := Socket{Fd: fd.Fd, Type: fdinfo.FdTypes(fd.Type).String()}
			switch {
			case f.GetIsk() != nil:
				k := f.GetIsk()
				s.Family = family(k.GetFamily())
				s.Proto = protocol(k.GetProto())
				s.SockType = sockType(k.GetType())
				s.State = tcpState(k.GetState())
				s.Src = hostPort(k.GetSrcAddr(), k.GetSrcPort())
				s.Dst = hostPort(k.GetDstAddr(), k.GetDstPort())
				s.Ino = k.GetIno()
			case f.GetUsk() != nil:
				u := f.GetUsk()
				s.Family = "UNIX"
				s.SockType = sockType(u.GetType())
				s.State = tcpState(u.GetState())
				s.Src = string(u.GetName())
				s.Ino, s.Peer = u.GetIno(), u.GetPeer()
			case f.GetPsk() != nil:
				s.Family = "PACKET"
				s.Proto = strconv.FormatUint(uint64(f.GetPsk().GetProtocol()), 10)
			case f.GetNlsk() != nil:
				s.Family = "NETLINK"
				s.Proto = strconv.FormatUint(uint64(f.GetNlsk().GetProtocol()), 10)
				s.State = tcpState(f.GetNlsk().GetState())
			default:
				continue
			}
			out[p.PID] = append(out[p.PID], s)
		}
	})
	return out, ferr
}

func family(f uint32) string {
	switch f {
	case 2:
		return "IPv4"
	case 10:
		return "IPv6"
	case 1:
		return "UNIX"
	}
	return strconv.FormatUint(uint64(f), 10)
}

func protocol(p uint32) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 0:
		return ""
	}
	return strconv.FormatUint(uint64(p), 10)
}

func sockType(t uint32) string {
	switch t {
	case 1:
		return "STREAM"
	case 2:
		return "DGRAM"
	case 3:
		return "RAW"
	case 5:
		return "SEQPACKET"
	}
	return strconv.FormatUint(uint64(t), 10)
}

var tcpStates = []string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

func tcpState(s uint32) string {
	if int(s) < len(tcpStates) && s > 0 {
		return tcpStates[s]
	}
	return strconv.FormatUint(uint64(s), 10)
}

// hostPort formats an address of CRIU's u32 words (network byte order in
// each word) and a port.
func hostPort(words []uint32, port uint32) string {
	var addr netip.Addr
	switch len(words) {
	case 1:
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], words[0])
		addr = netip.AddrFrom4(b)
	case 4:
		var b [16]byte
		for i, w := range words {
			binary.LittleEndian.PutUint32(b[4*i:], w)
		}
		addr = netip.AddrFrom16(b).Unmap()
	default:
		return ""
	}
	return netip.AddrPortFrom(addr, uint16(port)).String()
}

// Mount is a mount of the container's OCI spec.
type Mount struct {
	// Destination is the mount point in the container; Type, Source and
	// Options are the spec's.
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// spec is the part of an OCI runtime spec the inspector reads.
type spec struct {
	Process *struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
		Cwd  string   `json:"cwd"`
	} `json:"process"`
	Mounts      []Mount           `json:"mounts"`
	Annotations map[string]string `json:"annotations"`
	Hostname    string            `json:"hostname"`
}

func (a *Archive) spec() (*spec, error) {
	b, ok := a.Meta[format.SpecName]
	if !ok {
		return nil, nil
	}
	var s spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", format.SpecName, err)
	}
	return &s, nil
}

// Mounts returns the mounts of the container's spec.dump.
func (a *Archive) Mounts() ([]Mount, error) {
	s, err := a.spec()
	if err != nil || s == nil {
		return nil, err
	}
	return s.Mounts, nil
}

// DumpStats are CRIU's dump statistics (stats-dump).
type DumpStats struct {
	// The times are in microseconds, as CRIU records them.
	FreezingTime       uint32 `json:"freezingTimeUs"`
	FrozenTime         uint32 `json:"frozenTimeUs"`
	MemdumpTime        uint32 `json:"memdumpTimeUs"`
	MemwriteTime       uint32 `json:"memwriteTimeUs"`
	PagesScanned       uint64 `json:"pagesScanned"`
	PagesSkippedParent uint64 `json:"pagesSkippedParent"`
	PagesWritten       uint64 `json:"pagesWritten"`
	PagesLazy          uint64 `json:"pagesLazy"`
}

// Stats decodes stats-dump; nil when the archive has none.
func (a *Archive) Stats() (*DumpStats, error) {
	b, ok := a.Meta[format.StatsName]
	if !ok {
		return nil, nil
	}
	e, err := decodeOne("stats-dump", b, func() *stats.StatsEntry { return &stats.StatsEntry{} })
	if err != nil {
		return nil, err
	}
	d := e.GetDump()
	if d == nil {
		return nil, fmt.Errorf("decode stats-dump: no dump statistics: %w", ErrImage)
	}
	return &DumpStats{FreezingTime: d.GetFreezingTime(), FrozenTime: d.GetFrozenTime(), MemdumpTime: d.GetMemdumpTime(),
		MemwriteTime: d.GetMemwriteTime(), PagesScanned: d.GetPagesScanned(), PagesSkippedParent: d.GetPagesSkippedParent(),
		PagesWritten: d.GetPagesWritten(), PagesLazy: d.GetPagesLazy()}, nil
}

// Info is the identity of a checkpointed container, from the manifest of
// a v1 archive or the config.dump and spec.dump of a legacy one.
type Info struct {
	// Name, ID, Image, ImageID and Runtime identify the container and
	// its image.
	Name    string `json:"name"`
	ID      string `json:"id"`
	Image   string `json:"image"`
	ImageID string `json:"imageID,omitempty"`
	Runtime string `json:"runtime"`
	// Created is when the container was created, from config.dump
	// (ckpt's created_at, libpod's createdTime); zero when unknown, as in
	// a v1 archive's Show that did not read config.dump. Checkpointed is
	// when the checkpoint was taken: the manifest's created (v1), or
	// config.dump's checkpointedTime (CRI-O, containerd), else its tar
	// header time (podman writes it right before CRIU dumps), else the
	// first member's time (legacy).
	Created      time.Time `json:"created,omitzero"`
	Checkpointed time.Time `json:"checkpointed,omitzero"`
	// Engine is ckpt, Podman, CRI-O or containerd; Format "ckpt v1" or
	// "legacy".
	Engine string `json:"engine"`
	Format string `json:"format"`
	// Pod, Namespace and IP come from the Kubernetes annotations of CRI-O
	// and containerd archives.
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// legacyConfig is the part of a config.dump (podman's ContainerConfig or
// checkpointctl's reduced struct used by CRI-O and containerd) read here.
type legacyConfig struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	RootfsImage     string    `json:"rootfsImage"`
	RootfsImageName string    `json:"rootfsImageName"`
	RootfsImageID   string    `json:"rootfsImageID"`
	RootfsImageRef  string    `json:"rootfsImageRef"`
	Runtime         string    `json:"runtime"`
	OCIRuntime      string    `json:"ociRuntime"`
	CreatedTime     time.Time `json:"createdTime"`
	Checkpointed    time.Time `json:"checkpointedTime"`
}

// engineOf names the engine that wrote a legacy archive from spec.dump's
// io.container.manager annotation, as checkpointctl does.
func engineOf(s *spec) string {
	if s == nil {
		return "unknown"
	}
	switch s.Annotations["io.container.manager"] {
	case "libpod":
		return "Podman"
	case "cri-o":
		return "CRI-O"
	}
	return "containerd"
}

// Info returns the container's identity.
func (a *Archive) Info() (Info, error) {
	if !a.Legacy {
		in := manifestInfo(a.Manifest)
		in.Created = ckptCreated(a.Meta[format.ConfigName])
		return in, nil
	}
	in := Info{Format: "legacy"}
	s, err := a.spec()
	if err != nil {
		return in, err
	}
	in.Engine = engineOf(s)
	if b, ok := a.Meta[format.ConfigName]; ok {
		var c legacyConfig
		if err := json.Unmarshal(b, &c); err != nil {
			return in, fmt.Errorf("parse %s: %w", format.ConfigName, err)
		}
		in.Name, in.ID, in.Runtime = c.Name, c.ID, firstOf(c.Runtime, c.OCIRuntime)
		in.Image = firstOf(c.RootfsImageName, c.RootfsImage)
		in.ImageID = firstOf(c.RootfsImageID, c.RootfsImageRef)
		in.Created = known(c.CreatedTime)
		in.Checkpointed = known(c.Checkpointed)
	}
	// Podman's config.dump is its ContainerConfig, which has no checkpoint
	// time (that is container state), but podman writes the file right
	// before CRIU dumps; the first member's time (podman's artifacts/) is
	// the container's creation.
	for _, t := range []time.Time{a.MetaTimes[format.ConfigName], a.Manifest.Created} {
		if in.Checkpointed.IsZero() {
			in.Checkpointed = known(t)
		}
	}
	// Kubernetes engines name the container in the spec's annotations,
	// as checkpointctl reads them.
	if k, ok := format.ReadKube(a.Meta[format.SpecName]); ok {
		in.Name, in.Pod, in.Namespace, in.IP = k.Container, k.Pod, k.Namespace, k.IP
	}
	return in, nil
}

// known returns t in UTC, or the zero time for an unset one (Go's zero
// time, the Unix epoch of a tar without times).
func known(t time.Time) time.Time {
	if t.Year() <= 1970 {
		return time.Time{}
	}
	return t.UTC()
}

// ckptCreated returns the container's creation time from the config.dump
// of a v1 archive: ckpt's own record (created_at) or, from another
// engine, libpod's ContainerConfig (createdTime); zero when unknown.
func ckptCreated(b []byte) time.Time {
	var c struct {
		CreatedAt   time.Time `json:"created_at"`
		CreatedTime time.Time `json:"createdTime"`
	}
	if len(b) == 0 || json.Unmarshal(b, &c) != nil {
		return time.Time{} // the manifest, not config.dump, identifies the container
	}
	if t := known(c.CreatedAt); !t.IsZero() {
		return t
	}
	return known(c.CreatedTime)
}

func manifestInfo(m *format.Manifest) Info {
	c := m.Container
	return Info{Name: c.Name, ID: c.ID, Image: c.Image, ImageID: c.ImageID, Runtime: c.Runtime,
		Checkpointed: m.Created.UTC(), Engine: "ckpt", Format: fmt.Sprintf("ckpt v%d", m.Version)}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// sizes sums member sizes: the CRIU images, the pages images, the rootfs
// diff.
func sizes(m *format.Manifest) (ckpt, pages, rootfs int64) {
	for _, e := range m.Members {
		dir, base, _ := strings.Cut(e.Name, "/")
		if dir == format.CheckpointDir || dir == format.PreCheckpointDir {
			ckpt += e.Size
			if isPagesImage(base) {
				pages += e.Size
			}
		}
		if e.Name == format.RootfsDiffName {
			rootfs = e.Size
		}
	}
	return
}
