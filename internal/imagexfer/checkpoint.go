package imagexfer

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	stypes "go.podman.io/storage/types"

	"github.com/ckpt/ckpt/format"
)

// Source is an image to read: a file or layout directory, or a reference
// of a transport.
type Source struct {
	// Transport is one of the Transport constants.
	Transport string
	// Path is the file (oci-archive, docker-archive) or directory (oci).
	Path string
	// Image names the image in Path (a layout's ref.name); empty: the only
	// one.
	Image string
	// Ref is the rest of a docker or containers-storage reference.
	Ref string
}

// ParseSource parses TRANSPORT:REST (podman's syntax: oci:DIR[:NAME],
// oci-archive:FILE[:NAME], docker-archive:FILE, docker://NAME,
// containers-storage:[GRAPHROOT]NAME); ok is false for anything else.
func ParseSource(ref string) (s Source, ok bool) {
	transport, rest := SplitTransport(ref)
	switch transport {
	case "":
		return Source{}, false
	case TransportOCI, TransportOCIArchive:
		path, img, _ := strings.Cut(rest, ":")
		return Source{Transport: transport, Path: path, Image: img}, true
	case TransportDockerArchive:
		return Source{Transport: transport, Path: rest}, true
	}
	return Source{Transport: transport, Ref: rest}, true
}

func (s Source) String() string {
	switch {
	case s.Ref != "":
		return s.Transport + ":" + s.Ref
	case s.Image != "":
		return s.Transport + ":" + s.Path + ":" + s.Image
	}
	return s.Transport + ":" + s.Path
}

// ReadOptions are the options of ReadCheckpointLayer.
type ReadOptions struct {
	// Sys is containers/image's context (registry credentials, TLS).
	Sys *types.SystemContext
	// TempDir holds an oci-archive unpacked while it is read; default
	// os.TempDir().
	TempDir string
	// GetStore opens a containers-storage: store; default
	// storage.GetStore.
	GetStore func(stypes.StoreOptions) (storage.Store, error)
	// MaxLayerSize bounds the layer's decompressed tar stream; default
	// format.MaxTotalSize, an archive's bound.
	MaxLayerSize int64
}

// CheckpointLayer describes the layer ReadCheckpointLayer copied out.
type CheckpointLayer struct {
	// Manifest is the digest of the image's manifest.
	Manifest digest.Digest
	// Digest is the layer's digest, as its descriptor gives it.
	Digest digest.Digest
	// Annotations are the manifest's.
	Annotations map[string]string
}

// ReadCheckpointLayer reads the checkpoint image src and writes its one
// layer's tar stream, decompressed, to w: the checkpoint archive it holds
// (a whole ckpt archive for ckpt's images, the archive's members for
// podman's). The manifest's digest is checked against the layout's index
// (CheckLayout), the reference's digest or the list's, the config's by
// containers/image, and the layer's digest and size after it was copied:
// an error means w must not be read. An image without a checkpoint
// annotation is ErrNotCheckpointImage.
func ReadCheckpointLayer(ctx context.Context, src Source, w io.Writer, o *ReadOptions) (*CheckpointLayer, error) {
	if o == nil {
		o = &ReadOptions{}
	}
	ref, want, done, err := openSource(ctx, src, o)
	if err != nil {
		return nil, err
	}
	defer done()
	is, err := ref.NewImageSource(ctx, o.Sys)
	if err != nil {
		return nil, err
	}
	defer is.Close()
	img, cl, err := checkpointImage(ctx, is, want, o.Sys)
	if err != nil {
		return nil, err
	}
	infos, err := img.LayerInfosForCopy(ctx)
	if err != nil || infos == nil {
		infos = img.LayerInfos()
	}
	if err := CheckURLs(ref, infos); err != nil {
		return nil, err
	}
	if len(infos) != 1 {
		return nil, fmt.Errorf("%w: the image has %d layers; a checkpoint image has one", ErrNotCheckpointImage, len(infos))
	}
	cl.Digest = infos[0].Digest
	limit := o.MaxLayerSize
	if limit <= 0 {
		limit = format.MaxTotalSize
	}
	if err := copyLayer(ctx, is, infos[0], w, limit); err != nil {
		return nil, err
	}
	return cl, nil
}

// openSource returns the containers/image reference of src, the digest
// its manifest must have ("" if nothing says), and what to do when done.
func openSource(ctx context.Context, src Source, o *ReadOptions) (types.ImageReference, digest.Digest, func(), error) {
	nothing := func() {}
	switch src.Transport {
	case TransportOCIArchive:
		dir, err := os.MkdirTemp(o.TempDir, "ckpt-oci-archive-")
		if err != nil {
			return nil, "", nil, err
		}
		drop := func() { _ = os.RemoveAll(dir) }
		if err := UnpackOCIArchive(ctx, src.Path, dir); err != nil {
			drop()
			return nil, "", nil, fmt.Errorf("%s: %w", src.Path, err)
		}
		ref, want, _, err := openSource(ctx, Source{Transport: TransportOCI, Path: dir, Image: src.Image}, o)
		if err != nil {
			drop()
			return nil, "", nil, err
		}
		return ref, want, drop, nil
	case TransportOCI:
		// CheckLayout checks the manifests' digests.
		if _, err := CheckLayout(src.Path, src.Image); err != nil {
			return nil, "", nil, err
		}
		ref, err := ocilayout.NewReference(src.Path, src.Image)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%w: %w", ErrImageReference, err)
		}
		return ref, "", nothing, nil
	case TransportDockerArchive:
		ref, err := dockerarchive.NewReference(src.Path, nil)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%w: %w", ErrImageReference, err)
		}
		return ref, "", nothing, nil
	case TransportStorage:
		get := o.GetStore
		if get == nil {
			get = storage.GetStore
		}
		s, ref, err := OpenForeignStore(src.Ref, get)
		if err != nil {
			return nil, "", nil, err
		}
		return ref, "", func() { _, _ = s.Shutdown(false) }, nil
	}
	ref, err := ParseReference(src.Transport, src.Ref)
	if err != nil {
		return nil, "", nil, err
	}
	var want digest.Digest
	if c, ok := ref.DockerReference().(reference.Canonical); ok {
		want = c.Digest()
	}
	return ref, want, nothing, nil
}

