package incremental

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ckpt/ckpt/format"
)

// ImagesDigest returns the digest format.ImagesDigest gives the image set
// in the directory dir once it is stored in an archive (format.Writer's
// AddDir): sha256 over sorted "<file name> <file digest>\n" lines, one per
// regular file directly in dir. The "parent" symlink is skipped, as AddDir
// skips it; any other symlink, subdirectory or special file is an error,
// as in AddDir. The engine records the result as format.Parent.Images of
// the checkpoint whose images name dir as their parent, so chains built in
// place can be checked with format.CheckChain.
func ImagesDigest(dir string) (format.Digest, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("digest images: %w", err)
	}
	members := make([]format.Member, 0, len(ents))
	for _, e := range ents {
		if e.Name() == "parent" && e.Type()&os.ModeSymlink != 0 {
			continue
		}
		if !e.Type().IsRegular() {
			return "", fmt.Errorf("digest images in %s: %s is not a regular file", dir, e.Name())
		}
		d, err := fileDigest(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", fmt.Errorf("digest images: %w", err)
		}
		members = append(members, format.Member{Name: format.CheckpointDir + "/" + e.Name(), Digest: d})
	}
	return format.ImagesDigest(members, format.CheckpointDir), nil
}

// fileDigest returns the sha256 digest of the file name's contents.
func fileDigest(name string) (format.Digest, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return format.ParseDigest("sha256:" + hex.EncodeToString(h.Sum(nil)))
}
