package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/imagexfer"
)

// The annotations of a checkpoint image's manifest: podman's
// (libpod/define/annotations.go), by which podman recognizes one
// (runtime.name), and CRI-O's, by which CRI-O and the kubelet do.
const (
	AnnotationCheckpointName          = imagexfer.AnnotationCheckpointName
	AnnotationCheckpointRawImageName  = imagexfer.AnnotationCheckpointRawImageName
	AnnotationCheckpointRootfsImageID = imagexfer.AnnotationCheckpointRootfsImageID
	AnnotationCheckpointRootfsImage   = imagexfer.AnnotationCheckpointRootfsImage
	AnnotationCheckpointRuntimeName   = imagexfer.AnnotationCheckpointRuntimeName
	AnnotationCheckpointRuntime       = imagexfer.AnnotationCheckpointRuntime
	AnnotationCheckpointCRIUVersion   = imagexfer.AnnotationCheckpointCRIUVersion
	AnnotationCheckpointHostArch      = imagexfer.AnnotationCheckpointHostArch
	AnnotationCheckpointHostKernel    = imagexfer.AnnotationCheckpointHostKernel
	AnnotationCheckpointCgroups       = imagexfer.AnnotationCheckpointCgroups
	AnnotationCheckpointDistName      = imagexfer.AnnotationCheckpointDistName
	AnnotationCheckpointDistVersion   = imagexfer.AnnotationCheckpointDistVersion
	AnnotationCRIOCheckpointName      = imagexfer.AnnotationCRIOCheckpointName
)

// checkpointHost is what a checkpoint image's annotations say of the host
// beyond the manifest's Host.
type checkpointHost struct {
	criuVersion         int // CRIU's integer form, podman's criu.version
	cgroups             string
	distName, distVersn string
}

// checkpointAnnotations are the manifest annotations of a checkpoint image
// of the archive whose manifest is m, in podman's shape; the container's
// name is also CRI-O's checkpoint name.
func checkpointAnnotations(m *format.Manifest, h checkpointHost) map[string]string {
	a := map[string]string{
		AnnotationCheckpointName:          m.Container.Name,
		AnnotationCheckpointRawImageName:  m.Container.Image,
		AnnotationCheckpointRootfsImageID: m.Container.ImageID,
		AnnotationCheckpointRootfsImage:   m.Container.Image,
		AnnotationCheckpointRuntimeName:   m.Container.Runtime,
		AnnotationCheckpointRuntime:       m.Host.RuntimeVersion,
		AnnotationCheckpointHostArch:      m.Host.Arch,
		AnnotationCheckpointHostKernel:    m.Host.Kernel,
		AnnotationCheckpointCgroups:       h.cgroups,
		AnnotationCheckpointDistName:      h.distName,
		AnnotationCheckpointDistVersion:   h.distVersn,
		AnnotationCRIOCheckpointName:      m.Container.Name,
	}
	if h.criuVersion > 0 {
		a[AnnotationCheckpointCRIUVersion] = strconv.Itoa(h.criuVersion)
	}
	if a[AnnotationCheckpointRuntimeName] == "" {
		// podman recognizes a checkpoint image by this one.
		a[AnnotationCheckpointRuntimeName] = "runc"
	}
	for k, v := range a {
		if v == "" {
			delete(a, k)
		}
	}
	return a
}

// isCheckpointImage reports whether annotations mark a checkpoint image
// (imagexfer.IsCheckpoint).
func isCheckpointImage(annotations map[string]string) bool {
	return imagexfer.IsCheckpoint(annotations)
}

// distribution reads ID and VERSION_ID of os-release text, podman's
// distribution name and version.
func distribution(osRelease []byte) (name, version string) {
	sc := bufio.NewScanner(bytes.NewReader(osRelease))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			name = v
		case "VERSION_ID":
			version = v
		}
	}
	return name, version
}

