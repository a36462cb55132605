package format

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The media types of a containerd 1.x checkpoint image (`ctr containers
// checkpoint --task --image --rw`): an OCI index whose entries are blobs,
// not manifests (containerd's images/mediatypes.go).
const (
	MediaTypeContainerdCRIU           = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
	MediaTypeContainerdSpec           = "application/vnd.containerd.container.checkpoint.config.v1+proto"
	MediaTypeContainerdOptions        = "application/vnd.containerd.container.checkpoint.options.v1+proto"
	MediaTypeContainerdRuntimeOptions = "application/vnd.containerd.container.checkpoint.runtime.options+proto"
	mediaTypeOCIIndex                 = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIManifest              = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeDockerManifest           = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeOCILayerGzip             = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// The index annotations containerd's Container.Checkpoint writes.
const (
	ContainerdAnnotationImage       = "org.opencontainers.image.ref.name"
	ContainerdAnnotationRuntime     = "io.containerd.checkpoint.runtime"
	ContainerdAnnotationSnapshotter = "io.containerd.checkpoint.snapshotter"
)

// Limits on a containerd checkpoint image's small blobs.
const (
	// MaxContainerdIndexSize is the largest index or base image manifest.
	MaxContainerdIndexSize = 1 << 20
	// MaxContainerdEntries is the most entries an index may list.
	MaxContainerdEntries = 64
)

// containerdSpecType is the type URL of the spec blob's protobuf Any:
// its value is the runtime spec as JSON.
const containerdSpecType = "types.containerd.io/opencontainers/runtime-spec/1/Spec"

// ErrNotContainerdCheckpoint reports a directory, OCI layout or index that
// is not a containerd checkpoint image (no content store, an index.json
// listing something else, an index without a CRIU tar): a caller that
// tries several kinds of input can tell it from a bad checkpoint image.
var ErrNotContainerdCheckpoint = errors.New("format: not a containerd checkpoint image")

// Descriptor is an OCI content descriptor as a containerd index lists it.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ContainerdCheckpoint is a containerd 1.x checkpoint image found in a
// content store by [OpenContainerdCheckpoint]: the index and the
// descriptors of its parts, the small ones already read and checked.
type ContainerdCheckpoint struct {
	// Index is the index's descriptor (its digest is the image's).
	Index Descriptor
	// Annotations are the index's: the base image's name, the runtime
	// and the snapshotter.
	Annotations map[string]string
	// CRIU is the tar of the CRIU image directory; RW the container's
	// layer (gzip OCI layer), empty without --rw; Base the base image's
	// manifest, empty without --image.
	CRIU, RW, Base Descriptor
	// BaseConfig is the digest of the base image's config (its image
	// ID), if Base is set.
	BaseConfig string
	// Spec is the container's runtime spec (JSON).
	Spec  []byte
	blobs string
}

// ContainerdBlobs returns the blob directory (holding sha256/) of dir: a
// containerd root (io.containerd.content.v1.content/blobs), the content
// plugin's directory, or an OCI image layout.
func ContainerdBlobs(dir string) (string, error) {
	for _, d := range []string{"io.containerd.content.v1.content/blobs", "blobs"} {
		p := filepath.Join(dir, d)
		if fi, err := os.Stat(filepath.Join(p, "sha256")); err == nil && fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s is not a containerd root, content store or OCI layout: no blobs/sha256 in it", ErrNotContainerdCheckpoint, dir)
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// OpenContainerdCheckpoint reads the checkpoint image whose index has
// digest dgst (sha256:HEX) from the blob directory blobs
// ([ContainerdBlobs]). Every blob the image names (index, spec, options,
// runtime options, base manifest) is checked against its descriptor's
// size and digest here; the CRIU tar and the rw layer, which may be large,
// when [ContainerdCheckpoint.WriteArchive] reads them, and their sizes
// here. A blob is read through os.Root, so a symbolic link cannot lead
// out of blobs.
func OpenContainerdCheckpoint(blobs, dgst string) (*ContainerdCheckpoint, error) {
	if !sha256Digest.MatchString(dgst) {
		return nil, errorf(ErrFormat, "containerd image digest %q: want sha256: and 64 hex digits", dgst)
	}
	c := &ContainerdCheckpoint{blobs: blobs, Index: Descriptor{MediaType: mediaTypeOCIIndex, Digest: dgst, Size: -1}}
	if _, err := os.Lstat(filepath.Join(blobs, "sha256", strings.TrimPrefix(dgst, "sha256:"))); errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(ErrFormat, "no image %s in %s (the digests are in `ctr images ls`)", dgst, blobs)
	}
	data, err := c.readSmall(c.Index)
	if err != nil {
		return nil, err
	}
	c.Index = Descriptor{MediaType: mediaTypeOCIIndex, Digest: dgst, Size: int64(len(data))}
	var idx struct {
		SchemaVersion int               `json:"schemaVersion"`
		Manifests     []Descriptor      `json:"manifests"`
		Annotations   map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, errorf(ErrFormat, "containerd image %s: its index: %v", dgst, err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) > MaxContainerdEntries {
		return nil, errorf(ErrFormat, "containerd image %s: an index of schema %d with %d entries, want schema 2 and at most %d", dgst, idx.SchemaVersion, len(idx.Manifests), MaxContainerdEntries)
	}
	c.Annotations = idx.Annotations
	if !slices.ContainsFunc(idx.Manifests, func(d Descriptor) bool { return d.MediaType == MediaTypeContainerdCRIU }) {
		// Before the entries are judged: an image's index is named as such.
		return nil, fmt.Errorf("%w: index %s has no %s entry (checkpoint with ctr's --task)", ErrNotContainerdCheckpoint, dgst, MediaTypeContainerdCRIU)
	}
	for _, d := range idx.Manifests {
		if err := c.entry(d); err != nil {
			return nil, err
		}
	}
	if c.Spec == nil {
		return nil, errorf(ErrFormat, "containerd image %s: no %s entry", dgst, MediaTypeContainerdSpec)
	}
	return c, nil
}

// entry takes one entry of the index.
func (c *ContainerdCheckpoint) entry(d Descriptor) error {
	if !sha256Digest.MatchString(d.Digest) || d.Size < 0 {
		return errorf(ErrFormat, "containerd image %s: entry %s: bad digest %q or size %d", c.Index.Digest, d.MediaType, d.Digest, d.Size)
	}
	twice := func(have Descriptor) error {
		if have.Digest != "" {
			return errorf(ErrFormat, "containerd image %s: two %s entries", c.Index.Digest, d.MediaType)
		}
		return nil
	}
	switch d.MediaType {
	case MediaTypeContainerdCRIU, mediaTypeOCILayerGzip:
		dst := &c.CRIU
		if d.MediaType == mediaTypeOCILayerGzip {
			dst = &c.RW
		}
		if err := twice(*dst); err != nil {
			return err
		}
		if _, err := c.stat(d); err != nil {
			return err
		}
		*dst = d
	case MediaTypeContainerdSpec:
		if c.Spec != nil {
			return twice(Descriptor{Digest: "x"})
		}
		data, err := c.readSmall(d)
		if err != nil {
			return err
		}
		typ, value, err := protoAny(data)
		if err != nil || typ != containerdSpecType || !json.Valid(value) {
			return errorf(ErrFormat, "containerd image %s: the spec blob %s is not a runtime spec (%s, %v)", c.Index.Digest, d.Digest, typ, err)
		}
		c.Spec = value
	case MediaTypeContainerdOptions, MediaTypeContainerdRuntimeOptions:
		// Read only to check them: runc's options, which an import sets itself.
		_, err := c.readSmall(d)
		return err
	case mediaTypeOCIManifest, mediaTypeDockerManifest:
		if err := twice(c.Base); err != nil {
			return err
		}
		data, err := c.readSmall(d)
		if err != nil {
			return err
		}
		var m struct {
			Config Descriptor `json:"config"`
		}
		if err := json.Unmarshal(data, &m); err != nil || !sha256Digest.MatchString(m.Config.Digest) {
			return errorf(ErrFormat, "containerd image %s: base image manifest %s: no config digest (%v)", c.Index.Digest, d.Digest, err)
		}
		c.Base, c.BaseConfig = d, m.Config.Digest
	default:
		return errorf(ErrFormat, "containerd image %s: unknown entry %s", c.Index.Digest, d.MediaType)
	}
	return nil
}

// open opens the blob of d.
func (c *ContainerdCheckpoint) open(d Descriptor) (*os.File, error) {
	root, err := os.OpenRoot(c.blobs)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(path.Join("sha256", strings.TrimPrefix(d.Digest, "sha256:")))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errorf(ErrFormat, "containerd image %s: blob %s (%s) is missing from %s", c.Index.Digest, d.Digest, d.MediaType, c.blobs)
		}
		return nil, errorf(ErrInsecurePath, "containerd image %s: blob %s: %v", c.Index.Digest, d.Digest, err)
	}
	return f, nil
}

// stat checks that d's blob is a regular file of d's size (any size if
// d.Size < 0) and returns its size.
func (c *ContainerdCheckpoint) stat(d Descriptor) (int64, error) {
	f, err := c.open(d)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() || d.Size >= 0 && fi.Size() != d.Size {
		return 0, errorf(ErrChecksum, "containerd image %s: blob %s (%s): %v of %d bytes, the index says %d", c.Index.Digest, d.Digest, d.MediaType, fi.Mode().Type(), fi.Size(), d.Size)
	}
	return fi.Size(), nil
}

// readSmall reads d's blob, at most MaxContainerdIndexSize bytes, and
// checks its size and digest.
func (c *ContainerdCheckpoint) readSmall(d Descriptor) ([]byte, error) {
	n, err := c.stat(d)
	if err != nil {
		return nil, err
	}
	if n > MaxContainerdIndexSize {
		return nil, errorf(ErrTooLarge, "containerd image %s: blob %s (%s) of %d bytes, at most %d", c.Index.Digest, d.Digest, d.MediaType, n, MaxContainerdIndexSize)
	}
	f, err := c.open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxContainerdIndexSize+1))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != d.Digest || d.Size >= 0 && int64(len(data)) != d.Size {
		return nil, errorf(ErrChecksum, "containerd image %s: blob %s (%s) does not match its digest", c.Index.Digest, d.Digest, d.MediaType)
	}
	return data, nil
}

