package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ckpt/ckpt/format"
)

// notCheckpoint returns, if the file at path is not a checkpoint archive
// at all, an error wrapping format.ErrNotCheckpoint that says what it
// looks like (format.Sniff), with the remedy that fits; nil if it may be
// one (the reader's error then says what is wrong with it).
func notCheckpoint(path string) error {
	looks, err := format.SniffFile(path)
	if err != nil {
		return nil
	}
	err = looks.NotCheckpoint()
	switch {
	case err == nil, looks == format.LooksSealed:
		// A sealed archive's key was checked (checkSealed): what is
		// inside is the extraction's to judge.
		return nil
	case looks == format.LooksRootfs:
		return remedy(err, RemedyImportRootfs, path)
	case looks.ImageArchive():
		return remedy(err, RemedyImageArchive, path)
	}
	return err
}

// notRootfs returns an error wrapping ErrNotRootfs if the image import
// source is clearly no root filesystem: an image archive or OCI layout
// directory, a checkpoint archive, a text or empty file. What it cannot
// tell (another tar, a compression it does not decode) is left to the
// store.
func notRootfs(source string, fi os.FileInfo) error {
	if fi.IsDir() {
		if _, err := os.Lstat(filepath.Join(source, "oci-layout")); err == nil {
			return remedy(fmt.Errorf("%w: it holds an OCI image layout (oci-layout)", ErrNotRootfs), RemedyImageArchive, source)
		}
		return nil
	}
	looks, err := format.SniffFile(source)
	if err != nil {
		return nil
	}
	what := fmt.Errorf("%w: it looks like %s", ErrNotRootfs, looks)
	switch looks {
	case format.LooksOCIArchive, format.LooksDockerArchive:
		return remedy(what, RemedyImageArchive, source)
	case format.LooksCheckpoint:
		return remedy(what, RemedyRestoreArchive, source)
	case format.LooksText, format.LooksEmpty:
		return what
	}
	return nil
}