// checkpointHostFacts finds this host's facts for the annotations.
func (e *Engine) checkpointHostFacts(ctx context.Context) checkpointHost {
	h := checkpointHost{cgroups: "v1"}
	if strings.HasPrefix(cgroupVersion(), "v2") {
		h.cgroups = "v2"
	}
	if _, n, err := e.criuVersion(ctx); err == nil {
		h.criuVersion = n
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		h.distName, h.distVersn = distribution(data)
	}
	return h
}

// CheckpointImageResult describes a checkpoint --create-image.
type CheckpointImageResult struct {
	// Export is the export the image's layer was written by.
	Export *ExportResult
	// Image is the checkpoint image in the store.
	Image *Image
}

// CheckpointImage checkpoints container ref as [Engine.Export] does and
// commits the archive into the store as the checkpoint image called
// image (podman's --create-image): one uncompressed layer whose tar
// stream is the archive itself (manifest first, so the image stays
// verifiable and a restore reads it as an archive), and the annotations
// of checkpointAnnotations on its OCI manifest. An image already called
// image loses the name. The archive is written uncompressed under the
// engine's root (image-tmp) and removed once committed. o's Compression
// must be empty or none; Stream, Output, PreCheckpoint, WithPrevious,
// IgnoreRootfs and IgnoreVolumes are refused (podman allows them with
// --export only). If the commit fails, a container the export stopped is
// restored from its images, as after a failed export.
func (e *Engine) CheckpointImage(ctx context.Context, ref, image string, o *ExportOptions) (_ *CheckpointImageResult, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "checkpoint %s into image %s", ref, image)
		}
	}()
	var xo ExportOptions
	if o != nil {
		xo = *o
	}
	if err := checkImageOptions(&xo); err != nil {
		return nil, err
	}
	name, err := reference.ParseNormalizedNamed(NormalizeImageName(image))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrImageReference, image, err)
	}
	if err := os.MkdirAll(e.imageTmpDir(), 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.imageTmpDir(), "checkpoint-image-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = fsutil.RemoveAll(dir) }()
	res, err := e.Export(ctx, ref, filepath.Join(dir, "checkpoint.tar"), &xo)
	if err != nil {
		return nil, err
	}
	img, err := e.commitCheckpointImage(ctx, dir, res, reference.TagNameOnly(name))
	if err != nil {
		return nil, e.undoStop(ctx, res, &xo, err)
	}
	return &CheckpointImageResult{Export: res, Image: img}, nil
}

// checkImageOptions refuses the export options a checkpoint image cannot
// have and sets its compression.
func checkImageOptions(o *ExportOptions) error {
	switch {
	case o.Compression != "" && o.Compression != format.None:
		return fmt.Errorf("%w: a checkpoint image's layer is not compressed by ckpt (a push compresses it): not with compression %s", ErrOptions, o.Compression)
	case o.Stream || o.Output != nil:
		return fmt.Errorf("%w: a checkpoint image is not written as a stream", ErrOptions)
	case o.PreCheckpoint || o.WithPrevious:
		return fmt.Errorf("%w: a checkpoint image holds a full checkpoint: not with --pre-checkpoint or --with-previous", ErrOptions)
	case o.IgnoreRootfs || o.IgnoreVolumes:
		return fmt.Errorf("%w: --ignore-rootfs and --ignore-volumes can only be used with --export", ErrOptions)
	}
	o.Compression = format.None
	return nil
}

// undoStop restores the container the export stopped (not with
// LeaveRunning) after the image failed, and returns the error to report.
func (e *Engine) undoStop(ctx context.Context, res *ExportResult, o *ExportOptions, err error) error {
	if o.LeaveRunning {
		return err
	}
	c := res.Container
	if _, rerr := e.Restore(context.WithoutCancel(ctx), c.ID, &RestoreOptions{TCPEstablished: o.TCPEstablished, FileLocks: o.FileLocks}); rerr != nil {
		var se *StateError
		if errors.As(rerr, &se) {
			rerr = se.Err
		}
		return &StateError{Err: fmt.Errorf("%w; restoring %s from the dump failed: %w", err, c.Name, rerr), Left: LeftCheckpointed}
	}
	return &StateError{Err: err, Left: LeftRestored}
}

