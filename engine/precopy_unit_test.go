package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
	"github.com/ckpt/ckpt/internal/testutil"
)

// fakeCRIU returns a criu script whose memory tracking feature check
// succeeds or fails as tracking says.
func fakeCRIU(t *testing.T, tracking bool) string {
	t.Helper()
	rc := "1"
	if tracking {
		rc = "0"
	}
	return fakeBin(t, t.TempDir(), "criu", `
case "$*" in
--version) echo "Version: 4.2.1" ;;
"check --feature mem_dirty_track") exit `+rc+` ;;
*) exit 0 ;;
esac`)
}

// noMemoryTracking is an Engine.memoryTrackingCheck for a host without
// soft-dirty.
func noMemoryTracking(context.Context) bool { return false }

func TestPreCopyMethodSelection(t *testing.T) {
	for _, tracking := range []bool{true, false} {
		e := testEngine(t)
		e.CRIUPath = fakeCRIU(t, tracking)
		want := PreCopyDedup
		if tracking {
			want = PreCopyPreDump
		}
		if got := e.PreCopyMethod(context.Background()); got != want {
			t.Errorf("PreCopyMethod(tracking %v) = %q, want %q", tracking, got, want)
		}
	}
	// The final checkpoint follows its pre-checkpoint's method, whatever
	// the host says now; records without a method are full dumps.
	e := testEngine(t)
	e.CRIUPath = fakeCRIU(t, true)
	ctx := context.Background()
	for _, tt := range []struct {
		rec  *PreCheckpointRecord
		want PreCopyMethod
	}{
		{&PreCheckpointRecord{Method: PreCopyPreDump}, PreCopyPreDump},
		{&PreCheckpointRecord{Method: PreCopyDedup}, PreCopyDedup},
		{&PreCheckpointRecord{}, PreCopyDedup},
	} {
		c := &Container{PreCheckpoint: tt.rec}
		if got := e.preCopyMethod(ctx, c, false, true); got != tt.want {
			t.Errorf("final after %+v: method %q, want %q", tt.rec, got, tt.want)
		}
	}
	// The feature check can be replaced (injected) in tests.
	e.memoryTrackingCheck = noMemoryTracking
	if got := e.preCopyMethod(ctx, &Container{}, true, false); got != PreCopyDedup {
		t.Errorf("-P with an injected check saying no: method %q, want %q", got, PreCopyDedup)
	}
	e.memoryTrackingCheck = nil
	if got := e.preCopyMethod(ctx, &Container{}, false, false); got != "" {
		t.Errorf("plain checkpoint: method %q, want none", got)
	}
	// Only the pre-dump method changes runc's arguments.
	o := &CheckpointOptions{PreCheckpoint: true, LeaveRunning: true}
	if got := withPreCopyArgs(o, PreCopyDedup); got != o {
		t.Errorf("withPreCopyArgs(dedup) changed the options: %+v", got)
	}
	if got := withPreCopyArgs(o, PreCopyPreDump); !got.preDump || got.parentPath != "" || o.preDump {
		t.Errorf("withPreCopyArgs(pre-dump, -P) = %+v (input %+v)", got, o)
	}
	w := &CheckpointOptions{WithPrevious: true}
	if got := withPreCopyArgs(w, PreCopyPreDump); got.preDump || got.parentPath != format.ParentLinkTarget {
		t.Errorf("withPreCopyArgs(pre-dump, --with-previous) = %+v", got)
	}
}

// fakeDumpRunc returns a runc script that records the arguments of each
// checkpoint in argsFile (one line per call) and writes an image set the
// way CRIU would: inventory.img, and the parent link for --parent-path.
func fakeDumpRunc(t *testing.T, argsFile string) string {
	t.Helper()
	return fakeBin(t, t.TempDir(), "runc", `
echo "$*" >> `+argsFile+`
while [ $# -gt 0 ]; do
	case "$1" in
	--image-path) img=$2; shift ;;
	--parent-path) parent=$2; shift ;;
	esac
	shift
done
echo inventory > "$img/inventory.img"
[ -n "$parent" ] && ln -s "$parent" "$img/parent"
exit 0`)
}

