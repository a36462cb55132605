package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/imagexfer"
	"github.com/spf13/pflag"
	"go.podman.io/image/v5/types"
)

// addImageFlags gives a command that reads archives the flags of
// checkpoint images in registries, podman's.
func addImageFlags(fs *pflag.FlagSet) {
	fs.Bool("tls-verify", true, "require HTTPS and verify certificates of docker:// registries")
	fs.String("authfile", "", "registry credentials `FILE` (default $REGISTRY_AUTH_FILE, then podman's and docker's)")
}

// systemContext is containers/image's context of the image flags.
func systemContext(fs *pflag.FlagSet) *types.SystemContext {
	sys := &types.SystemContext{AuthFilePath: getString(fs, "authfile")}
	if sys.AuthFilePath == "" {
		sys.AuthFilePath = os.Getenv("REGISTRY_AUTH_FILE")
	}
	if !getBool(fs, "tls-verify") {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	return sys
}

// imageSource tells whether the argument a names a checkpoint image
// rather than an archive: a reference of a transport (oci:, oci-archive:,
// docker-archive:, docker://, containers-storage:), an OCI layout
// directory, or an oci-archive or docker-archive file.
func imageSource(a string) (imagexfer.Source, bool) {
	if s, ok := imagexfer.ParseSource(a); ok {
		return s, true
	}
	fi, err := os.Stat(a)
	if err != nil {
		return imagexfer.Source{}, false
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(a, "oci-layout")); err == nil {
			return imagexfer.Source{Transport: imagexfer.TransportOCI, Path: a}, true
		}
		return imagexfer.Source{}, false
	}
	switch looks, _ := format.SniffFile(a); looks {
	case format.LooksOCIArchive:
		return imagexfer.Source{Transport: imagexfer.TransportOCIArchive, Path: a}, true
	case format.LooksDockerArchive:
		return imagexfer.Source{Transport: imagexfer.TransportDockerArchive, Path: a}, true
	}
	return imagexfer.Source{}, false
}

// imageArgs replaces each checkpoint image among args and --parent by a
// path to its layer's archive, copied out and verified
// (imagexfer.ReadCheckpointLayer) into an unlinked temporary file, and
// returns the files with the names given. An image that is no checkpoint
// image, or whose descriptors do not match, is an error naming it.
func imageArgs(ctx context.Context, fs *pflag.FlagSet, args []string) (*unsealed, error) {
	u := &unsealed{}
	sys := systemContext(fs)
	open := func(a string) (string, error) {
		if c, ok, err := containerdSource(a); ok || err != nil {
			if err != nil {
				return "", fmt.Errorf("%s: %w", a, err)
			}
			return u.openContainerd(c, a)
		}
		src, ok := imageSource(a)
		if !ok {
			return a, nil
		}
		p, err := u.openImage(ctx, src, a, sys)
		if err != nil {
			return "", fmt.Errorf("%s: %w", a, err)
		}
		return p, nil
	}
	if err := replaceArgs(fs, args, open); err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

// replaceArgs replaces each of args, and of the --parent values, by what
// open returns for it.
func replaceArgs(fs *pflag.FlagSet, args []string, open func(string) (string, error)) error {
	for i, a := range args {
		p, err := open(a)
		if err != nil {
			return err
		}
		args[i] = p
	}
	f := fs.Lookup("parent")
	if f == nil {
		return nil
	}
	// GetStringArray returns a copy: the flag's value is replaced.
	ps, _ := fs.GetStringArray("parent")
	for i, a := range ps {
		p, err := open(a)
		if err != nil {
			return err
		}
		ps[i] = p
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok && len(ps) > 0 {
		return sv.Replace(ps)
	}
	return nil
}

// openImage copies the checkpoint layer of src into a temporary file and
// returns the path that opens it.
func (u *unsealed) openImage(ctx context.Context, src imagexfer.Source, name string, sys *types.SystemContext) (string, error) {
	f, p, remove, err := layerFile("")
	if err != nil {
		return "", err
	}
	_, err = imagexfer.ReadCheckpointLayer(ctx, src, f, &imagexfer.ReadOptions{Sys: sys})
	if err == nil {
		err = checkLayerLooks(f)
	}
	if err != nil {
		f.Close()
		remove()
		return "", err
	}
	u.files = append(u.files, f)
	u.removes = append(u.removes, remove)
	u.names = append(u.names, p, name)
	return p, nil
}

// checkLayerLooks refuses a layer that is no checkpoint archive (a root
// filesystem under checkpoint annotations), which would read as an empty
// legacy archive.
func checkLayerLooks(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	looks, err := format.Sniff(f, fi.Size())
	if err != nil {
		return err
	}
	if looks != format.LooksCheckpoint {
		what := "nothing known"
		if looks != format.LooksUnknown {
			what = string(looks)
		}
		return fmt.Errorf("%w: its layer is not a checkpoint archive: it looks like %s", imagexfer.ErrNotCheckpointImage, what)
	}
	return nil
}

// containerdSource opens a containerd checkpoint image: containerd:REF
// (format.ParseContainerdRef: DIR@sha256:DIGEST or an OCI layout), or a
// layout directory that holds one. ok is false for anything else.
func containerdSource(a string) (*format.ContainerdCheckpoint, bool, error) {
	ref, prefixed := strings.CutPrefix(a, "containerd:")
	if !prefixed {
		if fi, err := os.Stat(a); err != nil || !fi.IsDir() {
			return nil, false, nil
		}
	}
	c, err := format.ParseContainerdRef(ref)
	if err != nil && !prefixed {
		// Another kind of layout, or none: imageSource's to judge.
		return nil, false, nil
	}
	return c, err == nil, err
}

// openContainerd writes the containerd checkpoint image c as the archive
// it holds (its descriptors' digests checked as it is written) into a
// temporary file, and returns the path that opens it.
func (u *unsealed) openContainerd(c *format.ContainerdCheckpoint, name string) (string, error) {
	f, p, remove, err := layerFile("")
	if err != nil {
		return "", err
	}
	if err := c.WriteArchive(f); err != nil {
		f.Close()
		remove()
		return "", fmt.Errorf("%s: %w", name, err)
	}
	u.files = append(u.files, f)
	u.removes = append(u.removes, remove)
	u.names = append(u.names, p, name)
	return p, nil
}
