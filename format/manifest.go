package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Version is the major version of the archive format this package writes
// and the newest it reads. Readers refuse a larger major version with
// ErrUnsupportedVersion; additions that old readers may ignore are not
// allowed within a major version (the manifest is a closed schema).
const Version = 1

// Manifest is the first member of a v1 archive: what the archive holds and
// where it came from. Members is the closed list of every other member, in
// the order they are stored (sorted by name).
type Manifest struct {
	// Version is the format's major version, [Version] for archives written
	// by this package.
	Version int `json:"version"`
	// Created is when the checkpoint was taken, UTC, second precision. It is
	// also the modification time of every tar header in the archive.
	Created time.Time `json:"created"`
	// Engine names the program that wrote the archive.
	Engine Engine `json:"engine"`
	// Container identifies the checkpointed container.
	Container Container `json:"container"`
	// Host describes the machine the checkpoint was taken on; restore uses
	// it to refuse an incompatible target before CRIU runs.
	Host Host `json:"host"`
	// Options are the checkpoint options used.
	Options Options `json:"options"`
	// Parent references the pre-checkpoint this checkpoint's images depend
	// on (CRIU's parent images); nil for a full checkpoint.
	Parent *Parent `json:"parent,omitempty"`
	// Members lists every member but the manifest, sorted by name.
	Members []Member `json:"members"`
}

// Engine names the program that wrote an archive.
type Engine struct {
	// Name is the program, e.g. "ckpt".
	Name string `json:"name"`
	// Version is its version.
	Version string `json:"version"`
}

// Container identifies a checkpointed container.
type Container struct {
	// Name is the container's name.
	Name string `json:"name"`
	// ID is the container's ID.
	ID string `json:"id"`
	// Image is the name the container's image was referred to by.
	Image string `json:"image,omitempty"`
	// ImageID is the image's ID in the image store.
	ImageID string `json:"imageID,omitempty"`
	// Runtime is the OCI runtime the container ran under, e.g. "runc".
	Runtime string `json:"runtime,omitempty"`
}

// Host describes the source machine of a checkpoint.
type Host struct {
	// Kernel is the kernel release (uname -r).
	Kernel string `json:"kernel,omitempty"`
	// Arch is the Go architecture name, e.g. "amd64".
	Arch string `json:"arch,omitempty"`
	// CRIUVersion is the version of CRIU that dumped the images.
	CRIUVersion string `json:"criuVersion,omitempty"`
	// RuntimeVersion is the OCI runtime's version.
	RuntimeVersion string `json:"runtimeVersion,omitempty"`
	// CPU describes the source CPU; the member cpuinfo.img, when present,
	// holds CRIU's own record for `criu cpuinfo check`.
	CPU CPU `json:"cpu"`
}

// CPU describes a processor.
type CPU struct {
	// Vendor is the vendor ID, e.g. "GenuineIntel".
	Vendor string `json:"vendor,omitempty"`
	// Model is the model name.
	Model string `json:"model,omitempty"`
	// Flags are the feature flags, sorted.
	Flags []string `json:"flags,omitempty"`
}

// Options records the checkpoint options used; names follow podman's flags.
type Options struct {
	LeaveRunning   bool   `json:"leaveRunning,omitempty"`
	TCPEstablished bool   `json:"tcpEstablished,omitempty"`
	FileLocks      bool   `json:"fileLocks,omitempty"`
	PreCheckpoint  bool   `json:"preCheckpoint,omitempty"`
	WithPrevious   bool   `json:"withPrevious,omitempty"`
	IgnoreRootfs   bool   `json:"ignoreRootfs,omitempty"`
	IgnoreVolumes  bool   `json:"ignoreVolumes,omitempty"`
	Compression    string `json:"compression,omitempty"`
}

// Parent references the parent of an incremental checkpoint.
type Parent struct {
	// Manifest is the digest of the parent archive's manifest member, as
	// stored; it identifies the parent whatever its compression.
	Manifest Digest `json:"manifest"`
	// Images is the digest of the parent's image set (see ImagesDigest).
	Images Digest `json:"images"`
	// Depth is the length of the chain below this checkpoint: 1 when the
	// parent is a full checkpoint. At most MaxParentDepth.
	Depth int `json:"depth"`
}

// Member describes one member of an archive.
type Member struct {
	// Name is the member's path in the archive (see CheckName).
	Name string `json:"name"`
	// Kind is KindOf(Name).
	Kind Kind `json:"type"`
	// Size is the member's length in bytes.
	Size int64 `json:"size"`
	// Digest is the sha256 of the member's content.
	Digest Digest `json:"digest"`
}

// Member returns the manifest entry called name, or nil.
func (m *Manifest) Member(name string) *Member {
	if i := m.index(name); i >= 0 {
		return &m.Members[i]
	}
	return nil
}

// index returns the position of name in the sorted Members, or -1.
func (m *Manifest) index(name string) int {
	i, ok := slices.BinarySearchFunc(m.Members, name, func(e Member, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return -1
	}
	return i
}

// TotalSize returns the sum of the members' sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, e := range m.Members {
		n += e.Size
	}
	return n
}

