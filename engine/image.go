package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/ckpt/ckpt/internal/fileio"
)

// Image is an image in the store.
type Image struct {
	// ID is the image's storage ID.
	ID string `json:"id"`
	// Names are its names (normalized, e.g. localhost/workload:latest).
	Names []string `json:"names"`
	// TopLayer is the ID of its top layer.
	TopLayer string `json:"top_layer"`
	// Created is its creation time.
	Created time.Time `json:"created"`
	// Size is its size in bytes, or -1 if unknown.
	Size int64 `json:"size"`
}

// NormalizeImageName returns the name under which an image called name is
// stored, as podman does for local images: "workload" becomes
// "localhost/workload:latest"; names with a registry or a tag keep them.
func NormalizeImageName(name string) string {
	slash := strings.LastIndexByte(name, '/')
	if !strings.Contains(name[slash+1:], ":") && !strings.Contains(name, "@") {
		name += ":latest"
	}
	if first, _, ok := strings.Cut(name, "/"); !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		name = "localhost/" + name
	}
	return name
}

// ImageImport imports a root filesystem as a one-layer image called name.
// source is a directory or a tar archive, optionally compressed with gzip,
// zstd, xz or bzip2 (detected from its content). The name must not be in
// use. A source that is clearly no root filesystem (an image archive or
// OCI layout directory, a checkpoint archive, a text or empty file) is
// refused with ErrNotRootfs, before the store is opened.
func (e *Engine) ImageImport(ctx context.Context, source, name string) (_ *Image, err error) {
	defer func() {
		if err != nil {
			err = wrapf(err, "import image %s from %s", name, source)
		}
	}()
	if name == "" {
		return nil, errors.New("empty image name")
	}
	fi, err := os.Stat(source)
	if err != nil {
		return nil, err
	}
	if err := notRootfs(source, fi); err != nil {
		return nil, err
	}
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	full := NormalizeImageName(name)
	if _, err := s.Lookup(full); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrNameInUse, full)
	}
	var diff io.ReadCloser
	if fi.IsDir() {
		diff, err = archive.Tar(source, archive.Uncompressed)
	} else {
		diff, err = os.Open(source)
	}
	if err != nil {
		return nil, err
	}
	defer diff.Close()
	layer, _, err := s.PutLayer("", "", nil, "", false, nil, fileio.ContextReader(ctx, diff))
	if err != nil {
		return nil, fmt.Errorf("put layer: %w", err)
	}
	img, err := s.CreateImage("", []string{full}, layer.ID, "", &storage.ImageOptions{CreationDate: time.Now().UTC()})
	if err != nil {
		_ = s.DeleteLayer(layer.ID)
		return nil, fmt.Errorf("create image: %w", err)
	}
	return e.image(s, img), nil
}

func (e *Engine) image(s storage.Store, img *storage.Image) *Image {
	size, err := s.ImageSize(img.ID)
	if err != nil {
		size = -1
	}
	return &Image{ID: img.ID, Names: img.Names, TopLayer: img.TopLayer, Created: img.Created, Size: size}
}

// Images lists the images in the store.
func (e *Engine) Images(ctx context.Context) ([]*Image, error) {
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(imgs))
	for i := range imgs {
		out = append(out, e.image(s, &imgs[i]))
	}
	return out, nil
}

// resolveImage finds an image by name (as given or normalized), ID or
// unique ID prefix.
func (e *Engine) resolveImage(s storage.Store, ref string) (*storage.Image, error) {
	for _, cand := range []string{ref, NormalizeImageName(ref)} {
		if img, err := s.Image(cand); err == nil {
			return img, nil
		}
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var match *storage.Image
	for i := range imgs {
		if len(ref) >= 3 && strings.HasPrefix(imgs[i].ID, ref) {
			if match != nil {
				return nil, fmt.Errorf("%w: %s is an ambiguous ID prefix", ErrUnknownImage, ref)
			}
			match = &imgs[i]
		}
	}
	if match == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownImage, ref)
	}
	return match, nil
}

// ImageInspect returns the image named by ref (name, ID or ID prefix).
func (e *Engine) ImageInspect(ctx context.Context, ref string) (*Image, error) {
	s, err := e.storeOpen()
	if err != nil {
		return nil, err
	}
	img, err := e.resolveImage(s, ref)
	if err != nil {
		return nil, err
	}
	return e.image(s, img), nil
}

// ImageRemove deletes the image named by ref and its layers. An image used
// by a container is refused by the store.
func (e *Engine) ImageRemove(ctx context.Context, ref string) error {
	s, err := e.storeOpen()
	if err != nil {
		return err
	}
	img, err := e.resolveImage(s, ref)
	if err != nil {
		return err
	}
	if _, err := s.DeleteImage(img.ID, true); err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}
