package inspect

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
)

// TestContainerdCheckpointImage shows and inspects the archive that
// format.ContainerdCheckpoint writes of the containerd 1.7 checkpoint
// image in testdata/containerd: containerd's, legacy, the container
// counter1 of image localhost/ckpt-counter:ctr, its process tree read.
// (How ckptinspect takes such an image as its input is ckptinspect's.)
func TestContainerdCheckpointImage(t *testing.T) {
	dir := testutil.UnpackZstdTar(t, filepath.Join("..", "testdata", "containerd", "ctr-counter.tar.zst"), t.TempDir())
	c, err := format.ParseContainerdRef(dir)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "ctr-counter.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	rc := c.Open()
	_, err = io.Copy(f, rc)
	rc.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Show(ctx, archive, &ShowOptions{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Engine != format.EngineContainerd || s.Format != "legacy" || s.Name != "counter1" || s.Image != "localhost/ckpt-counter:ctr" ||
		s.PagesSize == 0 || s.RootfsDiffSize == 0 || len(s.Problems) > 0 {
		t.Errorf("Show = %+v", s)
	}
	all := All()
	in, err := Inspect(ctx, archive, &all)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Processes) != 1 || len(in.Processes[0].Cmdline) == 0 || in.Processes[0].Cmdline[0] != "/bin/counter" {
		t.Errorf("process tree %+v, want /bin/counter", in.Processes)
	}
}
