package incremental

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ckpt/ckpt/format/criuimg"
)

// checkDir checks the image set in dir with criuimg.CheckImages, reading
// the metadata images whole (at most MaxMetadataSize bytes each) and of
// the others what criuimg.Needs asks for (their first 8 bytes, a ghost
// file's first entry). hasParent says whether pagemap entries may
// be in parent.
func checkDir(dir string, pageSize int64, hasParent bool) error {
	files, err := dirInfo(dir)
	if err != nil {
		return err
	}
	if err := criuimg.CheckImages(files, &criuimg.CheckOptions{PageSize: pageSize, HasParent: hasParent}).Err(); err != nil {
		return fmt.Errorf("check %s: %w: %w", dir, ErrImage, err)
	}
	return nil
}

// dirInfo describes the regular files of dir for criuimg.CheckImages.
func dirInfo(dir string) (map[string]criuimg.Info, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string]criuimg.Info, len(ents))
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		p := filepath.Join(dir, name)
		if criuimg.NeedsContent(name) {
			b, err := readBounded(p, MaxMetadataSize)
			if err != nil {
				return nil, err
			}
			files[name] = criuimg.Info{Size: int64(len(b)), Data: b}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		head := make([]byte, max(criuimg.Needs(name), 8))
		n, err := io.ReadFull(f, head)
		f.Close()
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, err
		}
		files[name] = criuimg.Info{Size: fi.Size(), Data: head[:n]}
	}
	return files, nil
}
