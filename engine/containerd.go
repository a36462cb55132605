package engine

import (
	"io"

	"github.com/ckpt/ckpt/format"
)

// TransportContainerd names a containerd 1.x checkpoint image (`ctr
// containers checkpoint --task`) in a containerd content store, for
// restore: containerd:DIR@sha256:HEX, DIR a containerd root, its content
// directory or an OCI layout holding the blobs, HEX the image's digest
// (`ctr images ls`); containerd:DIR for an OCI layout whose index.json
// lists that image alone. containerd's metadata (meta.db, which names
// images) is locked while containerd runs, so the digest names the image.
const TransportContainerd = "containerd"

// containerdLayer returns the containerd checkpoint image ref (what
// follows the transport: format.ParseContainerdRef) as a legacy archive
// stream, which an import reads as it reads any archive.
func containerdLayer(ref string) (*layerSource, error) {
	c, err := format.ParseContainerdRef(ref)
	if err != nil {
		return nil, err
	}
	return &layerSource{size: -1, noDrain: true, open: func() (io.ReadCloser, error) { return c.Open(), nil }}, nil
}