// commitCheckpointImage makes an OCI layout in dir of the archive
// dir/checkpoint.tar (moved into it as the layer's blob) and copies it into
// the store, named name.
func (e *Engine) commitCheckpointImage(ctx context.Context, dir string, res *ExportResult, name reference.Named) (*Image, error) {
	layout := filepath.Join(dir, "layout")
	ann := checkpointAnnotations(res.Manifest, e.checkpointHostFacts(ctx))
	if err := writeCheckpointLayout(layout, filepath.Join(dir, "checkpoint.tar"), res.Manifest, ann); err != nil {
		return nil, fmt.Errorf("make the image's layout: %w", err)
	}
	src, err := ocilayout.NewReference(layout, "")
	if err != nil {
		return nil, err
	}
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	return e.pullInto(ctx, s, src, name, nil)
}

// writeCheckpointLayout writes an OCI image layout of one image into
// dir: archive (renamed into the blobs) as its one uncompressed layer, a
// config for linux on the manifest's architecture, and a manifest
// carrying ann.
func writeCheckpointLayout(dir, archive string, m *format.Manifest, ann map[string]string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return err
	}
	layer, err := fileDescriptor(archive, imgspecv1.MediaTypeImageLayer)
	if err != nil {
		return err
	}
	if err := os.Rename(archive, filepath.Join(blobs, layer.Digest.Encoded())); err != nil {
		return err
	}
	created := m.Created
	cfg := imgspecv1.Image{
		Created:  &created,
		Platform: imgspecv1.Platform{Architecture: m.Host.Arch, OS: "linux"},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
		History:  []imgspecv1.History{{Created: &created, CreatedBy: "ckpt checkpoint --create-image " + m.Container.Name}},
	}
	cfgDesc, err := writeJSONBlob(blobs, imgspecv1.MediaTypeImageConfig, cfg)
	if err != nil {
		return err
	}
	man := imgspecv1.Manifest{
		Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: cfgDesc, Layers: []imgspecv1.Descriptor{layer}, Annotations: ann,
	}
	manDesc, err := writeJSONBlob(blobs, imgspecv1.MediaTypeImageManifest, man)
	if err != nil {
		return err
	}
	index := imgspecv1.Index{Versioned: imgspec.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex, Manifests: []imgspecv1.Descriptor{manDesc}}
	data, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), data, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, imgspecv1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600)
}

// fileDescriptor returns the descriptor of the file at path.
func fileDescriptor(path, mediaType string) (imgspecv1.Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), Size: n}, nil
}

// writeJSONBlob writes v as a blob into blobs and returns its descriptor.
func writeJSONBlob(blobs, mediaType string, v any) (imgspecv1.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	d := digest.FromBytes(data)
	if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o600); err != nil {
		return imgspecv1.Descriptor{}, err
	}
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, nil
}

// imageAnnotations returns the annotations of the store image si's
// manifest (none for a manifest without any, such as Docker's schema 2).
func imageAnnotations(s storage.Store, si *storage.Image) (map[string]string, error) {
	data, err := s.ImageBigData(si.ID, storage.ImageDigestBigDataKey)
	if err != nil {
		return nil, nil // no manifest: an imported root filesystem
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: image %s: its manifest: %w", ErrHostileImage, shortImageID(si.ID), err)
	}
	return m.Annotations, nil
}

// layerSource is a checkpoint image's layer read as an archive: its tar
// stream as the store gives it back (byte for byte the one committed or
// pulled, whose digest the copy checked against the image's config),
// opened once: what reading the manifest consumed is read again first.
type layerSource struct {
	open func() (io.ReadCloser, error)
	// size is the tar stream's size, -1 if the store does not know it.
	size int64
	rc   io.ReadCloser
	head []byte // what declared read of rc
	// noDrain closes the stream without reading it to its end (a pipe
	// whose writer stops at Close).
	noDrain bool
}

