package format_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/incremental"
)

// TestVerifyPreCheckpointChain: a pre-checkpoint that continues a chain
// (checkpoint -P after -P) holds pages in parent under pre-checkpoint/;
// Verify accepts it when the manifest names its parent, and reports the
// pages in parent as a parent problem when it does not.
func TestVerifyPreCheckpointChain(t *testing.T) {
	const tiny = "criuimg/testdata/tiny"
	parentDir, dir := t.TempDir(), t.TempDir()
	for _, d := range []string{parentDir, dir} {
		if err := os.CopyFS(d, os.DirFS(tiny)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := incremental.Dedup(context.Background(), parentDir, dir, &incremental.Options{PageSize: 4096, NoSync: true})
	if err != nil || st.PagesParent == 0 {
		t.Fatalf("Dedup = %+v, %v; want pages in parent", st, err)
	}
	write := func(parent *format.Parent) []byte {
		var buf bytes.Buffer
		w := format.NewWriter(&buf, format.Manifest{
			Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
			Engine:  format.Engine{Name: "ckpt"},
			Options: format.Options{PreCheckpoint: true, LeaveRunning: true},
			Parent:  parent,
		}, &format.WriterOptions{Compression: format.None})
		if err := w.AddDir(format.PreCheckpointDir, dir); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	parent := &format.Parent{Manifest: format.DigestBytes([]byte("p")), Images: format.DigestBytes([]byte("i")), Depth: 1}
	rep, err := format.Verify(bytes.NewReader(write(parent)), nil)
	if err != nil || rep.Err() != nil {
		t.Errorf("Verify(pre-checkpoint with parent) = %v, %v; want no problem", rep.Err(), err)
	}
	rep, err = format.Verify(bytes.NewReader(write(nil)), nil)
	if err != nil || !errors.Is(rep.Err(), format.ErrParent) {
		t.Errorf("Verify(pre-checkpoint with pages in parent, no parent) = %v, %v; want ErrParent", rep.Err(), err)
	}
}