// protoAny decodes a google.protobuf.Any: field 1 the type URL, field 2
// the value. Unknown fields are refused.
func protoAny(b []byte) (typeURL string, value []byte, err error) {
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 || key&7 != 2 {
			return "", nil, errors.New("not a protobuf Any")
		}
		b = b[n:]
		l, n := uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return "", nil, errors.New("truncated protobuf Any")
		}
		v := b[n : n+int(l)]
		b = b[n+int(l):]
		switch key >> 3 {
		case 1:
			typeURL = string(v)
		case 2:
			value = v
		default:
			return "", nil, fmt.Errorf("protobuf Any with field %d", key>>3)
		}
	}
	return typeURL, value, nil
}

// uvarint decodes a protobuf varint; n <= 0 on a bad one.
func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, -1
}

// digestReader hashes what is read through it and, at its end, fails with
// ErrChecksum if the size or digest differ from d's.
type digestReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	d    Descriptor
	what string
}

func (v *digestReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.d.Size {
		return n, errorf(ErrChecksum, "%s: longer than the %d bytes its descriptor says", v.what, v.d.Size)
	}
	if err == io.EOF && (v.n != v.d.Size || "sha256:"+hex.EncodeToString(v.h.Sum(nil)) != v.d.Digest) {
		return n, errorf(ErrChecksum, "%s (%s) does not match its digest", v.what, v.d.Digest)
	}
	return n, err
}