func lastArgs(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[len(lines)-1]
}

// TestPreCopyWithMemoryTracking runs -P twice and --with-previous in place
// on a host whose CRIU reports memory tracking (faked): runc pre-dumps,
// the second onto the first, the final dump names the latest
// pre-checkpoint as parent, nothing is deduplicated.
func TestPreCopyWithMemoryTracking(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	e.CRIUPath = fakeCRIU(t, true)
	argsFile := filepath.Join(t.TempDir(), "args")
	e.RuntimePath = fakeDumpRunc(t, argsFile)
	c := fakeRunning(t, e, "pd")
	ctx := context.Background()

	res, err := e.Checkpoint(ctx, "pd", &CheckpointOptions{PreCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(lastArgs(t, argsFile))
	if !slices.Contains(args, "--pre-dump") || slices.Contains(args, "--leave-running") || slices.Contains(args, "--parent-path") {
		t.Errorf("-P ran runc %q, want --pre-dump without --leave-running or --parent-path", args)
	}
	if i := slices.Index(args, "--image-path"); i < 0 || args[i+1] != e.PreCheckpointDir(c.ID) {
		t.Errorf("-P ran runc %q, want --image-path %s", args, e.PreCheckpointDir(c.ID))
	}
	if res.PreCopy != PreCopyPreDump || res.Container.Status != StatusRunning ||
		res.Container.PreCheckpoint == nil || res.Container.PreCheckpoint.Method != PreCopyPreDump {
		t.Errorf("-P result: method %q, container %+v", res.PreCopy, res.Container)
	}

	// A second -P pre-dumps onto the first (CRIU's iterative pre-dump,
	// --prev-images-dir): the first moves to pre-checkpoint.1, the new
	// level names it as parent, nothing is deduplicated.
	res, err = e.Checkpoint(ctx, "pd", &CheckpointOptions{PreCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	args = strings.Fields(lastArgs(t, argsFile))
	if i := slices.Index(args, "--parent-path"); i < 0 || args[i+1] != "../"+preLevelName(1) || !slices.Contains(args, "--pre-dump") || res.Dedup != nil ||
		res.Container.PreCheckpoint == nil || res.Container.PreCheckpoint.Parent == nil || res.Container.PreCheckpoint.depth() != 1 {
		t.Errorf("second -P by pre-dump: runc %q, dedup %+v, record %+v; want a pre-dump onto ../%s", args, res.Dedup, res.Container.PreCheckpoint, preLevelName(1))
	}
	if _, err := os.Stat(filepath.Join(e.preLevelDir(c.ID, 1), "inventory.img")); err != nil {
		t.Errorf("second -P by pre-dump: the first level is not in pre-checkpoint.1: %v", err)
	}

	res, err = e.Checkpoint(ctx, "pd", &CheckpointOptions{WithPrevious: true, LeaveRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	args = strings.Fields(lastArgs(t, argsFile))
	if i := slices.Index(args, "--parent-path"); i < 0 || args[i+1] != format.ParentLinkTarget || slices.Contains(args, "--pre-dump") {
		t.Errorf("--with-previous ran runc %q, want --parent-path %s", args, format.ParentLinkTarget)
	}
	if res.PreCopy != PreCopyPreDump || res.Dedup != nil {
		t.Errorf("--with-previous: method %q, dedup %+v; want pre-dump without dedup", res.PreCopy, res.Dedup)
	}
	// CRIU's parent link passes the in-place restore's chain check.
	if err := e.checkInPlaceParent(res.Container, e.CheckpointDir(c.ID)); err != nil {
		t.Errorf("checkInPlaceParent after a pre-dump chain: %v", err)
	}
}

// TestPreCopyWithoutMemoryTracking: without memory tracking -P is a full
// dump that leaves the container running, and --with-previous a full dump
// handed to the deduplication (which fails on the fake images).
func TestPreCopyWithoutMemoryTracking(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	e.CRIUPath = fakeCRIU(t, false)
	argsFile := filepath.Join(t.TempDir(), "args")
	e.RuntimePath = fakeDumpRunc(t, argsFile)
	fakeRunning(t, e, "fd")
	ctx := context.Background()

	res, err := e.Checkpoint(ctx, "fd", &CheckpointOptions{PreCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(lastArgs(t, argsFile))
	if slices.Contains(args, "--pre-dump") || !slices.Contains(args, "--leave-running") {
		t.Errorf("-P ran runc %q, want a full dump with --leave-running", args)
	}
	if res.PreCopy != PreCopyDedup || res.Container.PreCheckpoint.Method != PreCopyDedup {
		t.Errorf("-P: method %q, record %+v", res.PreCopy, res.Container.PreCheckpoint)
	}
	_, err = e.Checkpoint(ctx, "fd", &CheckpointOptions{WithPrevious: true, LeaveRunning: true})
	if err == nil || !strings.Contains(err.Error(), "deduplicate against the pre-checkpoint") {
		t.Errorf("--with-previous on fake images = %v, want a deduplication error", err)
	}
	if args := strings.Fields(lastArgs(t, argsFile)); slices.Contains(args, "--parent-path") {
		t.Errorf("--with-previous ran runc %q, want no --parent-path", args)
	}
}

// chainArchive is a previousArchive whose manifest has one image member
// under dir and, with parent, a Parent reference to it.
func chainArchive(t *testing.T, name, dir string, parent *previousArchive) previousArchive {
	t.Helper()
	m := &format.Manifest{
		Version: format.Version, Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Engine:  format.Engine{Name: "ckpt"},
		Members: []format.Member{{Name: dir + "/pages-1.img", Kind: format.KindOf(dir + "/pages-1.img"), Size: int64(len(name)), Digest: format.DigestBytes([]byte(name))}},
	}
	if parent != nil {
		depth := 1
		if parent.link.Manifest.Parent != nil {
			depth = parent.link.Manifest.Parent.Depth + 1
		}
		m.Parent = &format.Parent{Manifest: parent.link.Digest, Images: format.ImagesDigest(parent.link.Manifest.Members, parent.link.Manifest.ImagesDir()), Depth: depth}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return previousArchive{path: name, link: format.Link{Manifest: m, Digest: format.DigestBytes(b)}}
}

// TestOrderPrevious: --import-previous archives are ordered by their
// parent references whatever order they are given in; a missing, extra,
// repeated, cyclic or mismatched one is an ErrParent naming the file.
func TestOrderPrevious(t *testing.T) {
	p1 := chainArchive(t, "p1", format.PreCheckpointDir, nil)
	p2 := chainArchive(t, "p2", format.PreCheckpointDir, &p1)
	p3 := chainArchive(t, "p3", format.PreCheckpointDir, &p2)
	final := chainArchive(t, "final", format.CheckpointDir, &p3)
	other := chainArchive(t, "other", format.PreCheckpointDir, nil)
	for _, given := range [][]previousArchive{{p3, p2, p1}, {p1, p2, p3}, {p2, p1, p3}} {
		got, err := orderPrevious(final.link, given)
		if err != nil || len(got) != 3 || got[0].path != "p3" || got[1].path != "p2" || got[2].path != "p1" {
			t.Errorf("orderPrevious(%v) = %v, %v; want p3 p2 p1", given, got, err)
		}
	}
	// A cycle: a names b as parent and b names a.
	a := chainArchive(t, "a", format.PreCheckpointDir, &p1)
	b := chainArchive(t, "b", format.PreCheckpointDir, &a)
	a.link.Manifest.Parent = &format.Parent{Manifest: b.link.Digest, Images: format.ImagesDigest(b.link.Manifest.Members, format.PreCheckpointDir), Depth: 2}
	cyclicFinal := chainArchive(t, "cf", format.CheckpointDir, &b)
	// A parent whose images differ from what the child recorded.
	changed := p3
	changed.link.Manifest = &format.Manifest{}
	*changed.link.Manifest = *p3.link.Manifest
	changed.link.Manifest.Members = []format.Member{{Name: "pre-checkpoint/pages-1.img", Kind: format.KindPreImage, Size: 1, Digest: format.DigestBytes([]byte("x"))}}
	for _, tc := range []struct {
		name  string
		final previousArchive
		given []previousArchive
		want  string
	}{
		{"missing nearest", final, []previousArchive{p2, p1}, "the archive depends on"},
		{"missing base", final, []previousArchive{p3, p2}, "p2 depends on"},
		{"extra", final, []previousArchive{p3, p2, p1, other}, "other is not part"},
		{"repeated", final, []previousArchive{p3, p2, p1, p2}, "same pre-checkpoint archive"},
		{"cyclic", cyclicFinal, []previousArchive{a, b}, "cyclic"},
		{"changed images", final, []previousArchive{changed, p2, p1}, "parent images digest"},
	} {
		_, err := orderPrevious(tc.final.link, tc.given)
		if !errors.Is(err, format.ErrParent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: orderPrevious = %v, want ErrParent saying %q", tc.name, err, tc.want)
		}
	}
}

// TestPreCheckpointDepthLimit: a -P that would make the chain longer
// than a final checkpoint may depend on (format.MaxParentDepth) is
// refused before anything runs, telling to take the final checkpoint;
// the chain is left as it was.
func TestPreCheckpointDepthLimit(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	e.CRIUPath = fakeCRIU(t, false)
	argsFile := filepath.Join(t.TempDir(), "args")
	e.RuntimePath = fakeDumpRunc(t, argsFile)
	c := fakeRunning(t, e, "deep")
	var rec *PreCheckpointRecord
	for range format.MaxParentDepth {
		rec = &PreCheckpointRecord{Images: format.DigestBytes(nil), Method: PreCopyDedup, Manifest: format.DigestBytes([]byte("m")), Parent: rec}
	}
	c.PreCheckpoint = rec
	if err := e.saveState(c); err != nil {
		t.Fatal(err)
	}
	// The levels on disk, linked as a real chain is.
	pre := e.PreCheckpointDir(c.ID)
	for level := 1; level <= format.MaxParentDepth; level++ {
		dir := e.preLevelDir(c.ID, level)
		if level == format.MaxParentDepth {
			dir = pre
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "inventory.img"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if level > 1 {
			if err := os.Symlink("../"+preLevelName(level-1), filepath.Join(dir, "parent")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.checkPreChainDirs(c, false); err != nil {
		t.Fatalf("checkPreChainDirs(the fake chain) = %v", err)
	}
	ctx := context.Background()
	_, err := e.Checkpoint(ctx, "deep", &CheckpointOptions{PreCheckpoint: true})
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "take the final checkpoint") {
		t.Errorf("-P at depth %d = %v, want ErrState telling to take the final checkpoint", format.MaxParentDepth, err)
	}
	_, err = e.Export(ctx, "deep", filepath.Join(t.TempDir(), "x.tar"), &ExportOptions{CheckpointOptions: CheckpointOptions{PreCheckpoint: true}})
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "take the final checkpoint") {
		t.Errorf("-P --export at depth %d = %v, want ErrState telling to take the final checkpoint", format.MaxParentDepth, err)
	}
	if _, err := os.Stat(argsFile); err == nil {
		t.Errorf("runc ran: %s", lastArgs(t, argsFile))
	}
	if _, err := os.Stat(filepath.Join(pre, "inventory.img")); err != nil {
		t.Errorf("the chain's latest level is gone: %v", err)
	}
}

// TestPreCheckpointRollback: a -P whose dump fails leaves the previous
// pre-checkpoint chain as it was (directory, parent levels and record).
func TestPreCheckpointRollback(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	e.CRIUPath = fakeCRIU(t, false)
	argsFile := filepath.Join(t.TempDir(), "args")
	e.RuntimePath = fakeDumpRunc(t, argsFile)
	c := fakeRunning(t, e, "rb")
	ctx := context.Background()
	if _, err := e.Checkpoint(ctx, "rb", &CheckpointOptions{PreCheckpoint: true}); err != nil {
		t.Fatal(err)
	}
	before, err := e.Inspect(ctx, "rb")
	if err != nil {
		t.Fatal(err)
	}
	// The second -P chains onto the first; the fake images make the
	// deduplication fail after the dump.
	_, err = e.Checkpoint(ctx, "rb", &CheckpointOptions{PreCheckpoint: true})
	if err == nil || !strings.Contains(err.Error(), "previous pre-checkpoints are kept") {
		t.Fatalf("-P with a failing dedup = %v, want an error keeping the chain", err)
	}
	after, err := e.Inspect(ctx, "rb")
	if err != nil {
		t.Fatal(err)
	}
	if after.PreCheckpoint == nil || after.PreCheckpoint.Images != before.PreCheckpoint.Images || after.PreCheckpoint.Parent != nil {
		t.Errorf("record after the failed -P: %+v, want %+v", after.PreCheckpoint, before.PreCheckpoint)
	}
	if d, err := incremental.ImagesDigest(e.PreCheckpointDir(c.ID)); err != nil || d != before.PreCheckpoint.Images {
		t.Errorf("pre-checkpoint images after the failed -P: %s, %v; want %s", d, err, before.PreCheckpoint.Images)
	}
	if _, err := os.Lstat(e.preLevelDir(c.ID, 1)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pre-checkpoint.1 left after the failed -P (%v)", err)
	}
}

// TestPreCheckpointBrokenChain: a -P on a chain whose older level is
// gone starts a new chain instead of failing on it every time.
func TestPreCheckpointBrokenChain(t *testing.T) {
	testutil.RequireRoot(t)
	e := testEngine(t)
	e.CRIUPath = fakeCRIU(t, false)
	e.RuntimePath = fakeDumpRunc(t, filepath.Join(t.TempDir(), "args"))
	c := fakeRunning(t, e, "broken")
	base := &PreCheckpointRecord{Images: format.DigestBytes([]byte("1")), Method: PreCopyDedup}
	c.PreCheckpoint = &PreCheckpointRecord{Images: format.DigestBytes([]byte("2")), Method: PreCopyDedup, Parent: base}
	if err := e.saveState(c); err != nil {
		t.Fatal(err)
	}
	pre := e.PreCheckpointDir(c.ID)
	if err := os.MkdirAll(pre, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pre, "inventory.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+preLevelName(1), filepath.Join(pre, "parent")); err != nil {
		t.Fatal(err)
	}
	// pre-checkpoint.1 is missing.
	if err := e.checkPrevious(c, false); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "start a new chain") {
		t.Errorf("checkPrevious(broken chain) = %v, want ErrState saying to start a new chain", err)
	}
	res, err := e.Checkpoint(context.Background(), "broken", &CheckpointOptions{PreCheckpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dedup != nil || res.Container.PreCheckpoint.Parent != nil {
		t.Errorf("-P on a broken chain: dedup %+v, record %+v; want a new chain", res.Dedup, res.Container.PreCheckpoint)
	}
	if _, err := os.Lstat(filepath.Join(pre, "parent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new chain's first level has a parent link (%v)", err)
	}
}

// TestExtractLevelRefusesParentMember: a pre-checkpoint archive with a
// member pre-checkpoint/parent (which would stand where the importer
// links the levels) is refused, and nothing is staged.
func TestExtractLevelRefusesParentMember(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pre.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := format.NewWriter(f, format.Manifest{Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Engine: format.Engine{Name: "ckpt"},
		Options: format.Options{PreCheckpoint: true}}, &format.WriterOptions{Compression: format.None})
	// A real image set (podman's), so that the archive passes the image
	// checks and only the parent member is in the way.
	imgs := podmanImages(t)
	ents, err := os.ReadDir(imgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if err := w.AddFile(format.PreCheckpointDir+"/"+ent.Name(), filepath.Join(imgs, ent.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddBytes(format.PreCheckpointDir+"/parent", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p, err := readPrevious(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	err = extractLevel(context.Background(), p, nil, staging, format.PreCheckpointDir)
	if !errors.Is(err, format.ErrFormat) || !strings.Contains(err.Error(), "pre-checkpoint/parent") {
		t.Errorf("extractLevel(archive with pre-checkpoint/parent) = %v, want ErrFormat naming it", err)
	}
	if ents, _ := os.ReadDir(staging); len(ents) != 0 {
		t.Errorf("staged after the refusal: %v", ents)
	}
}
