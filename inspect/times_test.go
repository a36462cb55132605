package inspect

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

// TestPodmanTimes reads the real podman 5.4.2 archives: Created is
// config.dump's createdTime (libpod's ContainerConfig), Checkpointed the
// time podman wrote config.dump, right before CRIU dumped. counter.tar was
// taken from the same container about a second before counter.tar.zst
// (testdata/podman/README.md), so their creation times agree and their
// checkpoint times do not.
func TestPodmanTimes(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 11, 23, 11, 48, 35, 524983974, time.UTC)
	for name, want := range map[string]time.Time{
		"counter.tar":     time.Date(2026, 11, 23, 11, 48, 37, 0, time.UTC),
		"counter.tar.zst": time.Date(2026, 11, 23, 11, 48, 39, 0, time.UTC),
	} {
		s, err := Show(ctx, filepath.Join(repoTestdata, "podman", name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Created.Equal(created) || !s.Checkpointed.Equal(want) {
			t.Errorf("Show(%s): created %s, checkpointed %s; want %s, %s", name, s.Created, s.Checkpointed, created, want)
		}
	}
}

// TestCkptCreated reads a v1 archive's creation time from config.dump: in
// the archives ckpt exported (testdata/ckpt), from Show and Inspect alike,
// and from a libpod-shaped config.dump.
func TestCkptCreated(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(repoTestdata, "ckpt", "counter.tar.zst")
	want := time.Date(2026, 12, 7, 11, 35, 31, 870163118, time.UTC)
	s, err := Show(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Created.Equal(want) || s.Checkpointed.Before(want) {
		t.Errorf("Show(%s): created %s, checkpointed %s; want created %s", p, s.Created, s.Checkpointed, want)
	}
	in, err := Inspect(ctx, p, &InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !in.Created.Equal(want) {
		t.Errorf("Inspect(%s): created %s, want %s", p, in.Created, want)
	}
	dir := t.TempDir()
	lp := writeTiny(t, dir, "libpod.ckpt", tinyOptions{config: `{"id":"x","createdTime":"2026-11-23T11:00:00Z"}`})
	if s, err := Show(ctx, lp, nil); err != nil || !s.Created.Equal(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("Show(libpod config) = %+v, %v, want created 11:00:00", s, err)
	}
	bad := writeTiny(t, dir, "bad.ckpt", tinyOptions{config: `not json`})
	if s, err := Show(ctx, bad, nil); err != nil || !s.Created.IsZero() {
		t.Errorf("Show(config.dump not JSON) = %+v, %v, want no creation time and no error", s, err)
	}
}

// TestShowScanBound: Show decompresses past the manifest to config.dump
// only when at most MaxShowScan bytes of members come first, or with Full
// or Verify; otherwise it names the creation time as unknown.
func TestShowScanBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.ckpt")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := format.NewWriter(f, format.Manifest{Created: tinyCreated, Engine: format.Engine{Name: "ckpt", Version: "0.1.0"},
		Container: format.Container{Name: "big", ID: "b"}, Host: format.Host{Arch: "amd64"}}, &format.WriterOptions{Concurrency: 1})
	if err := w.AddBytes("checkpoint/pages-1.img", make([]byte, MaxShowScan+1)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddBytes(format.ConfigName, []byte(`{"created_at":"2026-11-23T11:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx := context.Background()
	s, err := Show(ctx, p, nil)
	if err != nil || !s.Created.IsZero() || !slices.Equal(s.Unknown, []string{"created"}) || !strings.Contains(s.Note(), "show --full") {
		t.Errorf("Show(%d bytes before config.dump) = %+v, %v; want no creation time, listed as unknown with a note", MaxShowScan+1, s, err)
	}
	for _, o := range []ShowOptions{{Verify: true}, {Full: true}} {
		s, err = Show(ctx, p, &o)
		if err != nil || !s.Created.Equal(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)) || s.Unknown != nil {
			t.Errorf("Show(%+v) = %+v, %v; want the creation time", o, s, err)
		}
	}
}
