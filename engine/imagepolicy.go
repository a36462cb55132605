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

// checkImagePolicy refuses CRIU images that would give the restored
// container more than the engine grants its containers, before CRIU (a
// root process that does what the images say) sees them: threads with
// capabilities outside defaultCaps (CRIU restores each thread's recorded
// sets as they are, and its own full ones where none are recorded), and
// tmpfs contents with device nodes or names that lead tar outside the
// mount (criuimg.CheckTmpfs).
func checkImagePolicy(imgDir string) error {
	ents, err := os.ReadDir(imgDir)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		name := ent.Name()
		var err error
		switch {
		case strings.HasPrefix(name, "core-") && strings.HasSuffix(name, ".img"):
			err = checkCreds(filepath.Join(imgDir, name))
		case criuimg.IsTmpfsImage(name):
			err = checkTmpfs(filepath.Join(imgDir, name))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkCreds checks the capabilities of the thread of the core image at
// path.
func checkCreds(path string) error {
	name := filepath.Base(path)
	data, err := readImage(path)
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
	return nil
}

// checkTmpfs checks the tmpfs content image at path.
func checkTmpfs(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := criuimg.CheckTmpfs(filepath.Base(path), f, nil); err != nil {
		return fmt.Errorf("%w: %w", format.ErrFormat, err)
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