// checkpointImage reads the manifest of is (choosing the instance of a
// list for this platform), checks its digest against want and its size,
// refuses it without a checkpoint annotation, and returns the image (its
// config checked by containers/image).
func checkpointImage(ctx context.Context, is types.ImageSource, want digest.Digest, sys *types.SystemContext) (types.Image, *CheckpointLayer, error) {
	raw, mt, err := is.GetManifest(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := checkManifest(raw, want); err != nil {
		return nil, nil, err
	}
	d, err := manifest.Digest(raw)
	if err != nil {
		return nil, nil, err
	}
	var instance *digest.Digest
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: its manifest list: %w", ErrHostileImage, err)
		}
		i, err := list.ChooseInstance(sys)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrImageReference, err)
		}
		instance, d = &i, i
	}
	// An instance's manifest is checked against its digest by
	// containers/image.
	unparsed := image.UnparsedInstance(is, instance)
	raw, mt, err = unparsed.Manifest(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHostileImage, err)
	}
	if len(raw) > MaxLayoutIndex {
		return nil, nil, fmt.Errorf("%w: its manifest is %d bytes, more than %d", ErrHostileImage, len(raw), MaxLayoutIndex)
	}
	var ann map[string]string
	if mt == imgspecv1.MediaTypeImageManifest {
		m, err := manifest.OCI1FromManifest(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: its manifest: %w", ErrHostileImage, err)
		}
		ann = m.Annotations
	}
	if mt == manifest.DockerV2Schema2MediaType {
		return nil, nil, fmt.Errorf("%w: its manifest is Docker's, which has no annotations to mark one (a checkpoint image saved as a docker-archive loses them: save it as an oci-archive)", ErrNotCheckpointImage)
	}
	if !IsCheckpoint(ann) {
		return nil, nil, fmt.Errorf("%w: its manifest has no checkpoint annotation (%s or %s)", ErrNotCheckpointImage, AnnotationCheckpointRuntimeName, AnnotationCRIOCheckpointName)
	}
	img, err := image.FromUnparsedImage(ctx, sys, unparsed)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrHostileImage, err)
	}
	if _, err := img.ConfigBlob(ctx); err != nil {
		return nil, nil, fmt.Errorf("%w: its config: %w", ErrHostileImage, err)
	}
	return img, &CheckpointLayer{Manifest: d, Annotations: ann}, nil
}

// checkManifest checks the size of the manifest raw and, if want is set,
// its digest.
func checkManifest(raw []byte, want digest.Digest) error {
	if len(raw) > MaxLayoutIndex {
		return fmt.Errorf("%w: its manifest is %d bytes, more than %d", ErrHostileImage, len(raw), MaxLayoutIndex)
	}
	if want == "" {
		return nil
	}
	ok, err := manifest.MatchesDigest(raw, want)
	if err != nil || !ok {
		got, _ := manifest.Digest(raw)
		return fmt.Errorf("%w: its manifest's digest is %s, not %s as its descriptor says", ErrHostileImage, got, want)
	}
	return nil
}

// copyLayer copies the blob of layer from is to w, decompressed, at most
// most bytes of it, and checks the compressed blob's digest and size
// against the descriptor once it was read whole.
func copyLayer(ctx context.Context, is types.ImageSource, layer types.BlobInfo, w io.Writer, most int64) error {
	if err := layer.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: layer digest %q: %w", ErrHostileImage, layer.Digest, err)
	}
	rc, _, err := is.GetBlob(ctx, layer, none.NoCache)
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	defer rc.Close()
	digester := layer.Digest.Algorithm().Digester()
	limit := most
	if layer.Size > 0 {
		limit = layer.Size
	}
	counted := &countingReader{r: io.LimitReader(rc, limit+1)}
	raw := io.TeeReader(counted, digester.Hash())
	dr, _, err := compression.AutoDecompress(raw)
	if err != nil {
		return fmt.Errorf("%w: layer %s: %w", ErrHostileImage, layer.Digest, err)
	}
	n, err := io.Copy(w, io.LimitReader(dr, most+1))
	_ = dr.Close()
	if err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	if n > most {
		return fmt.Errorf("%w: layer %s unpacks to more than %d bytes", ErrHostileImage, layer.Digest, most)
	}
	// What the decompressor left (padding, a trailer) is hashed too.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	switch got := digester.Digest(); {
	case layer.Size > 0 && counted.n != layer.Size:
		return fmt.Errorf("%w: layer %s is %s bytes, its descriptor says %d", ErrHostileImage, layer.Digest, sizeOf(counted.n, layer.Size), layer.Size)
	case got != layer.Digest:
		return fmt.Errorf("%w: layer %s has the digest %s: it is not the layer its manifest names", ErrHostileImage, layer.Digest, got)
	}
	return nil
}

func sizeOf(n, limit int64) string {
	if n > limit {
		return fmt.Sprintf("more than %d", limit)
	}
	return fmt.Sprint(n)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
