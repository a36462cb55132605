package inspect

import (
	"os"
	"path/filepath"
	"runtime/metrics"
	"testing"
)

// imageNames are the images FuzzInspectImage decodes; the fuzzer picks
// one by index.
var imageNames = []string{
	"inventory.img", "pstree.img", "core-1.img", "mm-1.img", "pagemap-1.img", "ids-1.img",
	"fdinfo-2.img", "files.img", "fs-1.img", "stats-dump", "pipes-data.img", "ghost-file-1.img",
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// FuzzInspectImage feeds arbitrary bytes, as each kind of image, through
// the inspector's bounded decoding path (DecodeImage, and the views built
// on it). Nothing may panic, and decoding may not allocate far more than
// the input's size.
func FuzzInspectImage(f *testing.F) {
	ents, _ := os.ReadDir(tinyImages)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(tinyImages, e.Name()))
		if err != nil || len(b) > 1<<16 {
			continue
		}
		for i, n := range imageNames {
			if base(n) == base(e.Name()) {
				f.Add(uint8(i), b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := imageNames[int(which)%len(imageNames)]
		before := heapObjects()
		DecodeImage(name, data)
		// The same bytes as every image of a one-task archive.
		a := &Archive{Images: map[string][]byte{name: data, "pstree.img": data}, ImageSizes: map[string]int64{"pages-1.img": 1 << 20}, Meta: map[string][]byte{"stats-dump": data}}
		a.Tree()
		a.Files()
		a.Sockets()
		a.Stats()
		a.MemoryUsage()
		if grew := int64(heapObjects()) - int64(before); grew > 64<<20+int64(len(data))*64 {
			t.Fatalf("decoding %d bytes as %s grew the heap by %d bytes", len(data), name, grew)
		}
	})
}

// base strips the number of an image name: core-1.img -> core.
func base(n string) string {
	for i := 0; i < len(n); i++ {
		if n[i] == '-' || n[i] == '.' {
			if n[:i] == "ghost" || n[:i] == "pipes" || n[:i] == "stats" {
				continue
			}
			return n[:i]
		}
	}
	return n
}