// Open returns the archive WriteArchive writes, as a stream: a read
// fails with WriteArchive's error, and Close stops the writing.
func (c *ContainerdCheckpoint) Open() io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.WriteArchive(pw)) }()
	return pr
}

// ParseContainerdRef opens the containerd checkpoint image ref names:
// DIR@sha256:HEX (DIR a containerd root, its content directory or an OCI
// layout, HEX the index's digest, `ctr images ls`), or DIR alone for an
// OCI layout whose index.json lists the checkpoint image's index, alone.
func ParseContainerdRef(ref string) (*ContainerdCheckpoint, error) {
	dir, dgst, ok := strings.Cut(ref, "@")
	if dir == "" {
		return nil, fmt.Errorf("%w: %q: want DIR@sha256:DIGEST (the DIGEST of `ctr images ls`)", ErrFormat, ref)
	}
	blobs, err := ContainerdBlobs(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		if dgst, err = layoutIndex(dir); err != nil {
			return nil, err
		}
	}
	return OpenContainerdCheckpoint(blobs, dgst)
}

// layoutIndex returns the digest of the one index that the OCI layout
// dir's index.json lists.
func layoutIndex(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", fmt.Errorf("%s: no index.json to find the checkpoint image in (give DIR@sha256:DIGEST): %w", dir, err)
	}
	defer f.Close()
	var idx struct {
		Manifests []Descriptor `json:"manifests"`
	}
	if err := json.NewDecoder(io.LimitReader(f, MaxContainerdIndexSize)).Decode(&idx); err != nil {
		return "", errorf(ErrFormat, "%s/index.json: %v", dir, err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].MediaType != mediaTypeOCIIndex {
		return "", fmt.Errorf("%w: %s/index.json lists %d images, want the one index of a containerd checkpoint image (or give DIR@sha256:DIGEST)", ErrNotContainerdCheckpoint, dir, len(idx.Manifests))
	}
	return idx.Manifests[0].Digest, nil
}

