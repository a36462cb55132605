package imagexfer

import "errors"

var (
	// ErrImageReference reports an image reference or file ckpt cannot
	// use: an unknown transport, a malformed name, a file that is no
	// image archive, an image without a manifest to push.
	ErrImageReference = errors.New("invalid image reference")
	// ErrHostileImage reports an image (archive, layout, registry) that
	// breaks the limits of untrusted images or is malformed.
	ErrHostileImage = errors.New("image refused")
	// ErrNotCheckpointImage reports an image whose manifest carries no
	// checkpoint annotation (podman's or CRI-O's).
	ErrNotCheckpointImage = errors.New("not a checkpoint image")
)
