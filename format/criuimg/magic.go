package criuimg

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v8/magic"
)

// Header magics of CRIU images v1.1 (criu/include/magic.h).
const (
	// MagicCommon (IMG_COMMON) opens every image except inventory.img,
	// the service images and raw images; the image's own magic follows it.
	MagicCommon uint32 = 0x54564319
	// MagicService (IMG_SERVICE) opens the service images stats-* and
	// irmap-cache; the image's own magic follows it.
	MagicService uint32 = 0x55105940
	// MagicInventory opens inventory.img, with no MagicCommon before it.
	MagicInventory uint32 = 0x58313116
)

// Kind classifies an image by its file name.
type Kind int

const (
	// KindUnknown is a name CRIU does not give to any image.
	KindUnknown Kind = iota
	// KindProto is an image of protobuf entries that starts with a magic.
	KindProto
	// KindRaw is an image without magic or entries: page data (pages-N.img)
	// or the output of another tool (ip, iptables, tar).
	KindRaw
)

// String returns "unknown", "proto" or "raw".
func (k Kind) String() string {
	switch k {
	case KindProto:
		return "proto"
	case KindRaw:
		return "raw"
	}
	return "unknown"
}

// magicByName and nameByMagic hold go-criu's generated table of CRIU
// magics, as uint32 (every CRIU magic fits).
var (
	magicByName = map[string]uint32{}
	nameByMagic = map[uint32]string{}
)

func init() {
	m := magic.LoadMagic()
	for name, v := range m.ByName {
		if v > 0xffffffff || name == "CRTOOLS_IMAGES_V1_1" {
			continue
		}
		magicByName[name] = uint32(v)
		if name != "IMG_COMMON" && name != "IMG_SERVICE" {
			nameByMagic[uint32(v)] = name
		}
	}
}

// raw marks a name pattern as a raw image in the tables below.
const raw = ""

// fixedNames maps the image names without a number, less ".img", to their
// magic name (criu/image-desc.c imgset_template).
var fixedNames = map[string]string{
	"inventory":     "INVENTORY",
	"reg-files":     "REG_FILES",
	"ext-files":     "EXT_FILES",
	"ns-files":      "NS_FILES",
	"eventfd":       "EVENTFD_FILE",
	"eventpoll":     "EVENTPOLL_FILE",
	"eventpoll-tfd": "EVENTPOLL_TFD",
	"signalfd":      "SIGNALFD",
	"inotify":       "INOTIFY_FILE",
	"inotify-wd":    "INOTIFY_WD",
	"fanotify":      "FANOTIFY_FILE",
	"fanotify-mark": "FANOTIFY_MARK",
	"pipes":         "PIPES",
	"pipes-data":    "PIPES_DATA",
	"fifo":          "FIFO",
	"fifo-data":     "FIFO_DATA",
	"pstree":        "PSTREE",
	"unixsk":        "UNIXSK",
	"inetsk":        "INETSK",
	"packetsk":      "PACKETSK",
	"netlinksk":     "NETLINK_SK",
	"sk-queues":     "SK_QUEUES",
	"remap-fpath":   "REMAP_FPATH",
	"memfd":         "MEMFD_INODE",
	"binfmt-misc":   "BINFMT_MISC",
	"tty":           "TTY_FILES",
	"tty-info":      "TTY_INFO",
	"tty-data":      "TTY_DATA",
	"filelocks":     "FILE_LOCKS",
	"tunfile":       "TUNFILE",
	"cgroup":        "CGROUP",
	"timerfd":       "TIMERFD",
	"cpuinfo":       "CPUINFO",
	"seccomp":       "SECCOMP",
	"files":         "FILES",
	"bpfmap-file":   "BPFMAP_FILE",
	"bpfmap-data":   "BPFMAP_DATA",
	"apparmor":      "APPARMOR",
}

// numberedNames maps the prefixes of "<prefix>-<decimal>.img" names to
// their magic name, or to raw.
var numberedNames = map[string]string{
	"fdinfo":            "FDINFO",
	"pagemap":           "PAGEMAP",
	"pagemap-shmem":     "PAGEMAP",
	"pagemap-secretmem": "PAGEMAP",
	"core":              "CORE",
	"ids":               "IDS",
	"mm":                "MM",
	"vmas":              "VMAS",
	"sigacts":           "SIGACT",
	"itimers":           "ITIMERS",
	"posix-timers":      "POSIX_TIMERS",
	"creds":             "CREDS",
	"utsns":             "UTSNS",
	"ipcns-var":         "IPC_VAR",
	"ipcns-shm":         "IPCNS_SHM",
	"ipcns-msg":         "IPCNS_MSG",
	"ipcns-sem":         "IPCNS_SEM",
	"fs":                "FS",
	"mountpoints":       "MNTS",
	"netdev":            "NETDEV",
	"netns":             "NETNS",
	"autofs":            "AUTOFS",
	"binfmt-misc":       "BINFMT_MISC",
	"rlimit":            "RLIMIT",
	"signal-s":          "SIGNAL",
	"signal-p":          "SIGNAL",
	"userns":            "USERNS",
	"timens":            "TIMENS",
	"pidns":             "PIDNS",
	"pages":             raw,
	"ifaddr":            raw,
	"route":             raw,
	"route6":            raw,
	"rule":              raw,
	"iptables":          raw,
	"ip6tables":         raw,
	"nftables":          raw,
	"netns-ct":          raw,
	"netns-exp":         raw,
}

