package volumes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	return &Store{Root: filepath.Join(t.TempDir(), "volumes")}
}

func TestCreateGetListRemove(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if vols, err := s.List(ctx); err != nil || len(vols) != 0 {
		t.Fatalf("List() on a missing root = %v, %v, want empty, nil", vols, err)
	}
	v, err := s.Create(ctx, "data", &CreateOptions{Labels: map[string]string{"app": "counter"}})
	if err != nil {
		t.Fatalf("Create(data) = %v", err)
	}
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Labels["app"] != "counter" ||
		v.Mountpoint != filepath.Join(s.Root, "data", "_data") || v.CreatedAt.IsZero() || v.Options == nil {
		t.Errorf("Create(data) = %+v", v)
	}
	fi, err := os.Lstat(v.Mountpoint)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("Lstat(_data) = %v, %v, want a 0755 directory", fi, err)
	}
	if fi, err := os.Stat(s.Root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("Stat(root) = %v, %v, want mode 0700", fi, err)
	}
	got, err := s.Get(ctx, "data")
	if err != nil {
		t.Fatalf("Get(data) = %v", err)
	}
	if !got.CreatedAt.Equal(v.CreatedAt) || fmt.Sprint(got.Labels) != fmt.Sprint(v.Labels) || got.Mountpoint != v.Mountpoint {
		t.Errorf("Get(data) = %+v, want %+v", got, v)
	}
	// volume.json is versioned and has no Mountpoint.
	b, err := os.ReadFile(filepath.Join(s.Root, "data", "volume.json"))
	must(t, err)
	var raw map[string]any
	must(t, json.Unmarshal(b, &raw))
	if raw["version"] != float64(1) || raw["name"] != "data" || raw["driver"] != "local" || raw["Mountpoint"] != nil {
		t.Errorf("volume.json = %s", b)
	}

	if _, err := s.Create(ctx, "data", nil); !errors.Is(err, ErrExists) {
		t.Errorf("Create(data) again = %v, want ErrExists", err)
	}
	again, err := s.Create(ctx, "data", &CreateOptions{IgnoreExisting: true})
	if err != nil || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("Create(data, IgnoreExisting) = %+v, %v, want the existing volume", again, err)
	}
	_, err = s.Create(ctx, "b.2", nil)
	must(t, err)
	vols, err := s.List(ctx)
	must(t, err)
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, []string{"b.2", "data"}) {
		t.Errorf("List() = %v, want [b.2 data]", names)
	}
	for _, name := range []string{"data", "b.2", "nope"} {
		ok, err := s.Exists(name)
		if err != nil || ok != (name != "nope") {
			t.Errorf("Exists(%s) = %v, %v", name, ok, err)
		}
	}

	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatalf("Remove(data) = %v", err)
	}
	if _, err := s.Get(ctx, "data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(data) after Remove = %v, want ErrNotFound", err)
	}
	if err := s.Remove(ctx, "data", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(data) again = %v, want ErrNotFound", err)
	}
	if e := entries(t, s.Root); !slices.Equal(e, []string{"b.2"}) {
		t.Errorf("root holds %v, want [b.2]", e)
	}
}

