package imagexfer

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker/reference"
)

// Limits of the OCI layouts and oci-archives ckpt reads (blob digests and
// sizes, manifests and configs are checked by containers/image).
const (
	// MaxLayoutIndex bounds index.json and oci-layout, which
	// containers/image decodes without a bound (its manifest limit).
	MaxLayoutIndex = 4 << 20
	// MaxLayoutManifests bounds the manifests index.json lists.
	MaxLayoutManifests = 1024
	// MaxArchiveMembers bounds the members of an oci-archive.
	MaxArchiveMembers = 1 << 16
)

// ociIndex is what ckpt reads of an OCI layout's index.json.
type ociIndex struct {
	SchemaVersion int `json:"schemaVersion"`
	Manifests     []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
}

// ociIndexType is the media type of an OCI image index.
const ociIndexType = "application/vnd.oci.image.index.v1+json"

// maxIndexDepth bounds the nesting of image indexes in a layout.
const maxIndexDepth = 4

// RefNameAnnotation is the OCI annotation naming an image in a layout.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// CheckLayout checks the OCI layout dir before containers/image reads
// it: oci-layout and index.json regular and bounded, a bounded index, and
// nothing under blobs/ but directories and regular files (a symbolic link
// would lead a blob read outside the layout). It returns the name of the
// image whose ref.name is image (of the only image if image is empty), if
// that is an image name.
func CheckLayout(dir, image string) (reference.Named, error) {
	for _, f := range []string{"oci-layout", "index.json"} {
		fi, err := os.Lstat(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("%w: %s is no OCI layout: %w", ErrImageReference, dir, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() > MaxLayoutIndex {
			return nil, fmt.Errorf("%w: %s is not a regular file of at most %d bytes", ErrHostileImage, f, MaxLayoutIndex)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	idx, err := checkIndex(dir, "index.json", b, 0)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file (%s)", ErrHostileImage, p, d.Type())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return layoutImageName(idx, image), nil
}

// checkIndex decodes the index b (index.json, or a nested index blob) of
// the layout dir and checks that it lists at most MaxLayoutManifests
// manifests whose blobs are at most MaxLayoutIndex bytes (containers/image
// reads a layout's manifests whole) and have the digests listed, and the same of the indexes it lists,
// down to maxIndexDepth.
func checkIndex(dir, what string, b []byte, depth int) (*ociIndex, error) {
	var idx ociIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: decode %s: %w", ErrHostileImage, what, err)
	}
	if len(idx.Manifests) > MaxLayoutManifests {
		return nil, fmt.Errorf("%w: %s lists %d manifests, more than %d", ErrHostileImage, what, len(idx.Manifests), MaxLayoutManifests)
	}
	for _, m := range idx.Manifests {
		alg, hex, ok := strings.Cut(m.Digest, ":")
		if !ok || !filepath.IsLocal(alg) || !filepath.IsLocal(hex) || strings.ContainsRune(alg+hex, '/') {
			return nil, fmt.Errorf("%w: %s lists the digest %q", ErrHostileImage, what, m.Digest)
		}
		p := filepath.Join(dir, "blobs", alg, hex)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > MaxLayoutIndex {
			return nil, fmt.Errorf("%w: manifest %s is not a regular file of at most %d bytes in the layout", ErrHostileImage, m.Digest, MaxLayoutIndex)
		}
		nb, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		// containers/image reads a layout's manifest unchecked.
		if got := digest.FromBytes(nb); got.String() != m.Digest {
			return nil, fmt.Errorf("%w: manifest %s in the layout has the digest %s: it is not the manifest %s names", ErrHostileImage, m.Digest, got, what)
		}
		if m.MediaType != ociIndexType {
			continue
		}
		if depth+1 >= maxIndexDepth {
			return nil, fmt.Errorf("%w: image indexes nested deeper than %d", ErrHostileImage, maxIndexDepth)
		}
		if _, err := checkIndex(dir, "index "+m.Digest, nb, depth+1); err != nil {
			return nil, err
		}
	}
	return &idx, nil
}

// layoutImageName is the image name of the index's image whose ref.name
// is image (the only image if image is empty), or nil if it has none (a
// bare tag such as "latest" names no image).
func layoutImageName(idx *ociIndex, image string) reference.Named {
	for _, m := range idx.Manifests {
		ann := m.Annotations[RefNameAnnotation]
		if image != "" && ann != image || image == "" && len(idx.Manifests) != 1 {
			continue
		}
		if n, err := reference.ParseNormalizedNamed(ann); err == nil {
			return n
		}
	}
	return nil
}

// UnpackOCIArchive unpacks the oci-archive file into the empty directory
// dir: at most MaxArchiveMembers members, each a directory or regular file
// with a local name, written only below dir (os.Root).
func UnpackOCIArchive(ctx context.Context, file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: read %s: %w", ErrHostileImage, file, err)
		}
		if n >= MaxArchiveMembers {
			return fmt.Errorf("%w: more than %d members", ErrHostileImage, MaxArchiveMembers)
		}
		if err := unpackMember(root, hdr, tr); err != nil {
			return err
		}
	}
}

// unpackMember writes one oci-archive member below root.
func unpackMember(root *os.Root, hdr *tar.Header, r io.Reader) error {
	name := path.Clean(hdr.Name)
	if !filepath.IsLocal(name) {
		return fmt.Errorf("%w: member %q is not a local path", ErrHostileImage, hdr.Name)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return root.MkdirAll(name, 0o700)
	case tar.TypeReg:
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return err
			}
		}
		w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%w: member %s: %w", ErrHostileImage, name, err)
		}
		_, err = io.Copy(w, r)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return fmt.Errorf("%w: member %s is a %s, not a directory or regular file", ErrHostileImage, name, typeName(hdr.Typeflag))
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("tar type %q", t)
}
