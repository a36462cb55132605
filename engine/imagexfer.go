package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
	ocilayout "go.podman.io/image/v5/oci/layout"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/imagexfer"
)

// Save formats, podman's names.
const (
	SaveOCIArchive    = "oci-archive"
	SaveDockerArchive = "docker-archive"
	SaveOCIDir        = "oci-dir"
)

// ImagePull copies the image ref names into the store and returns it. ref
// is TRANSPORT:... (docker://, oci:DIR[:NAME], oci-archive:FILE[:NAME],
// docker-archive:FILE, containers-storage:[GRAPHROOT]NAME) or a bare
// name, which means a registry (docker://): NAME without a registry is
// docker.io's, as with docker. The image keeps its name (a registry's, an
// archive's or podman's); an image already there under it loses the name.
// A failed pull leaves nothing in the store.
func (e *Engine) ImagePull(ctx context.Context, ref string, o *TransferOptions) (_ *Image, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "pull %s", ref)
		}
	}()
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	transport, rest := imagexfer.SplitTransport(ref)
	switch transport {
	case TransportOCIArchive:
		file, image, _ := strings.Cut(rest, ":")
		return e.loadOCIArchive(ctx, s, file, image, o)
	case TransportOCI:
		dir, image, _ := strings.Cut(rest, ":")
		return e.pullLayout(ctx, s, dir, image, o)
	case TransportDockerArchive:
		if !strings.Contains(rest, ":") {
			return e.loadDockerArchive(ctx, s, rest, o)
		}
	case TransportStorage:
		fs, src, err := imagexfer.OpenForeignStore(rest, getStore)
		if err != nil {
			return nil, err
		}
		defer func() { _, _ = fs.Shutdown(false) }()
		return e.pullInto(ctx, s, src, nil, o)
	}
	src, err := imagexfer.ParseReference(transport, rest)
	if err != nil {
		return nil, err
	}
	return e.pullInto(ctx, s, src, nil, o)
}

// pullLayout copies the image of the OCI layout dir whose ref.name is
// image (the only one if empty), after checking the layout's bounds.
func (e *Engine) pullLayout(ctx context.Context, s storage.Store, dir, image string, o *TransferOptions) (*Image, error) {
	name, err := imagexfer.CheckLayout(dir, image)
	if err != nil {
		return nil, err
	}
	src, err := ocilayout.NewReference(dir, image)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImageReference, err)
	}
	return e.pullInto(ctx, s, src, name, o)
}

// loadOCIArchive unpacks the oci-archive file, checking every member,
// into a directory under the engine's root and copies its image.
func (e *Engine) loadOCIArchive(ctx context.Context, s storage.Store, file, image string, o *TransferOptions) (*Image, error) {
	if err := os.MkdirAll(e.imageTmpDir(), 0o700); err != nil {
		return nil, err
	}
	// An uncompressed tar unpacks to less than its size.
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if free, err := stagingSpace(e.imageTmpDir())(); err == nil && fi.Size() > free {
		return nil, fmt.Errorf("%w: the oci-archive (%s) does not fit in %s: make room there", ErrNoRoom, sizeString(fi.Size()), e.imageTmpDir())
	}
	dir, err := os.MkdirTemp(e.imageTmpDir(), "oci-archive-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = fsutil.RemoveAll(dir) }()
	if err := imagexfer.UnpackOCIArchive(ctx, file, dir); err != nil {
		return nil, err
	}
	return e.pullLayout(ctx, s, dir, image, o)
}

// loadDockerArchive copies the only image of the docker-archive file,
// under the first of its names (RepoTags).
func (e *Engine) loadDockerArchive(ctx context.Context, s storage.Store, file string, o *TransferOptions) (*Image, error) {
	r, err := dockerarchive.NewReader(e.systemContext(o), file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHostileImage, err)
	}
	defer r.Close()
	imgs, err := r.List()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHostileImage, err)
	}
	if len(imgs) != 1 || len(imgs[0]) == 0 {
		return nil, fmt.Errorf("%w: the archive holds %d images; ckpt loads archives of one image", ErrImageReference, len(imgs))
	}
	return e.pullInto(ctx, s, imgs[0][0], nil, o)
}

// ImageLoad loads the image in file, an oci-archive or docker-archive
// (told apart by their contents; a docker-archive may be compressed) or an
// OCI layout directory, into the store and returns it. Archives of several
// images are refused.
func (e *Engine) ImageLoad(ctx context.Context, file string, o *TransferOptions) (*Image, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	if fi.IsDir() {
		return e.ImagePull(ctx, TransportOCI+":"+file, o)
	}
	looks, err := format.SniffFile(file)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	switch looks {
	case format.LooksOCIArchive:
		return e.ImagePull(ctx, TransportOCIArchive+":"+file, o)
	case format.LooksDockerArchive:
		return e.ImagePull(ctx, TransportDockerArchive+":"+file, o)
	case format.LooksUnknown:
		return nil, fmt.Errorf("load %s: %w: it is neither an oci-archive nor a docker-archive", file, ErrImageReference)
	}
	err = fmt.Errorf("load %s: %w: it looks like %s, not an oci-archive or docker-archive", file, ErrImageReference, looks)
	switch looks {
	case format.LooksRootfs:
		return nil, remedy(err, RemedyImportRootfs, file)
	case format.LooksCheckpoint:
		return nil, remedy(err, RemedyRestoreArchive, file)
	}
	return nil, err
}

