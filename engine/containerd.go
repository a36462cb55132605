package engine

import (
	"fmt"
	"io"
	"strings"

	"github.com/ckpt/ckpt/format"
)

// TransportContainerd names a containerd 1.x checkpoint image (`ctr
// containers checkpoint --task`) in a containerd content store, for
// restore: containerd:DIR@sha256:HEX, DIR a containerd root, its content
// directory or an OCI layout holding the blobs, HEX the image's digest
// (`ctr images ls`). containerd's metadata (meta.db, which names images)
// is locked while containerd runs, so the digest names the image.
const TransportContainerd = "containerd"

// containerdLayer returns the containerd checkpoint image ref
// (DIR@sha256:HEX, without the transport) as a legacy archive stream
// (format.ContainerdCheckpoint.WriteArchive), which an import reads as it
// reads any archive.
func containerdLayer(ref string) (*layerSource, error) {
	dir, dgst, ok := strings.Cut(ref, "@")
	if !ok || dir == "" {
		return nil, fmt.Errorf("%w: %s:%s: want %s:DIR@sha256:DIGEST (the DIGEST of `ctr images ls`)", ErrImageReference, TransportContainerd, ref, TransportContainerd)
	}
	blobs, err := format.ContainerdBlobs(dir)
	if err != nil {
		return nil, err
	}
	c, err := format.OpenContainerdCheckpoint(blobs, dgst)
	if err != nil {
		return nil, err
	}
	return &layerSource{size: -1, open: func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(c.WriteArchive(pw)) }()
		return pr, nil
	}}, nil
}
