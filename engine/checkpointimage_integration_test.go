package engine

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker/reference"
	ocilayout "go.podman.io/image/v5/oci/layout"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil"
)

// startCounter runs the counter as name on e and waits for counter 3.
func startCounter(t *testing.T, e *Engine, name string) {
	t.Helper()
	cmd := []string{"/bin/counter", "-interval", "50ms", "-file", ""}
	if _, err := e.Run(context.Background(), "workload", &RunOptions{Name: name, Command: cmd}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, e, name, "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
}

// checkImageArchive checks that the checkpoint image ref of e carries
// the annotations of container name and that its layer verifies as a ckpt
// archive of that container.
func checkImageArchive(t *testing.T, e *Engine, ref, name string) {
	t.Helper()
	s, err := e.storeOpen()
	if err != nil {
		t.Fatal(err)
	}
	si, err := e.resolveImage(s, ref)
	if err != nil {
		t.Fatal(err)
	}
	ann, err := imageAnnotations(s, si)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strconv.Atoi(ann[AnnotationCheckpointCRIUVersion]); err != nil || ann[AnnotationCheckpointRuntimeName] != "runc" ||
		ann[AnnotationCheckpointName] != name || ann[AnnotationCRIOCheckpointName] != name || ann[AnnotationCheckpointRootfsImage] == "" {
		t.Errorf("image %s annotations %v, want podman's and CRI-O's for %s", ref, ann, name)
	}
	l, err := e.checkpointLayer(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if m := l.declared(); m == nil || m.Container.Name != name {
		t.Fatalf("the layer's declared manifest = %+v, want %s's", m, name)
	}
	r, err := l.reader() // the bytes declared read, then the rest
	if err != nil {
		t.Fatal(err)
	}
	rep, err := format.Verify(r, nil)
	if err != nil || rep.Err() != nil {
		t.Fatalf("the layer of %s as an archive: Verify = %v, %v", ref, err, rep.Err())
	}
	if rep.Manifest.Container.Name != name || rep.Manifest.Member("checkpoint/inventory.img") == nil {
		t.Errorf("the layer's manifest: container %q, members %d; want %s's checkpoint", rep.Manifest.Container.Name, len(rep.Manifest.Members), name)
	}
}

// TestIntegrationCheckpointImageRegistry checkpoints a container on root A
// into a checkpoint image, pushes it to a real registry, pulls it on root
// B and restores it there from the image: the counter continues.
func TestIntegrationCheckpointImageRegistry(t *testing.T) {
	a, b := realEngine(t), realEngine(t)
	addr := testutil.StartRegistry(t, "")
	ctx := context.Background()
	startCounter(t, a, "ci")
	res, err := a.CheckpointImage(ctx, "ci", "ckpt-ci", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Image.Names, "localhost/ckpt-ci:latest") || res.Export.Container.Status != StatusCheckpointed {
		t.Fatalf("CheckpointImage = image %v, container %s; want localhost/ckpt-ci:latest, checkpointed", res.Image.Names, res.Export.Container.Status)
	}
	at := lastCounter(logsOf(t, a, "ci"))
	t.Logf("checkpoint image at counter %d in %v", at, res.Export.Total)
	checkImageArchive(t, a, "ckpt-ci", "ci")

	ref := addr + "/ckpt/ci:v1"
	insecure := &TransferOptions{TLSVerifyOff: true}
	if err := a.ImagePush(ctx, "ckpt-ci", "docker://"+ref, insecure); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImagePull(ctx, ref, insecure); err != nil {
		t.Fatal(err)
	}
	checkImageArchive(t, b, ref, "ci")
	ir, err := b.RestoreImage(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := ir.Container; c.Name != "ci" || c.ID != res.Export.Container.ID || ir.Legacy {
		t.Errorf("RestoreImage = %s %s legacy %v, want ci %s from a verified archive", c.Name, c.ID, ir.Legacy, res.Export.Container.ID)
	}
	log := waitLog(t, b, "ci", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
}

// TestIntegrationCheckpointImageSaveLoad checkpoints a container that
// runs on (-R) into a checkpoint image, saves it as an oci-archive, loads
// it on root B and restores it there under a new name: the counter
// continues. Restore refuses the base image (no checkpoint), and save
// refuses a docker-archive of the checkpoint image (it keeps no
// annotations).
func TestIntegrationCheckpointImageSaveLoad(t *testing.T) {
	a, b := realEngine(t), realEngine(t)
	ctx := context.Background()
	startCounter(t, a, "ci")
	before := lastCounter(logsOf(t, a, "ci"))
	o := &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}
	res, err := a.CheckpointImage(ctx, "ci", "ckpt-ci:r", o)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.Inspect(ctx, "ci"); err != nil || c.Status != StatusRunning {
		t.Fatalf("after CheckpointImage -R: %v %v, want running", c, err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "ci.oci.tar")
	if err := a.ImageSave(ctx, "ckpt-ci:r", SaveOCIArchive, archive); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImageLoad(ctx, archive, nil); err != nil {
		t.Fatal(err)
	}
	ir, err := b.RestoreImage(ctx, "ckpt-ci:r", &ImportOptions{Name: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	if ir.Container.Name != "copy" || ir.Container.ID == res.Export.Container.ID {
		t.Errorf("RestoreImage(Name copy) = %s %s, want copy with a new ID", ir.Container.Name, ir.Container.ID)
	}
	// The copy's log is the original's as of the archive, then its own:
	// it counts on from the dump, without a gap or a restart. (With -R the
	// log is copied after the dump: it may hold a few lines the original
	// wrote after it, which the copy writes again.)
	log := waitLog(t, b, "copy", "the copy to count on", func(l string) bool { return lastCounter(l) >= before+5 })
	cs := counters(log)
	for i := 1; i < len(cs); i++ {
		if cs[i] > cs[i-1]+1 || cs[i] <= 1 {
			t.Fatalf("the copy's counter went from %d to %d (log tail:\n%s)", cs[i-1], cs[i], tail(log, 10))
		}
	}

	if _, err := a.RestoreImage(ctx, "workload", &ImportOptions{Name: "x"}); !errors.Is(err, ErrNotCheckpointImage) {
		t.Errorf("RestoreImage(workload) = %v, want ErrNotCheckpointImage", err)
	}
	// A docker-archive would drop the annotations: refused, nothing left.
	docker := filepath.Join(dir, "ci.docker.tar")
	if err := a.ImageSave(ctx, "ckpt-ci:r", SaveDockerArchive, docker); !errors.Is(err, ErrImageReference) {
		t.Errorf("ImageSave(checkpoint image, docker-archive) = %v, want ErrImageReference", err)
	}
	if _, err := os.Stat(docker); !os.IsNotExist(err) {
		t.Errorf("a refused save left %s (%v)", docker, err)
	}
}

// TestIntegrationCheckpointImageCorrupt commits a checkpoint image whose
// layer is an archive with one byte of a pages image changed (its
// manifest digest no longer matches): restore from it verifies the layer
// as an archive and refuses it with format.ErrChecksum, leaving no
// container.
func TestIntegrationCheckpointImageCorrupt(t *testing.T) {
	e := realEngine(t)
	ctx := context.Background()
	startCounter(t, e, "ci")
	dir := t.TempDir()
	archive := filepath.Join(dir, "checkpoint.tar")
	res, err := e.Export(ctx, "ci", archive, &ExportOptions{Compression: format.None, CheckpointOptions: CheckpointOptions{LeaveRunning: true}})
	if err != nil {
		t.Fatal(err)
	}
	flipPagesByte(t, archive)
	layout := filepath.Join(dir, "layout")
	if err := writeCheckpointLayout(layout, archive, res.Manifest, checkpointAnnotations(res.Manifest, checkpointHost{})); err != nil {
		t.Fatal(err)
	}
	src, err := ocilayout.NewReference(layout, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.storeOpen()
	if err != nil {
		t.Fatal(err)
	}
	name, _ := reference.ParseNormalizedNamed("localhost/corrupt:1")
	if _, err := e.pullInto(ctx, s, src, name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RestoreImage(ctx, "localhost/corrupt:1", &ImportOptions{Name: "bad"}); !errors.Is(err, format.ErrChecksum) {
		t.Fatalf("RestoreImage(corrupt layer) = %v, want format.ErrChecksum", err)
	}
	if _, err := e.Inspect(ctx, "bad"); !errors.Is(err, ErrUnknownContainer) {
		t.Errorf("after a refused restore: container bad %v, want none", err)
	}
}

// flipPagesByte changes the first byte of the first pages image in the
// uncompressed archive at path.
func flipPagesByte(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no pages image in %s: %v", path, err)
		}
		if strings.HasPrefix(filepath.Base(h.Name), "pages-") && h.Size > 0 {
			// After Next, the reader stands at the member's first byte.
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, cr.n); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0xff
			if _, err := f.WriteAt(b, cr.n); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// TestIntegrationCheckpointImageUndoStop: when the image cannot be
// committed after an export that stopped the container, undoStop restores
// it from its dump and says so; the counter continues.
func TestIntegrationCheckpointImageUndoStop(t *testing.T) {
	e := realEngine(t)
	ctx := context.Background()
	startCounter(t, e, "ci")
	o := &ExportOptions{Compression: format.None}
	res, err := e.Export(ctx, "ci", filepath.Join(t.TempDir(), "checkpoint.tar"), o)
	if err != nil {
		t.Fatal(err)
	}
	at := lastCounter(logsOf(t, e, "ci"))
	commit := errors.New("commit failed")
	err = e.undoStop(ctx, res, o, commit)
	var se *StateError
	if !errors.Is(err, commit) || !errors.As(err, &se) || se.Left != LeftRestored {
		t.Fatalf("undoStop = %v, want the commit's error, the container restored", err)
	}
	log := waitLog(t, e, "ci", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
}
