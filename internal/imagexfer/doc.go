// Package imagexfer is the image transport code the engine and
// ckptinspect share: the transports of image references (podman's names),
// the checks of untrusted OCI layouts and oci-archives made before
// containers/image reads them, the checkpoint annotations, and the reading
// of a checkpoint image's layer for ckptinspect.
//
// Invariants:
//   - Images from outside are untrusted archives. A layout is checked
//     before containers/image reads it (CheckLayout: index.json and
//     oci-layout regular and at most MaxLayoutIndex bytes, at most
//     MaxLayoutManifests manifests per index, each manifest and nested
//     index a regular blob of at most MaxLayoutIndex bytes whose digest is
//     the one its index lists (containers/image does not check it), nothing but
//     directories and regular files under blobs/); an oci-archive is
//     unpacked here, not by containers/image (UnpackOCIArchive: at most
//     MaxArchiveMembers members, directories and regular files with local
//     names, written through os.Root); a layer to be fetched from a URL
//     outside a layout or archive is refused (CheckURLs).
//   - ReadCheckpointLayer checks every descriptor it follows: the
//     manifest's digest against the layout's index (CheckLayout), the
//     reference's digest or a list's, the config's (containers/image), and the
//     layer's digest and size while it is copied out; a layer that does not
//     match is refused after it was read and before anyone reads the copy.
//   - An image is a checkpoint image only by its manifest's annotations
//     (podman's io.podman.annotations.checkpoint.* or CRI-O's), as podman
//     and CRI-O judge; anything else is ErrNotCheckpointImage.
//   - Nothing here imports the engine, nor runs a program: ckptinspect uses
//     it without root for files and layouts (containers-storage: needs
//     whatever access the store's files need).
//   - Errors wrap ErrImageReference (a reference or file that is no
//     image), ErrHostileImage (limits broken, digests wrong) or
//     ErrNotCheckpointImage.
package imagexfer
