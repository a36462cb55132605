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
// root process that does what the images say) sees them: tasks in the
// namespaces of the dump's CRIU (restored in the host's), threads with
// capabilities outside defaultCaps (CRIU restores each thread's recorded
// sets as they are, and its own full ones where none are recorded), and
// tmpfs contents with device nodes or names that lead tar outside the
// mount (criuimg.CheckTmpfs).
func checkImagePolicy(imgDir string, hostNet bool) error {
	if err := checkNamespaces(imgDir, hostNet); err != nil {
		return err
	}
	return checkImageFiles(imgDir)
}

// checkImageFiles checks the core and tmpfs images of the image set.
func checkImageFiles(imgDir string) error {
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

// checkNamespaces checks that every task of the image set has its own
// PID, IPC, UTS, mount and (unless hostNet) network namespace.
func checkNamespaces(imgDir string, hostNet bool) error {
	wrap := func(err error) error { return fmt.Errorf("%w: %w", format.ErrFormat, err) }
	data, err := readImage(filepath.Join(imgDir, "inventory.img"))
	if err != nil {
		return err
	}
	inv, err := criuimg.ReadInventory(data)
	if err != nil {
		return wrap(err)
	}
	if data, err = readImage(filepath.Join(imgDir, "pstree.img")); err != nil {
		return err
	}
	tree, err := criuimg.ReadPstree(data)
	if err != nil {
		return wrap(err)
	}
	tasks := make(map[uint32]criuimg.TaskKobjIDs, len(tree))
	for _, p := range tree {
		name := fmt.Sprintf("ids-%d.img", p.PID)
		if data, err = readImage(filepath.Join(imgDir, name)); err != nil {
			return wrap(fmt.Errorf("task %d: %w", p.PID, err))
		}
		if tasks[p.PID], err = criuimg.ReadIDs(name, data); err != nil {
			return wrap(err)
		}
	}
	kinds := []string{criuimg.NsPID, criuimg.NsIPC, criuimg.NsUTS, criuimg.NsMnt}
	if !hostNet {
		kinds = append(kinds, criuimg.NsNet)
	}
	if err := criuimg.CheckNamespaces(inv, tasks, kinds); err != nil {
		return wrap(err)
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
