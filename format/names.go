package format

import (
	"path"
	"strings"
	"unicode/utf8"
)

// Member names of the archive. The podman-compatible ones equal the names
// in checkpointctl's lib (names_test.go checks), so podman, checkpointctl and
// ckpt agree without format importing checkpointctl.
const (
	// ManifestName is the first member of every v1 archive.
	ManifestName = "ckpt.manifest.json"
	// ConfigName holds the engine's container configuration (podman: libpod
	// ContainerConfig JSON).
	ConfigName = "config.dump"
	// SpecName holds the OCI runtime spec the container ran with.
	SpecName = "spec.dump"
	// NetworkStatusName holds the container's network state.
	NetworkStatusName = "network.status"
	// StatsName holds CRIU's dump statistics (stats-dump image).
	StatsName = "stats-dump"
	// RootfsDiffName is the tar of files added or modified in the container
	// layer.
	RootfsDiffName = "rootfs-diff.tar"
	// DeletedFilesName is the JSON array of paths deleted from the image.
	DeletedFilesName = "deleted.files"
	// DevShmName is the tar of the container's /dev/shm.
	DevShmName = "devshm-checkpoint.tar"
	// CPUInfoName holds `criu cpuinfo dump`'s image of the source CPU.
	CPUInfoName = "cpuinfo.img"
	// DumpLogName is CRIU's dump log, kept for diagnosis.
	DumpLogName = "dump.log"
	// ContainerLogName is the container's output log (podman's ctr.log).
	ContainerLogName = "ctr.log"
	// CheckpointDir holds the CRIU images of the checkpoint.
	CheckpointDir = "checkpoint"
	// PreCheckpointDir holds the CRIU images of a pre-checkpoint.
	PreCheckpointDir = "pre-checkpoint"
	// VolumesDir holds one tar per named volume, volumes/<name>.tar.
	VolumesDir = "volumes"
	// ParentLinkName is the symlink CRIU follows to a checkpoint's parent
	// images; podman archives carry it, v1 archives record the parent in
	// the manifest and Extract creates the link.
	ParentLinkName = CheckpointDir + "/parent"
	// ParentLinkTarget is the only target ParentLinkName may have.
	ParentLinkTarget = "../" + PreCheckpointDir
)

// Kind classifies a member by its name.
type Kind string

// The member kinds. KindOther is only found in legacy archives.
const (
	KindManifest      Kind = "manifest"
	KindConfig        Kind = "config"
	KindSpec          Kind = "spec"
	KindNetworkStatus Kind = "network-status"
	KindStats         Kind = "stats"
	KindRootfsDiff    Kind = "rootfs-diff"
	KindDeletedFiles  Kind = "deleted-files"
	KindDevShm        Kind = "devshm"
	KindCPUInfo       Kind = "cpuinfo"
	KindLog           Kind = "log"
	KindImage         Kind = "criu-image"
	KindPreImage      Kind = "pre-checkpoint-image"
	KindVolume        Kind = "volume"
	KindOther         Kind = "other"
)

var topLevelKinds = map[string]Kind{
	ManifestName:      KindManifest,
	ConfigName:        KindConfig,
	SpecName:          KindSpec,
	NetworkStatusName: KindNetworkStatus,
	StatsName:         KindStats,
	RootfsDiffName:    KindRootfsDiff,
	DeletedFilesName:  KindDeletedFiles,
	DevShmName:        KindDevShm,
	CPUInfoName:       KindCPUInfo,
	DumpLogName:       KindLog,
	ContainerLogName:  KindLog,
}

// KindOf returns the kind of the member called name, or KindOther when a
// v1 archive may not hold such a name.
func KindOf(name string) Kind {
	if k, ok := topLevelKinds[name]; ok {
		return k
	}
	dir, file, ok := strings.Cut(name, "/")
	if !ok || file == "" || strings.Contains(file, "/") {
		return KindOther
	}
	switch dir {
	case CheckpointDir:
		return KindImage
	case PreCheckpointDir:
		return KindPreImage
	case VolumesDir:
		if v, ok := strings.CutSuffix(file, ".tar"); ok && ValidVolumeName(v) {
			return KindVolume
		}
	}
	return KindOther
}

// ValidVolumeName reports whether v may name a volume in volumes/<v>.tar:
// 1 to 128 characters of [A-Za-z0-9_.-], starting with a letter or digit
// (podman's rule for volume names).
func ValidVolumeName(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for i, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// CheckName reports whether name is acceptable as a member name: valid
// UTF-8 without NUL, control characters or backslashes, relative, clean
// (path.Clean(name) == name, no "." or ".." elements), at most
// MaxNameLength bytes and MaxNameDepth elements. The error wraps
// ErrInsecurePath.
func CheckName(name string) error {
	switch {
	case name == "":
		return errorf(ErrInsecurePath, "empty name")
	case len(name) > MaxNameLength:
		return errorf(ErrInsecurePath, "name of %d bytes is longer than %d", len(name), MaxNameLength)
	case !utf8.ValidString(name):
		return errorf(ErrInsecurePath, "name %q is not valid UTF-8", name)
	case strings.ContainsAny(name, "\\"):
		return errorf(ErrInsecurePath, "name %q contains a backslash", name)
	case strings.HasPrefix(name, "/"):
		return errorf(ErrInsecurePath, "name %q is absolute", name)
	case path.Clean(name) != name || name == ".":
		return errorf(ErrInsecurePath, "name %q is not clean", name)
	case name == ".." || strings.HasPrefix(name, "../"):
		return errorf(ErrInsecurePath, "name %q leaves the archive root", name)
	case strings.Count(name, "/")+1 > MaxNameDepth:
		return errorf(ErrInsecurePath, "name %q is deeper than %d", name, MaxNameDepth)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return errorf(ErrInsecurePath, "name %q contains a control character", name)
		}
	}
	return nil
}

// nameSet detects duplicate names, case-fold collisions and names used both
// as a file and as a directory (x/mod/zip's collisionChecker).
type nameSet struct {
	files map[string]string // folded name -> name, regular files
	dirs  map[string]string // folded name -> name, directories (explicit or implied)
}

func newNameSet() *nameSet {
	return &nameSet{files: map[string]string{}, dirs: map[string]string{}}
}

// add records name; isDir says whether it is a directory entry.
func (s *nameSet) add(name string, isDir bool) error {
	fold := strings.ToLower(name)
	if prev, ok := s.files[fold]; ok {
		if prev == name {
			return errorf(ErrFormat, "duplicate member %q", name)
		}
		return errorf(ErrInsecurePath, "%q and %q differ only in case", prev, name)
	}
	if prev, ok := s.dirs[fold]; ok {
		if isDir && prev == name {
			return nil // an explicit entry for a directory already implied
		}
		if prev != name {
			return errorf(ErrInsecurePath, "%q and %q differ only in case", prev, name)
		}
		return errorf(ErrFormat, "%q is both a file and a directory", name)
	}
	if isDir {
		s.dirs[fold] = name
	} else {
		s.files[fold] = name
	}
	// Every parent is a directory.
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		fd := strings.ToLower(d)
		if prev, ok := s.files[fd]; ok {
			return errorf(ErrFormat, "%q is both a file and a directory", prev)
		}
		if prev, ok := s.dirs[fd]; ok {
			if prev != d {
				return errorf(ErrInsecurePath, "%q and %q differ only in case", prev, d)
			}
			continue
		}
		s.dirs[fd] = d
	}
	return nil
}
