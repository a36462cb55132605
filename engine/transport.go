package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/imagexfer"
)

// The transports of image references, podman's names.
const (
	TransportDocker        = imagexfer.TransportDocker        // docker://NAME: a registry
	TransportOCI           = imagexfer.TransportOCI           // oci:DIR[:NAME]: an OCI image layout
	TransportOCIArchive    = imagexfer.TransportOCIArchive    // oci-archive:FILE[:NAME]
	TransportDockerArchive = imagexfer.TransportDockerArchive // docker-archive:FILE[:NAME]
	TransportStorage       = imagexfer.TransportStorage       // containers-storage:[GRAPHROOT]NAME: podman's store
)

// TransferOptions are the options of a pull, push, load or save. The
// zero value verifies TLS and reads the auth files podman reads.
type TransferOptions struct {
	// TLSVerifyOff allows plain HTTP and unverified TLS to registries
	// (podman's --tls-verify=false).
	TLSVerifyOff bool
	// AuthFile is the registry credentials file; default
	// $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json or
	// /run/containers/UID/auth.json, then ~/.docker/config.json.
	AuthFile string
	// Progress, if set, receives containers/image's progress lines.
	Progress io.Writer
}

// systemContext is the containers/image context of o; blobs are staged
// under the engine's root (Root/image-tmp), not TmpDir, which is meant
// for CRIU images on a tmpfs.
func (e *Engine) systemContext(o *TransferOptions) *types.SystemContext {
	// The blob cache is the engine's, not podman's /var/lib/containers/cache.
	sys := &types.SystemContext{BigFilesTemporaryDir: e.imageTmpDir(), BlobInfoCacheDir: e.imageTmpDir()}
	if o == nil {
		return sys
	}
	sys.AuthFilePath = o.AuthFile
	if sys.AuthFilePath == "" {
		sys.AuthFilePath = os.Getenv("REGISTRY_AUTH_FILE")
	}
	if o.TLSVerifyOff {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
		sys.OCIInsecureSkipTLSVerify = true
	}
	return sys
}

// imageTmpDir is where image transfers stage blobs and unpack
// oci-archives.
func (e *Engine) imageTmpDir() string { return filepath.Join(e.root(), "image-tmp") }

// policyContext accepts any image, as podman's default policy.json does:
// ckpt keeps no signature policy.
func policyContext() (*signature.PolicyContext, error) {
	return signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
}

// copyImage copies src to dst with containers/image, which checks every
// blob's digest and size against its descriptor.
func copyImage(ctx context.Context, dst, src types.ImageReference, sys *types.SystemContext, progress io.Writer) error {
	pc, err := policyContext()
	if err != nil {
		return err
	}
	defer func() { _ = pc.Destroy() }()
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{SourceCtx: sys, DestinationCtx: sys, ReportWriter: progress})
	return err
}

// sourceFacts are what a pull learns of its source before copying.
type sourceFacts struct {
	// ID is the image ID a store gives it (its config's digest).
	ID string
	// Name is its name, if the source gives one.
	Name reference.Named
}

// inspectSource opens src, checks what the limits of untrusted images
// require (no layer fetched from elsewhere than src) and returns its
// facts.
func inspectSource(ctx context.Context, src types.ImageReference, sys *types.SystemContext) (*sourceFacts, error) {
	is, err := src.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	img, err := image.FromSource(ctx, sys, is)
	if err != nil {
		_ = is.Close()
		return nil, err
	}
	defer img.Close()
	if err := imagexfer.CheckURLs(src, img.LayerInfos()); err != nil {
		return nil, err
	}
	cfg := img.ConfigInfo().Digest
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: config digest %q: %w", ErrHostileImage, cfg, err)
	}
	return &sourceFacts{ID: cfg.Encoded(), Name: src.DockerReference()}, nil
}

// pullInto copies src into the engine's store as image f.ID named name
// (none if nil), and returns it. A failed copy leaves no image and no
// layer of its own in the store.
func (e *Engine) pullInto(ctx context.Context, s storage.Store, src types.ImageReference, name reference.Named, o *TransferOptions) (*Image, error) {
	sys := e.systemContext(o)
	if err := os.MkdirAll(sys.BigFilesTemporaryDir, 0o700); err != nil {
		return nil, err
	}
	f, err := inspectSource(ctx, src, sys)
	if err != nil {
		return nil, err
	}
	if name == nil {
		name = f.Name
	}
	if name != nil {
		name = reference.TagNameOnly(name)
	}
	dst, err := istorage.Transport.NewStoreReference(s, name, f.ID)
	if err != nil {
		return nil, err
	}
	// One pull at a time per engine root: a failed pull removes the new
	// layers no image uses, which could be another pull's, half made.
	g, err := fsutil.WaitLock(filepath.Join(e.root(), "pull.lock"), "pull "+transports.ImageName(src))
	if err != nil {
		return nil, err
	}
	defer g.Unlock()
	before, err := layerIDs(s)
	if err != nil {
		return nil, err
	}
	_, err = s.Image(f.ID)
	had := err == nil // the image was there: a failure must not remove it
	err = copyImage(ctx, dst, src, sys, o.progress())
	if err == nil {
		err = checkNewLayers(s, f.ID, before)
	}
	if err != nil {
		dropPartialPull(s, f.ID, had, before)
		return nil, err
	}
	img, err := s.Image(f.ID)
	if err != nil {
		return nil, fmt.Errorf("find the copied image %s: %w", f.ID, err)
	}
	return e.image(s, img), nil
}

func (o *TransferOptions) progress() io.Writer {
	if o == nil {
		return nil
	}
	return o.Progress
}

// layerIDs returns the IDs of the store's layers.
func layerIDs(s storage.Store) (map[string]bool, error) {
	ls, err := s.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	ids := make(map[string]bool, len(ls))
	for _, l := range ls {
		ids[l.ID] = true
	}
	return ids, nil
}

// dropPartialPull removes what a failed copy of image id left: the image
// unless it had been there, and every layer that was not there before
// and that no image or container uses.
func dropPartialPull(s storage.Store, id string, had bool, before map[string]bool) {
	if img, err := s.Image(id); err == nil && img != nil && !had {
		_, _ = s.DeleteImage(id, true)
	}
	ls, err := s.Layers()
	if err != nil {
		return
	}
	used := map[string]bool{}
	if imgs, err := s.Images(); err == nil {
		for _, i := range imgs {
			used[i.TopLayer] = true
		}
	}
	if cs, err := s.Containers(); err == nil {
		for _, c := range cs {
			used[c.LayerID] = true
		}
	}
	// Children first: delete from the top until nothing more goes.
	for range ls {
		gone := false
		for _, l := range ls {
			if !before[l.ID] && !used[l.ID] && s.DeleteLayer(l.ID) == nil {
				gone, before[l.ID] = true, true
			}
		}
		if !gone {
			return
		}
	}
}