// declared opens the stream and returns the manifest its archive
// declares, if any, reading at most the manifest's limit and a header.
func (l *layerSource) declared() *format.Manifest {
	rc, err := l.open()
	if err != nil {
		return nil
	}
	l.rc = rc
	var head bytes.Buffer
	m, _, err := format.ReadManifest(io.TeeReader(io.LimitReader(rc, format.MaxManifestSize+64<<10), &head))
	l.head = head.Bytes()
	if err != nil {
		return nil
	}
	return m
}

// reader returns the whole stream: what declared read, then the rest.
func (l *layerSource) reader() (io.Reader, error) {
	if l.rc == nil {
		rc, err := l.open()
		if err != nil {
			return nil, err
		}
		l.rc = rc
	}
	return io.MultiReader(bytes.NewReader(l.head), l.rc), nil
}

// close reads the stream to its end before closing it: containers/storage
// closes its decompressor under the goroutine reassembling the tar stream
// if it is closed early (a data race).
func (l *layerSource) close() {
	if l.rc != nil {
		if !l.noDrain {
			_, _ = io.Copy(io.Discard, l.rc)
		}
		_ = l.rc.Close()
		l.rc = nil
	}
}

// RestoreImage restores a new container from the checkpoint image ref
// (name, ID or ID prefix in the store), as podman's `container restore
// IMAGE` does: ref must carry a checkpoint annotation (podman's or
// CRI-O's, ErrNotCheckpointImage otherwise) and have one layer, whose tar
// stream is read as an archive by [Engine.Import], with every check an
// import makes and o's options. A ref of [TransportContainerd] is a
// containerd checkpoint image, read as a legacy archive. The layer is streamed from the store into
// the import's staging directory; the image stays.
func (e *Engine) RestoreImage(ctx context.Context, ref string, o *ImportOptions) (_ *ImportResult, err error) {
	if o == nil {
		o = &ImportOptions{}
	}
	defer func() {
		if err != nil {
			err = wrapf(err, "restore image %s", ref)
		}
	}()
	if err := o.check(); err != nil {
		return nil, err
	}
	var layer *layerSource
	if rest, ok := strings.CutPrefix(ref, TransportContainerd+":"); ok {
		layer, err = containerdLayer(rest)
	} else {
		layer, err = e.checkpointLayer(ref)
	}
	if err != nil {
		return nil, err
	}
	if err := e.preflight(ctx); err != nil {
		return nil, err
	}
	defer layer.close()
	x, err := e.beginImport("image "+ref, layer, o)
	if err != nil {
		return nil, err
	}
	defer x.end()
	return x.run(ctx)
}

// checkpointLayer finds the checkpoint image ref and returns its layer.
func (e *Engine) checkpointLayer(ref string) (*layerSource, error) {
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	si, err := e.resolveImage(s, ref)
	if err != nil {
		return nil, err
	}
	ann, err := imageAnnotations(s, si)
	if err != nil {
		return nil, err
	}
	if !isCheckpointImage(ann) {
		return nil, fmt.Errorf("%w: its manifest has no checkpoint annotation (%s or %s)", ErrNotCheckpointImage, AnnotationCheckpointRuntimeName, AnnotationCRIOCheckpointName)
	}
	l, err := s.Layer(si.TopLayer)
	if err != nil {
		return nil, fmt.Errorf("its layer %s: %w", si.TopLayer, err)
	}
	if l.Parent != "" {
		return nil, fmt.Errorf("%w: the image has more than one layer; a checkpoint image has one", ErrUnsupported)
	}
	size := l.UncompressedSize
	if size <= 0 {
		size = -1
	}
	id := l.ID
	return &layerSource{size: size, open: func() (io.ReadCloser, error) {
		none := archive.Uncompressed
		return s.Diff("", id, &storage.DiffOptions{Compression: &none})
	}}, nil
}
