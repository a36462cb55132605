package volumes_test

import (
	"context"
	"errors"
	"io"
	"log"
	"os"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/volumes"
)

// Checkpoint side: each named volume of the container becomes the member
// volumes/<name>.tar, streamed from the volume (no temporary file). Export
// while the container is frozen or stopped: the Writer reads every Source
// twice and fails if the two reads differ.
func ExampleStore_Source() {
	ctx := context.Background()
	store := &volumes.Store{Root: "/var/lib/ckpt/volumes"}
	out, err := os.Create("/tmp/checkpoint.tar.zst")
	if err != nil {
		log.Fatal(err)
	}
	w := format.NewWriter(out, format.Manifest{ /* ... */ }, nil)
	for _, name := range []string{"data"} { // the container's named volumes
		if err := w.Add(volumes.MemberName(name), store.Source(ctx, name)); err != nil {
			log.Fatal(err)
		}
	}
	// ... the other members ...
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}

// Restore side: every volumes/<name>.tar member becomes a new volume,
// unless the user asked to keep the existing ones (--ignore-volumes).
// If the restore fails later, the volumes created here are removed again.
func ExampleStore_Import() {
	ctx := context.Background()
	store := &volumes.Store{Root: "/var/lib/ckpt/volumes"}
	ignoreVolumes := false
	in, err := os.Open("/tmp/checkpoint.tar.zst")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	zr, err := format.NewReader(in, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer zr.Close()
	var created []string
	restoreErr := func() error {
		for {
			h, err := zr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			name, ok := volumes.NameOfMember(h.Name)
			if !ok || ignoreVolumes {
				continue
			}
			// ErrExists if the volume is already there.
			if err := store.Import(ctx, zr, name, nil); err != nil {
				return err
			}
			created = append(created, name)
		}
	}()
	if restoreErr != nil {
		for _, name := range created {
			restoreErr = errors.Join(restoreErr, store.Remove(ctx, name, true))
		}
		log.Fatal(restoreErr)
	}
}

// Restore side, bind mounts: the records come from the archive's
// configuration; the sources must already exist on this host.
func ExampleCheckBindSources() {
	mounts := []volumes.BindMount{
		{Source: "/srv/config", Destination: "/etc/app", Options: []string{"ro"}},
	}
	if err := volumes.CheckBindSources(mounts); err != nil {
		log.Fatal(err) // one line per missing source
	}
}
