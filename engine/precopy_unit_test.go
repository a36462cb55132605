package engine

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
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

// TestPreCopyWithMemoryTracking runs -P and --with-previous in place on
// a host whose CRIU reports memory tracking (faked): runc pre-dumps, the
// final dump names the pre-checkpoint as parent, nothing is deduplicated.
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
