package engine

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/ckpt/ckpt/internal/imagexfer"
)

// Limits of the OCI layouts and oci-archives ckpt reads (package
// imagexfer checks them).
const (
	MaxLayoutIndex     = imagexfer.MaxLayoutIndex
	MaxLayoutManifests = imagexfer.MaxLayoutManifests
	MaxArchiveMembers  = imagexfer.MaxArchiveMembers
)

// refNameAnnotation is the OCI annotation naming an image in a layout.
const refNameAnnotation = imagexfer.RefNameAnnotation

// checkLayerNames reads the tar headers of the store's layer id (as
// containers/storage kept them) and refuses names and hard link targets
// that lead out of the layer (containers/storage applies layers in a
// chroot, where such names land inside the layer under another name) and
// device nodes, which containers/storage creates as they come (0:0
// character devices, overlay whiteouts, excepted): a container needs none
// in its image, /dev is made for it.
func checkLayerNames(s storage.Store, id string) error {
	none := archive.Uncompressed
	rc, err := s.Diff("", id, &storage.DiffOptions{Compression: &none})
	if err != nil {
		return fmt.Errorf("read layer %s: %w", shortImageID(id), err)
	}
	// Drained before it is closed: closing the stream early races with
	// containers/storage's tar-split goroutine that feeds it.
	defer func() {
		_, _ = io.Copy(io.Discard, rc)
		_ = rc.Close()
	}()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer %s: %w", shortImageID(id), err)
		}
		if (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) && (hdr.Devmajor != 0 || hdr.Devminor != 0) {
			return fmt.Errorf("%w: layer %s has the device node %q (%d:%d); ckpt loads no image with devices", ErrHostileImage, shortImageID(id), hdr.Name, hdr.Devmajor, hdr.Devminor)
		}
		names := []string{hdr.Name}
		if hdr.Typeflag == tar.TypeLink {
			names = append(names, hdr.Linkname)
		}
		for _, n := range names {
			if c := strings.TrimPrefix(path.Clean(n), "/"); c != "" && c != "." && !filepath.IsLocal(c) {
				return fmt.Errorf("%w: layer %s has the member %q, which leads out of the layer", ErrHostileImage, shortImageID(id), n)
			}
		}
	}
}

// checkNewLayers runs checkLayerNames on the layers of image id that are
// not in before.
func checkNewLayers(s storage.Store, id string, before map[string]bool) error {
	img, err := s.Image(id)
	if err != nil {
		return err
	}
	for l := img.TopLayer; l != ""; {
		if !before[l] {
			if err := checkLayerNames(s, l); err != nil {
				return err
			}
		}
		layer, err := s.Layer(l)
		if err != nil {
			return err
		}
		l = layer.Parent
	}
	return nil
}
