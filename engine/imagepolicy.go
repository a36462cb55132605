package engine

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
)

// grantedCaps is the capability mask of defaultCaps, the most any
// container process of this engine holds.
var grantedCaps = func() uint64 {
	m, err := criuimg.CapMask(defaultCaps)
	if err != nil {
		panic(err)
	}
	return m
}()

// checkCreds refuses CRIU images whose threads would be restored with
// capabilities the engine does not grant its containers (CRIU restores
// each thread's recorded sets as they are, with its own full ones where
// none are recorded), before CRIU sees them.
func checkCreds(imgDir string) error {
	ents, err := os.ReadDir(imgDir)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		name := ent.Name()
		if !strings.HasPrefix(name, "core-") || !strings.HasSuffix(name, ".img") {
			continue
		}
		data, err := readImage(filepath.Join(imgDir, name))
		if err != nil {
			return err
		}
		c, err := criuimg.ReadCreds(name, data)
		if err == nil && c == nil {
			err = fmt.Errorf("%w: %s records no credentials", criuimg.ErrPrivilege, name)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", format.ErrFormat, name, err)
		}
		if err := c.CheckCaps(grantedCaps); err != nil {
			return fmt.Errorf("%w: %s: %w (ckpt grants its containers %s)", format.ErrFormat, name, err, strings.Join(defaultCaps, ", "))
		}
	}
	return nil
}

// readImage reads a metadata image of at most format.MaxParsedImageSize
// bytes.
func readImage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, format.MaxParsedImageSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > format.MaxParsedImageSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", format.ErrTooLarge, filepath.Base(path), format.MaxParsedImageSize)
	}
	return b, nil
}
