package criuimg_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/ckpt/ckpt/format/criuimg"
)

// Read the process tree of an image set entry by entry.
func ExampleNewReader() {
	data, err := os.ReadFile("testdata/tiny/pstree.img")
	if err != nil {
		log.Fatal(err)
	}
	r := criuimg.NewReader("pstree.img", bytes.NewReader(data), int64(len(data)), nil)
	for {
		msg, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		e, err := criuimg.DecodePstreeEntry(msg)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("task with %d thread(s)\n", len(e.Threads))
	}
	// Output:
	// task with 2 thread(s)
	// task with 1 thread(s)
	// task with 1 thread(s)
}

// Check a whole image directory.
func ExampleCheckImages() {
	ents, err := os.ReadDir("testdata/tiny")
	if err != nil {
		log.Fatal(err)
	}
	files := map[string]criuimg.Info{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			log.Fatal(err)
		}
		info := criuimg.Info{Size: fi.Size()}
		if _, kind := criuimg.ExpectedMagic(e.Name()); kind == criuimg.KindProto {
			// Metadata images are small: read them whole. A caller short of
			// memory reads whole only those NeedsContent names and the
			// first 8 bytes of the others.
			if info.Data, err = os.ReadFile("testdata/tiny/" + e.Name()); err != nil {
				log.Fatal(err)
			}
		}
		files[e.Name()] = info
	}
	fmt.Println(criuimg.CheckImages(files, nil).Err())
	// Output: <nil>
}