// hexNames maps the prefixes of "<prefix>-<hex>.img" names to their magic.
var hexNames = map[string]string{
	"ghost-file": "GHOST_FILE",
	"tcp-stream": "TCP_STREAM",
}

// ExpectedMagic returns the magic name CRIU gives the image called name
// (a base name such as "core-1.img") and the image's kind. For raw images
// and unknown names the magic name is empty.
func ExpectedMagic(name string) (magicName string, kind Kind) {
	m, kind, _ := lookupName(name)
	return m, kind
}

// lookupName is ExpectedMagic that also returns the number in the name,
// or -1 when the name has none (or a hex one).
func lookupName(name string) (string, Kind, int64) {
	switch {
	case name == "irmap-cache":
		return "IRMAP_CACHE", KindProto, -1
	case strings.HasPrefix(name, "stats-") && len(name) > len("stats-") && !strings.Contains(name, "."):
		return "STATS", KindProto, -1
	case strings.HasSuffix(name, ".tar.gz"):
		base := strings.TrimSuffix(name, ".tar.gz")
		for _, p := range []string{"tmpfs-dev", "tmpfs"} {
			if n, ok := cutNumber(base, p, 10); ok {
				return raw, KindRaw, n
			}
		}
		return raw, KindUnknown, -1
	}
	base, ok := strings.CutSuffix(name, ".img")
	if !ok {
		return raw, KindUnknown, -1
	}
	if m, ok := fixedNames[base]; ok {
		return m, KindProto, -1
	}
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return raw, KindUnknown, -1
	}
	prefix := base[:i]
	if m, ok := numberedNames[prefix]; ok {
		if n, ok := cutNumber(base, prefix, 10); ok {
			if m == raw {
				return raw, KindRaw, n
			}
			return m, KindProto, n
		}
	}
	if m, ok := hexNames[prefix]; ok {
		if _, ok := cutNumber(base, prefix, 16); ok {
			return m, KindProto, -1
		}
	}
	return raw, KindUnknown, -1
}

// cutNumber reports whether s is prefix + "-" + a number in base (at most
// 16 digits, no sign) and returns the number (decimal only).
func cutNumber(s, prefix string, base int) (int64, bool) {
	rest, ok := strings.CutPrefix(s, prefix+"-")
	if !ok || rest == "" || len(rest) > 16 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		default:
			return 0, false
		}
		n = n*int64(base) + d
	}
	if base != 10 {
		return -1, true
	}
	return n, true
}

// MagicInfo describes an image's header.
type MagicInfo struct {
	// Name is the CRIU name of the image's magic, such as "CORE"; it is
	// empty for raw images.
	Name string
	// Value is the image's own magic; 0 for raw images.
	Value uint32
	// Prefix is [MagicCommon] or [MagicService] when the header starts with
	// one, else 0 (inventory.img and raw images).
	Prefix uint32
	// HeaderSize is the number of header bytes before the first entry: 8,
	// 4 for inventory.img, 0 for raw images.
	HeaderSize int
}

// Raw reports whether the image is a raw image, without magic or entries.
func (m MagicInfo) Raw() bool { return m.HeaderSize == 0 }

// Magic reads the header at the start of the image called name (a base
// name such as "core-1.img"); head holds the file's first bytes, at least
// 8 of them unless the file is shorter. A name [ExpectedMagic] knows must
// carry its magic and the right prefix; raw images have no header and
// Magic returns a zero-size header for them without looking at head. An
// unknown name may carry any magic in CRIU's table. The error wraps
// [ErrTruncated] or [ErrMagic].
func Magic(name string, head []byte) (MagicInfo, error) {
	want, kind := ExpectedMagic(name)
	if kind == KindRaw {
		return MagicInfo{}, nil
	}
	if len(head) < 4 {
		return MagicInfo{}, fmt.Errorf("read magic: %w", ErrTruncated)
	}
	info := MagicInfo{Value: binary.LittleEndian.Uint32(head), HeaderSize: 4}
	if info.Value == MagicCommon || info.Value == MagicService {
		if want == "INVENTORY" {
			return MagicInfo{}, fmt.Errorf("check magic INVENTORY: header prefix %#x, want none: %w", info.Value, ErrMagic)
		}
		if len(head) < 8 {
			return MagicInfo{}, fmt.Errorf("read magic: %w", ErrTruncated)
		}
		info.Prefix = info.Value
		info.Value = binary.LittleEndian.Uint32(head[4:])
		info.HeaderSize = 8
	}
	got, ok := nameByMagic[info.Value]
	if !ok {
		return MagicInfo{}, fmt.Errorf("read magic %#x: %w", info.Value, ErrMagic)
	}
	info.Name = got
	if kind == KindProto && got != want {
		return MagicInfo{}, fmt.Errorf("check magic: got %s, want %s: %w", got, want, ErrMagic)
	}
	var wantPrefix uint32
	switch got {
	case "INVENTORY":
	case "STATS", "IRMAP_CACHE":
		wantPrefix = MagicService
	default:
		wantPrefix = MagicCommon
	}
	if info.Prefix != wantPrefix {
		return MagicInfo{}, fmt.Errorf("check magic %s: header prefix %#x, want %#x: %w", got, info.Prefix, wantPrefix, ErrMagic)
	}
	return info, nil
}