// ImagePush copies the image named by img (name, ID or ID prefix) to dest:
// TRANSPORT:... or a bare name (docker://). An empty dest is img's first
// name, in its registry.
func (e *Engine) ImagePush(ctx context.Context, img, dest string, o *TransferOptions) (err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "push %s", img)
		}
	}()
	s, err := e.storeOpen()
	if err != nil {
		return err
	}
	si, err := e.resolveImage(s, img)
	if err != nil {
		return err
	}
	if dest == "" {
		if len(si.Names) == 0 {
			return fmt.Errorf("%w: image %s has no name: give DESTINATION", ErrImageReference, img)
		}
		dest = si.Names[0]
	}
	transport, rest := imagexfer.SplitTransport(dest)
	if transport == TransportStorage {
		return fmt.Errorf("%w: %s: ckpt does not write into another store", ErrImageReference, dest)
	}
	dst, err := imagexfer.ParseReference(transport, rest)
	if err != nil {
		return err
	}
	return e.copyOut(ctx, s, si, dst, o)
}

// copyOut copies the store's image si to dst. A checkpoint image is not
// written as a docker-archive, which would drop what makes it one.
func (e *Engine) copyOut(ctx context.Context, s storage.Store, si *storage.Image, dst types.ImageReference, o *TransferOptions) error {
	if _, err := s.ImageBigData(si.ID, storage.ImageDigestBigDataKey); err != nil {
		return fmt.Errorf("%w: image %s has no manifest (ckpt image import made it); only pulled or loaded images can be pushed or saved", ErrImageReference, shortImageID(si.ID))
	}
	if dst.Transport().Name() == TransportDockerArchive {
		if ann, _ := imageAnnotations(s, si); isCheckpointImage(ann) {
			return fmt.Errorf("%w: image %s is a checkpoint image, and a docker-archive keeps no manifest annotations: it would load as a plain image; use --format oci-archive or oci-dir", ErrImageReference, shortImageID(si.ID))
		}
	}
	src, err := istorage.Transport.NewStoreReference(s, nil, si.ID)
	if err != nil {
		return err
	}
	sys := e.systemContext(o)
	if err := os.MkdirAll(sys.BigFilesTemporaryDir, 0o700); err != nil {
		return err
	}
	return copyImage(ctx, dst, src, sys, o.progress())
}

func shortImageID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ImageSave writes the image named by img to out as a docker-archive
// (formatName "" or SaveDockerArchive, podman's default), an oci-archive
// or an OCI layout directory (SaveOCIDir, which may exist and hold other
// images). An
// archive is written to a temporary file beside out and renamed: a failed
// save leaves no file at out.
func (e *Engine) ImageSave(ctx context.Context, img, formatName, out string) (err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "save %s to %s", img, out)
		}
	}()
	s, err := e.storeOpen()
	if err != nil {
		return err
	}
	si, err := e.resolveImage(s, img)
	if err != nil {
		return err
	}
	var named reference.NamedTagged
	if len(si.Names) > 0 {
		if n, err := reference.ParseNormalizedNamed(si.Names[0]); err == nil {
			named, _ = reference.TagNameOnly(n).(reference.NamedTagged)
		}
	}
	switch formatName {
	case SaveOCIDir:
		dst, err := ocilayout.NewReference(out, nameOrEmpty(named))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrImageReference, err)
		}
		return e.copyOut(ctx, s, si, dst, nil)
	case "", SaveOCIArchive, SaveDockerArchive:
		return e.saveArchive(ctx, s, si, formatName, named, out)
	}
	return fmt.Errorf("%w: unknown format %q (want %s, %s or %s)", ErrImageReference, formatName, SaveOCIArchive, SaveDockerArchive, SaveOCIDir)
}

// saveArchive writes an oci-archive or docker-archive of si to a
// temporary file beside out, syncs it and renames it to out.
func (e *Engine) saveArchive(ctx context.Context, s storage.Store, si *storage.Image, formatName string, named reference.NamedTagged, out string) error {
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".ckpt-save")
	_ = os.Remove(tmp)
	defer func() { _ = os.Remove(tmp) }()
	var dst types.ImageReference
	var err error
	if formatName == SaveOCIArchive {
		dst, err = ociarchive.NewReference(tmp, nameOrEmpty(named))
	} else {
		dst, err = dockerarchive.NewReference(tmp, named)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrImageReference, err)
	}
	if err := e.copyOut(ctx, s, si, dst, nil); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	return fsutil.SyncDir(filepath.Dir(out))
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func nameOrEmpty(n reference.NamedTagged) string {
	if n == nil {
		return ""
	}
	return n.String()
}
