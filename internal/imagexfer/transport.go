package imagexfer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/docker"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	stypes "go.podman.io/storage/types"
)

// The transports of image references, podman's names.
const (
	TransportDocker        = "docker"             // docker://NAME: a registry
	TransportOCI           = "oci"                // oci:DIR[:NAME]: an OCI image layout
	TransportOCIArchive    = "oci-archive"        // oci-archive:FILE[:NAME]
	TransportDockerArchive = "docker-archive"     // docker-archive:FILE[:NAME]
	TransportStorage       = "containers-storage" // containers-storage:[GRAPHROOT]NAME: podman's store
)

// SplitTransport splits TRANSPORT:REST for the transports ckpt knows;
// anything else is a bare name (transport "").
func SplitTransport(ref string) (transport, rest string) {
	t, rest, ok := strings.Cut(ref, ":")
	switch t {
	case TransportDocker, TransportOCI, TransportOCIArchive, TransportDockerArchive, TransportStorage:
		if ok {
			return t, rest
		}
	}
	return "", ref
}

// ParseReference parses rest with the transport's own parser; a bare
// name (transport "") is a registry reference (docker://).
func ParseReference(transport, rest string) (types.ImageReference, error) {
	var r types.ImageReference
	var err error
	if transport == "" {
		r, err = docker.ParseReference("//" + rest)
	} else {
		r, err = transports.Get(transport).ParseReference(rest)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImageReference, err)
	}
	return r, nil
}

// OpenForeignStore opens the containers/storage store a
// containers-storage: reference names ("[GRAPHROOT]NAME", or NAME in the
// default store of storage.conf, podman's) with get, and returns the
// reference in it. The caller shuts the store down.
func OpenForeignStore(rest string, get func(stypes.StoreOptions) (storage.Store, error)) (storage.Store, types.ImageReference, error) {
	opts, err := stypes.DefaultStoreOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("read storage.conf: %w", err)
	}
	if strings.HasPrefix(rest, "[") {
		spec, name, ok := strings.Cut(rest[1:], "]")
		if !ok || !filepath.IsAbs(spec) {
			return nil, nil, fmt.Errorf("%w: containers-storage:%s: give [/absolute/graph/root]IMAGE", ErrImageReference, rest)
		}
		if spec != opts.GraphRoot {
			// Another store's run root: beside it, not the default's.
			opts.RunRoot = filepath.Join(spec, "ckpt-runroot")
		}
		opts.GraphRoot, rest = spec, name
	}
	if _, err := os.Stat(opts.GraphRoot); err != nil {
		return nil, nil, fmt.Errorf("%w: containers-storage: no store at %s", ErrImageReference, opts.GraphRoot)
	}
	if opts.GraphDriverName == "" {
		// The driver the store was made with (containers/storage would
		// find it too, and log that it did).
		for _, d := range []string{"overlay", "vfs"} {
			if _, err := os.Stat(filepath.Join(opts.GraphRoot, d+"-images")); err == nil {
				opts.GraphDriverName = d
				break
			}
		}
	}
	s, err := get(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", opts.GraphRoot, err)
	}
	r, err := istorage.Transport.ParseStoreReference(s, rest)
	if err != nil {
		_, _ = s.Shutdown(false)
		return nil, nil, fmt.Errorf("%w: containers-storage:%s: %w", ErrImageReference, rest, err)
	}
	return s, r, nil
}

// CheckURLs refuses a layer of src (not a registry) to be fetched from a
// URL: only what the archive or layout holds is read.
func CheckURLs(src types.ImageReference, layers []types.BlobInfo) error {
	for _, l := range layers {
		if len(l.URLs) > 0 && src.Transport().Name() != TransportDocker {
			return fmt.Errorf("%w: layer %s is to be fetched from %s, outside the image; ckpt loads only what the archive holds", ErrHostileImage, l.Digest, l.URLs[0])
		}
	}
	return nil
}