// containerdID is what a container ID or name may be in the config.dump
// WriteArchive writes.
var containerdID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Name returns the container's name as containerd's cgroup path records
// it (/NAMESPACE/ID, the only place a checkpoint image keeps it), or
// "containerd-checkpoint".
func (c *ContainerdCheckpoint) Name() string {
	var s struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	_ = json.Unmarshal(c.Spec, &s)
	if id := path.Base(s.Linux.CgroupsPath); containerdID.MatchString(id) {
		return id
	}
	return "containerd-checkpoint"
}

// WriteArchive writes the checkpoint image as a legacy (containerd)
// checkpoint archive, uncompressed, to w, for [Extract] and the other
// readers of archives: config.dump (podman's fields: the container's
// Name, the index's digest as its ID, the base image's name and config
// digest), spec.dump, checkpoint/
// with the CRIU tar's files, and rootfs-diff.tar, the rw layer as it is
// (a gzip OCI layer). The CRIU tar may hold only regular files at its top
// level; its digest and the rw layer's are checked as they are read, and
// a mismatch fails the write (ErrChecksum) after what came before it.
// Headers are normalized (mode 0600, owner 0:0, the CRIU blob's time).
func (c *ContainerdCheckpoint) WriteArchive(w io.Writer) error {
	criu, err := c.open(c.CRIU)
	if err != nil {
		return err
	}
	defer criu.Close()
	fi, err := criu.Stat()
	if err != nil {
		return err
	}
	mtime := fi.ModTime().UTC().Truncate(time.Second)
	cfg, err := json.Marshal(map[string]any{
		// containerd keeps no 64-hex ID: the index's digest serves.
		"id": strings.TrimPrefix(c.Index.Digest, "sha256:"), "name": c.Name(), "createNetNS": true,
		"rootfsImageName": c.Annotations[ContainerdAnnotationImage],
		"rootfsImageID":   strings.TrimPrefix(c.BaseConfig, "sha256:"),
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	file := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := file(ConfigName, int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
		return err
	}
	if err := file(SpecName, int64(len(c.Spec)), bytes.NewReader(c.Spec)); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: CheckpointDir + "/", Mode: 0o700, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
		return err
	}
	vr := &digestReader{r: criu, h: sha256.New(), d: c.CRIU, what: "containerd image " + c.Index.Digest + ": the CRIU tar"}
	if err := c.copyCRIU(vr, file); err != nil {
		return err
	}
	if c.RW.Digest != "" {
		rw, err := c.open(c.RW)
		if err != nil {
			return err
		}
		defer rw.Close()
		vr := &digestReader{r: rw, h: sha256.New(), d: c.RW, what: "containerd image " + c.Index.Digest + ": the rw layer"}
		if err := file(RootfsDiffName, c.RW.Size, vr); err != nil {
			return err
		}
		// The tar writer stops at Size: read on to the end, where the
		// digest is checked.
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyCRIU copies the CRIU tar's files into checkpoint/ through file, and
// reads the tar to its end (where vr checks its digest).
func (c *ContainerdCheckpoint) copyCRIU(vr io.Reader, file func(string, int64, io.Reader) error) error {
	tr := tar.NewReader(vr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errorf(ErrFormat, "containerd image %s: the CRIU tar: %v", c.Index.Digest, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir && name == "" {
			continue
		}
		member := CheckpointDir + "/" + name
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") {
			return errorf(ErrFormat, "containerd image %s: the CRIU tar holds %q (type %c): only files at its top level belong there", c.Index.Digest, h.Name, h.Typeflag)
		}
		if err := CheckName(member); err != nil {
			return fmt.Errorf("containerd image %s: the CRIU tar: %w", c.Index.Digest, err)
		}
		if err := file(member, h.Size, tr); err != nil {
			return err
		}
	}
	_, err := io.Copy(io.Discard, vr)
	return err
}
