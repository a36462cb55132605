package format_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// Archives podman made (testdata/podman/README.md): multi.tar.zst after
// four -R checkpoints of one container, holding the images of sleeps of
// earlier dumps; tcp.tar.zst with an established connection, no stale
// image.
const (
	podmanMulti = "../testdata/podman/multi.tar.zst"
	podmanTCP   = "../testdata/podman/tcp.tar.zst"
)

func verifyBytes(t *testing.T, b []byte) *format.Report {
	t.Helper()
	rep, err := format.Verify(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The images of multi.tar.zst: pstree.img lists sh (1) and one sleep (34);
// the rest are of sleeps that had exited, one pages image named by no
// pagemap of the last dump.
var (
	multiLive  = []string{"core-1.img", "core-34.img", "mm-34.img", "pagemap-34.img", "pages-1.img", "pages-2.img", "fdinfo-2.img", "fdinfo-3.img"}
	multiStale = map[string]string{
		"pagemap-14.img": "pid 14 is not in pstree.img",
		"core-28.img":    "pid 28 is not in pstree.img",
		"fdinfo-4.img":   "no live task of pstree.img has files id 4",
		"pages-3.img":    "no pagemap of the dump names it",
	}
)

// TestPodmanStale: verify passes an archive podman restores although it
// holds stale images (issue 18: "check pages_id 2: also used by
// pagemap-14.img" before), lists each with its reason, and still fails,
// naming the image, on a corrupted live image.
func TestPodmanStale(t *testing.T) {
	b, err := os.ReadFile(podmanMulti)
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyBytes(t, b)
	if err := rep.Err(); err != nil {
		t.Fatalf("Verify(%s) = %v, want no problem", podmanMulti, err)
	}
	stale := map[string]string{}
	for _, s := range rep.Stale {
		stale[strings.TrimPrefix(s.Member, format.CheckpointDir+"/")] = s.Reason
	}
	for f, why := range multiStale {
		if stale[f] != why {
			t.Errorf("stale %s: reason %q, want %q", f, stale[f], why)
		}
	}
	for _, f := range multiLive {
		if _, ok := stale[f]; ok {
			t.Errorf("live image %s reported stale", f)
		}
	}
	if len(rep.Images) != 1 || rep.Images[0].Stale != len(rep.Stale) || rep.Images[0].Processes != 2 {
		t.Errorf("Images = %+v, want one set of 2 processes and %d stale images", rep.Images, len(rep.Stale))
	}
	if rep := verifyBytes(t, mustRead(t, podmanTCP)); rep.Err() != nil || len(rep.Stale) != 0 {
		t.Errorf("Verify(%s) = %v, stale %v; want neither", podmanTCP, rep.Err(), rep.Stale)
	}

	for _, c := range []struct {
		name, member string
		edit         func([]byte) []byte
		want         error // nil: no problem
	}{
		// The size of core-1.img's task core entry: it now runs past
		// the image.
		{"live core", "checkpoint/core-1.img", func(b []byte) []byte { b[8], b[9], b[10], b[11] = 0xff, 0xff, 0xff, 0x7f; return b }, format.ErrImage},
		// pages-2.img is the live sleep's and named by stale pagemaps
		// of other sizes: judged by the live one.
		{"live pages shared with stale pagemaps", "checkpoint/pages-2.img", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, format.ErrImage},
		{"live pagemap", "checkpoint/pagemap-34.img", func(b []byte) []byte { return b[:len(b)-3] }, format.ErrImage},
		{"stale pagemap", "checkpoint/pagemap-14.img", func(b []byte) []byte { return b[:len(b)-3] }, nil},
		{"stale core", "checkpoint/core-28.img", func(b []byte) []byte { b[8], b[9] = 0xff, 0xff; return b }, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := verifyBytes(t, tarbuild.RewriteZstd(t, podmanMulti, c.member, c.edit))
			if c.want == nil {
				if err := rep.Err(); err != nil {
					t.Errorf("Verify = %v, want no problem (the image is stale)", err)
				}
				return
			}
			// The first problem names the image (others may follow from
			// it: without the root's core its mount namespace is
			// unknown; without a live pagemap no pages image is stale).
			var fe *format.Error
			if len(rep.Problems) == 0 || !errors.As(rep.Problems[0], &fe) || fe.Member != c.member || !errors.Is(fe, c.want) {
				t.Errorf("Verify = %v, want a first problem naming %s wrapping %v", rep.Err(), c.member, c.want)
			}
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckImageDirStale: an extracted podman archive with stale images
// passes CheckImageDir; RemoveStale removes exactly them.
func TestCheckImageDirStale(t *testing.T) {
	dir := t.TempDir()
	if _, err := format.Extract(context.Background(), bytes.NewReader(mustRead(t, podmanMulti)), dir, nil); err != nil {
		t.Fatalf("Extract(%s) = %v", podmanMulti, err)
	}
	images := filepath.Join(dir, format.CheckpointDir)
	if err := format.CheckImageDir(images, nil); err != nil {
		t.Fatalf("CheckImageDir = %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(images, "pagemap-14.img")); err != nil {
		t.Fatalf("without RemoveStale: %v", err)
	}
	rep := verifyBytes(t, mustRead(t, podmanMulti))
	if err := format.CheckImageDir(images, &format.ImageOptions{RemoveStale: true}); err != nil {
		t.Fatalf("CheckImageDir(RemoveStale) = %v, want nil", err)
	}
	for _, s := range rep.Stale {
		if _, err := os.Stat(filepath.Join(dir, s.Member)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s after RemoveStale: %v", s.Member, err)
		}
	}
	for _, f := range multiLive {
		if _, err := os.Stat(filepath.Join(images, f)); err != nil {
			t.Errorf("live %s after RemoveStale: %v", f, err)
		}
	}

	// A live image corrupted on disk still fails, and nothing is removed.
	dir = t.TempDir()
	if _, err := format.Extract(context.Background(), bytes.NewReader(mustRead(t, podmanMulti)), dir, nil); err != nil {
		t.Fatal(err)
	}
	images = filepath.Join(dir, format.CheckpointDir)
	if err := os.Truncate(filepath.Join(images, "pages-1.img"), 4096); err != nil {
		t.Fatal(err)
	}
	err := format.CheckImageDir(images, &format.ImageOptions{RemoveStale: true})
	if !errors.Is(err, format.ErrImage) || !strings.Contains(err.Error(), "pages-1.img") {
		t.Errorf("CheckImageDir(pages-1.img truncated) = %v, want ErrImage naming it", err)
	}
	if _, err := os.Stat(filepath.Join(images, "pagemap-14.img")); err != nil {
		t.Errorf("a failed check removed a stale image: %v", err)
	}
}
