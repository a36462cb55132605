package format

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ckpt/ckpt/format/criuimg"
)

// checkImageSet checks one CRIU image directory with criuimg.CheckImages
// and summarizes it. Each problem names the member; parent problems wrap
// ErrParent, the others ErrImage.
func checkImageSet(dir string, files map[string]*imageFile, hasParent bool, pageSize int) (ImageSet, []error) {
	set := ImageSet{Dir: dir, Files: len(files)}
	infos := make(map[string]criuimg.Info, len(files))
	for base, f := range files {
		data := f.data
		if data == nil {
			data = f.head
		}
		infos[base] = criuimg.Info{Size: f.size, Data: data}
		if strings.HasPrefix(base, "pages-") && strings.HasSuffix(base, ".img") {
			set.PagesSize += f.size
		}
		if strings.HasPrefix(base, "pagemap-") && f.data != nil {
			if _, ents, err := criuimg.ReadPagemap(base, f.data); err == nil {
				for _, e := range ents {
					if e.Parent() {
						set.ParentPages += int64(e.NrPages)
					}
				}
			}
		}
	}
	if f := files["pstree.img"]; f != nil && f.data != nil {
		if ents, err := criuimg.ReadPstree(f.data); err == nil {
			set.Processes = len(ents)
		}
	}
	rep := criuimg.CheckImages(infos, &criuimg.CheckOptions{PageSize: int64(pageSize), HasParent: hasParent})
	var problems []error
	for _, p := range rep.Problems {
		sentinel := ErrImage
		if errors.Is(p, criuimg.ErrParent) {
			sentinel = ErrParent
		}
		problems = append(problems, &Error{Op: "verify", Member: dir + "/" + p.File, Err: fmt.Errorf("%w: %w", sentinel, p.Err)})
	}
	return set, problems
}