func TestInvalidNames(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, name := range []string{"", ".", "..", "../x", "a/b", "-x", "_x", ".create-x", "a b", string(make([]byte, 129))} {
		if _, err := s.Create(ctx, name, nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Get(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := s.Remove(ctx, name, true); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := s.Import(ctx, nil, name, nil); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Import(%q) = %v, want ErrInvalidName", name, err)
		}
		if err := s.Export(ctx, nil, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Export(%q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := s.DataPath(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("DataPath(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := os.Stat(s.Root); !os.IsNotExist(err) {
		t.Errorf("root exists after invalid names only: %v", err)
	}
}

func TestRemoveInUse(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	used := map[string]bool{"busy": true}
	s.InUse = func(name string) bool { return used[name] }
	_, err := s.Create(ctx, "busy", nil)
	must(t, err)
	writeFile(t, filepath.Join(s.Root, "busy", "_data", "f"), "x", 0o644)
	err = s.Remove(ctx, "busy", false)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Remove(busy) = %v, want ErrInUse", err)
	}
	if ok, _ := s.Exists("busy"); !ok {
		t.Fatal("Remove(busy) refused but removed it")
	}
	if err := s.Remove(ctx, "busy", true); err != nil {
		t.Fatalf("Remove(busy, force) = %v", err)
	}
	if e := entries(t, s.Root); len(e) != 0 {
		t.Errorf("root holds %v after Remove", e)
	}
}

// TestRemoveReadOnlyTree: read-only directories inside a volume do not
// stop Remove, also when not root.
func TestRemoveReadOnlyTree(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, err := s.Create(ctx, "ro", nil)
	must(t, err)
	writeFile(t, filepath.Join(v.Mountpoint, "a/b/f"), "x", 0o444)
	must(t, os.Chmod(filepath.Join(v.Mountpoint, "a/b"), 0o555))
	must(t, os.Chmod(filepath.Join(v.Mountpoint, "a"), 0o000))
	if err := s.Remove(ctx, "ro", false); err != nil {
		t.Fatalf("Remove(ro) = %v", err)
	}
	if e := entries(t, s.Root); len(e) != 0 {
		t.Errorf("root holds %v after Remove", e)
	}
}

// TestLegacyVolume: a bare Root/<name>/_data (what the engine's run -v made
// before the Store) is a volume.
func TestLegacyVolume(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	must(t, os.MkdirAll(filepath.Join(s.Root, "old", "_data"), 0o755))
	v, err := s.Get(ctx, "old")
	if err != nil || v.Name != "old" || v.CreatedAt.IsZero() || v.Labels == nil {
		t.Fatalf("Get(old) = %+v, %v", v, err)
	}
	if vols, err := s.List(ctx); err != nil || len(vols) != 1 {
		t.Errorf("List() = %v, %v, want one volume", vols, err)
	}
	if _, err := s.Create(ctx, "old", nil); !errors.Is(err, ErrExists) {
		t.Errorf("Create(old) = %v, want ErrExists", err)
	}
}

func TestCorruptVolumes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"file", func(t *testing.T, dir string) { writeFile(t, dir, "", 0o644) }},
		{"no-data", func(t *testing.T, dir string) { must(t, os.MkdirAll(dir, 0o755)) }},
		{"data-symlink", func(t *testing.T, dir string) {
			must(t, os.MkdirAll(dir, 0o755))
			must(t, os.Symlink("/", filepath.Join(dir, "_data")))
		}},
		{"bad-json", func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "_data"), 0o755))
			writeFile(t, filepath.Join(dir, "volume.json"), "{", 0o600)
		}},
		{"other-name", func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "_data"), 0o755))
			writeFile(t, filepath.Join(dir, "volume.json"), `{"version":1,"name":"x","driver":"local"}`, 0o600)
		}},
		{"unknown-field", func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "_data"), 0o755))
			writeFile(t, filepath.Join(dir, "volume.json"), `{"version":1,"name":"unknown-field","driver":"local","hooks":1}`, 0o600)
		}},
		{"json-symlink", func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "_data"), 0o755))
			must(t, os.Symlink("/etc/hostname", filepath.Join(dir, "volume.json")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			tt.setup(t, filepath.Join(s.Root, tt.name))
			if _, err := s.Get(ctx, tt.name); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Get(%s) = %v, want ErrCorrupt", tt.name, err)
			}
			if _, err := s.List(ctx); !errors.Is(err, ErrCorrupt) {
				t.Errorf("List() = %v, want ErrCorrupt", err)
			}
			if err := s.Export(ctx, new(nopWriter), tt.name); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Export(%s) = %v, want ErrCorrupt", tt.name, err)
			}
			if _, err := s.Create(ctx, tt.name, nil); !errors.Is(err, ErrExists) {
				t.Errorf("Create(%s) = %v, want ErrExists", tt.name, err)
			}
			if err := s.Remove(ctx, tt.name, false); err != nil {
				t.Errorf("Remove(%s) = %v", tt.name, err)
			}
		})
	}
}

type nopWriter struct{}

func (*nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestConcurrentCreate: of many concurrent Creates of one name, exactly one
// succeeds; the others get ErrExists; no staging directory remains.
func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Create(ctx, "race", &CreateOptions{Labels: map[string]string{"i": fmt.Sprint(i)}})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("Create(race) = %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d Creates succeeded, want 1", ok)
	}
	if e := entries(t, s.Root); !slices.Equal(e, []string{"race"}) {
		t.Errorf("root holds %v, want [race]", e)
	}
}

// TestCleanup: staging directories of dead operations go, those of live
// ones stay, volumes are untouched.
func TestCleanup(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	_, err := s.Create(ctx, "keep", nil)
	must(t, err)
	for _, d := range []string{".import-x-1", ".create-y-2", ".remove-z-3"} {
		writeFile(t, filepath.Join(s.Root, d, "_data", "f"), "x", 0o644)
	}
	live, err := s.stage(stageImport, "live")
	must(t, err)
	defer live.discard()
	if err := s.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup() = %v", err)
	}
	want := []string{filepath.Base(live.dir), "keep"}
	slices.Sort(want)
	if e := entries(t, s.Root); !slices.Equal(e, want) {
		t.Errorf("root holds %v, want %v", e, want)
	}
	must(t, live.discard())
	if e := entries(t, s.Root); !slices.Equal(e, []string{"keep"}) {
		t.Errorf("root holds %v after discard, want [keep]", e)
	}
}

func TestCreateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newStore(t)
	if _, err := s.Create(ctx, "x", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Create(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.Create(context.Background(), "x", &CreateOptions{Labels: map[string]string{"": "v"}}); err == nil {
		t.Error("Create with an empty label key succeeded")
	}
	if e := entries(t, s.Root); len(e) != 0 {
		t.Errorf("root holds %v", e)
	}
}

// TestNoRoot: a Store without Root refuses everything instead of working
// relative to the current directory.
func TestNoRoot(t *testing.T) {
	ctx := context.Background()
	t.Chdir(t.TempDir())
	must(t, os.MkdirAll("victim/_data", 0o755))
	s := &Store{}
	if _, err := s.Get(ctx, "victim"); err == nil {
		t.Error("Get() on a Store without Root succeeded")
	}
	if err := s.Remove(ctx, "victim", true); err == nil {
		t.Error("Remove() on a Store without Root succeeded")
	}
	if _, err := s.List(ctx); err == nil {
		t.Error("List() on a Store without Root succeeded")
	}
	if _, err := s.Create(ctx, "x", nil); err == nil {
		t.Error("Create() on a Store without Root succeeded")
	}
	if err := s.Export(ctx, io.Discard, "victim"); err == nil {
		t.Error("Export() on a Store without Root succeeded")
	}
	if err := s.Cleanup(ctx); err == nil {
		t.Error("Cleanup() on a Store without Root succeeded")
	}
	if _, err := os.Stat("victim/_data"); err != nil {
		t.Errorf("victim: %v", err)
	}
}
