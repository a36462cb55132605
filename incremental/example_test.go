package incremental_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
)

// A pre-checkpoint without soft-dirty tracking: `criu dump --leave-running
// -D work/pre-checkpoint` while the container runs, later a full `criu
// dump -D work/checkpoint`, then Dedup turns the second into an
// incremental image set whose parent is the first.
func ExampleDedup() {
	ctx := context.Background()
	parentImages, err := incremental.ImagesDigest("work/pre-checkpoint")
	if err != nil {
		log.Fatal(err)
	}
	st, err := incremental.Dedup(ctx, "work/pre-checkpoint", "work/checkpoint",
		&incremental.Options{ParentLink: "../pre-checkpoint"})
	if err != nil {
		log.Fatal(err) // work/checkpoint is still a valid full dump
	}
	fmt.Printf("%d pages scanned, %d written, %d in parent\n", st.PagesScanned, st.PagesWritten, st.PagesParent)
	// The final archive's manifest records the parent it needs.
	parent := format.Parent{Images: parentImages, Depth: 1}
	_ = parent
}

// Equal proves that a deduplicated chain holds the memory of the full dump
// it came from.
func ExampleEqual() {
	same, err := incremental.Equal(context.Background(), "work/checkpoint", "work/checkpoint-full")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(same)
}