// Validate checks the manifest's rules: the known major version, a creation
// time in UTC with second precision, an engine name, members sorted by name without duplicates or
// collisions, each with a valid name, a kind matching its name, a size within
// limits and a digest; a parent reference with valid digests and a depth in
// 1..MaxParentDepth. It returns the first violation, wrapping ErrManifest,
// ErrUnsupportedVersion, ErrInsecurePath or ErrTooLarge.
func (m *Manifest) Validate() error {
	switch {
	case m.Version > StreamVersion:
		return fmt.Errorf("%w (archive version %d, this reader knows %d): upgrade ckpt to read it", ErrUnsupportedVersion, m.Version, StreamVersion)
	case m.Version == StreamVersion && len(m.Members) > 0:
		return errorf(ErrManifest, "a streamed (version %d) manifest lists no members: its index does", StreamVersion)
	case m.Version < 1:
		return errorf(ErrManifest, "version %d is not a valid format version", m.Version)
	case m.Created.IsZero():
		return errorf(ErrManifest, "no creation time")
	case m.Created.Nanosecond() != 0 || zoneOffset(m.Created) != 0:
		return errorf(ErrManifest, "creation time %s is not UTC with second precision", m.Created.Format(time.RFC3339Nano))
	case m.Engine.Name == "":
		return errorf(ErrManifest, "no engine name")
	case len(m.Members) > MaxMembers:
		return errorf(ErrTooLarge, "%d members, more than %d", len(m.Members), MaxMembers)
	}
	if m.Parent != nil {
		p := m.Parent
		if _, err := ParseDigest(string(p.Manifest)); err != nil {
			return errorf(ErrManifest, "parent manifest: %v", err)
		}
		if _, err := ParseDigest(string(p.Images)); err != nil {
			return errorf(ErrManifest, "parent images: %v", err)
		}
		if p.Depth < 1 || p.Depth > MaxParentDepth {
			return fmt.Errorf("%w: parent depth %d is outside 1..%d", ErrParent, p.Depth, MaxParentDepth)
		}
	}
	names := newNameSet()
	var total int64
	for i, e := range m.Members {
		if err := CheckName(e.Name); err != nil {
			return err
		}
		if i > 0 && m.Members[i-1].Name >= e.Name {
			return errorf(ErrManifest, "members not sorted by name at %q", e.Name)
		}
		if e.Name == ManifestName {
			return errorf(ErrManifest, "the manifest lists itself")
		}
		if k := KindOf(e.Name); k == KindOther {
			return errorf(ErrManifest, "member %q is not a v1 member name", e.Name)
		} else if e.Kind != k {
			return errorf(ErrManifest, "member %q has type %q, want %q", e.Name, e.Kind, k)
		}
		if e.Size < 0 || e.Size > MaxMemberSize {
			return errorf(ErrTooLarge, "member %q of %d bytes (limit %d)", e.Name, e.Size, int64(MaxMemberSize))
		}
		if MaxTotalSize-total < e.Size {
			return errorf(ErrTooLarge, "members add up to more than %d bytes", int64(MaxTotalSize))
		}
		total += e.Size
		if _, err := ParseDigest(string(e.Digest)); err != nil {
			return errorf(ErrManifest, "member %q: %v", e.Name, err)
		}
		if err := names.add(e.Name, false); err != nil {
			return err
		}
	}
	return nil
}

func zoneOffset(t time.Time) int {
	_, off := t.Zone()
	return off
}

// ParseManifest decodes and validates a manifest. It rejects more than
// MaxManifestSize bytes, invalid JSON, unknown fields, trailing data, and
// anything Validate rejects. A manifest of a newer major version is refused
// with ErrUnsupportedVersion before its other fields are looked at.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, errorf(ErrTooLarge, "manifest of %d bytes (limit %d)", len(b), MaxManifestSize)
	}
	var probe struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, errorf(ErrManifest, "not JSON: %v", err)
	}
	var v int
	if err := json.Unmarshal(probe.Version, &v); err != nil {
		return nil, errorf(ErrManifest, "version is not a number")
	}
	if v > StreamVersion {
		return nil, fmt.Errorf("%w (archive version %d, this reader knows %d): upgrade ckpt to read it", ErrUnsupportedVersion, v, StreamVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	m := new(Manifest)
	if err := dec.Decode(m); err != nil {
		return nil, errorf(ErrManifest, "%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errorf(ErrManifest, "trailing data after the manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Marshal encodes the manifest as the archive stores it: indented JSON with
// a final newline. It validates first.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ImagesDigest returns the digest of the image set under dir (CheckpointDir
// or PreCheckpointDir) of members: sha256 over "name digest\n" lines of the
// members below dir, sorted by name, with dir stripped from the name. Two
// image sets with equal contents have equal digests wherever they are stored.
func ImagesDigest(members []Member, dir string) Digest {
	h := sha256.New()
	var lines []string
	for _, e := range members {
		if rest, ok := strings.CutPrefix(e.Name, dir+"/"); ok {
			lines = append(lines, rest+" "+string(e.Digest)+"\n")
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return digestOf(h)
}
