package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/fsutil"
	"github.com/ckpt/ckpt/internal/testutil"
)

// layout is an OCI image layout a test writes: one image of one
// uncompressed layer.
type layout struct {
	dir                      string
	layer, config, manifest  string // digests, "sha256:..."
	layerBytes, configBytes  []byte
	manifestBytes, indexJSON []byte
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blobPath is where layout l keeps the blob of digest d.
func (l *layout) blobPath(d string) string {
	return filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeLayout writes an OCI layout at dir with the layer tar layer, an
// image config whose process is p, and the image name name (ref.name).
func writeLayout(t testing.TB, dir string, layer []byte, p *imageProcess, name string) *layout {
	t.Helper()
	l := &layout{dir: dir, layerBytes: layer, layer: sha(layer)}
	cfg := map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{l.layer}},
	}
	if p != nil {
		cfg["config"] = map[string]any{"Entrypoint": p.Entrypoint, "Cmd": p.Cmd, "Env": p.Env, "WorkingDir": p.WorkingDir, "User": p.User}
	}
	l.configBytes = mustJSON(t, cfg)
	l.config = sha(l.configBytes)
	l.writeManifest(t, nil)
	ann := map[string]string{}
	if name != "" {
		ann[refNameAnnotation] = name
	}
	l.indexJSON = mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": l.manifest,
		"size": len(l.manifestBytes), "annotations": ann}}})
	for _, f := range []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{filepath.Join(dir, "index.json"), l.indexJSON},
		{l.blobPath(l.layer), layer},
		{l.blobPath(l.config), l.configBytes},
		{l.blobPath(l.manifest), l.manifestBytes},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// writeManifest sets l's manifest (layer descriptor with urls, if any).
func (l *layout) writeManifest(t testing.TB, urls []string) {
	t.Helper()
	ld := map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.layer, "size": len(l.layerBytes)}
	if urls != nil {
		ld["urls"] = urls
	}
	l.manifestBytes = mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": l.config, "size": len(l.configBytes)},
		"layers": []any{ld},
	})
	l.manifest = sha(l.manifestBytes)
}

// layerTar returns a tar of the given entries (directories end in /).
func layerTar(t testing.TB, entries ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		body := []byte(nil)
		if h.Typeflag == tar.TypeReg {
			body = []byte("data of " + h.Name + "\n")
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imageEngine returns an engine with its own root for image tests (no
// runc or CRIU needed: fakes), whose store is checked empty by empty.
func imageEngine(t *testing.T) *Engine {
	t.Helper()
	testutil.RequireRoot(t)
	return testEngine(t)
}

// storeEmpty fails t if e's store holds an image or a layer.
func storeEmpty(t *testing.T, e *Engine) {
	t.Helper()
	s, err := e.storeOpen()
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 || len(ls) != 0 {
		t.Errorf("store after a refused image: %d images, %d layers, want none", len(imgs), len(ls))
	}
	if ents, err := os.ReadDir(e.imageTmpDir()); err == nil {
		for _, d := range ents {
			if strings.HasPrefix(d.Name(), "oci-archive-") {
				t.Errorf("unpacked archive %s left behind", d.Name())
			}
		}
	}
}

var plainLayer = []tar.Header{{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "etc/hello", Typeflag: tar.TypeReg}}

// TestImageLoadLayout loads a good layout: the name comes from its ref.name,
// the ID is the config digest, the config's process is read back.
func TestImageLoadLayout(t *testing.T) {
	e := imageEngine(t)
	p := &imageProcess{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo hi"}, Env: []string{"A=1"}, WorkingDir: "/etc", User: "1:2"}
	l := writeLayout(t, t.TempDir(), layerTar(t, plainLayer...), p, "example.com/x/good:v1")
	img, err := e.ImageLoad(context.Background(), l.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != strings.TrimPrefix(l.config, "sha256:") || len(img.Names) != 1 || img.Names[0] != "example.com/x/good:v1" {
		t.Fatalf("ImageLoad() = %+v, want ID %s named example.com/x/good:v1", img, l.config)
	}
	s, _ := e.storeOpen()
	si, err := e.resolveImage(s, "example.com/x/good:v1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := imageProcessOf(context.Background(), s, si)
	if err != nil || got == nil || got.WorkingDir != "/etc" || got.User != "1:2" || len(got.Cmd) != 2 || got.Entrypoint[0] != "/bin/sh" || got.Env[0] != "A=1" {
		t.Fatalf("imageProcessOf() = %+v, %v, want %+v", got, err, p)
	}
}

// TestImageSaveRoundTrip saves a loaded image in each format and loads
// it back: same image ID, same name; a save into a missing directory
// leaves nothing, and an image without a manifest cannot be saved.
func TestImageSaveRoundTrip(t *testing.T) {
	e := imageEngine(t)
	ctx := context.Background()
	l := writeLayout(t, t.TempDir(), layerTar(t, plainLayer...), &imageProcess{Cmd: []string{"/bin/true"}}, "example.com/round:trip")
	img, err := e.ImageLoad(ctx, l.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{SaveDockerArchive, SaveOCIArchive, SaveOCIDir} {
		out := filepath.Join(dir, f)
		if err := e.ImageSave(ctx, "example.com/round:trip", f, out); err != nil {
			t.Fatal(err)
		}
		if err := e.ImageRemove(ctx, img.ID); err != nil {
			t.Fatal(err)
		}
		got, err := e.ImageLoad(ctx, out, nil)
		if err != nil {
			t.Fatalf("ImageLoad(%s) = %v", f, err)
		}
		if got.ID != img.ID || !slices.Equal(got.Names, img.Names) {
			t.Errorf("ImageLoad(ImageSave(%s)) = %s %q, want %s %q", f, got.ID, got.Names, img.ID, img.Names)
		}
		// Back to the OCI original: a Docker manifest saved as OCI gets
		// a converted config, hence another ID (as with podman).
		if err := e.ImageRemove(ctx, img.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ImageLoad(ctx, l.dir, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("save left %d entries in %s, want the 3 saved", len(ents), dir)
	}
	if err := e.ImageSave(ctx, img.ID, SaveOCIArchive, filepath.Join(dir, "missing", "x.tar")); err == nil {
		t.Error("ImageSave(into a missing directory) = nil, want an error")
	}
	if _, err := e.ImageImport(ctx, l.blobPath(l.layer), "rootfs"); err != nil {
		t.Fatal(err)
	}
	if err := e.ImageSave(ctx, "rootfs", "", filepath.Join(dir, "r.tar")); !errors.Is(err, ErrImageReference) || !strings.Contains(err.Error(), "no manifest") {
		t.Errorf("ImageSave(an imported rootfs) = %v, want ErrImageReference: no manifest", err)
	}
}

// hostileCase is one image of the hostile corpus: make writes it under
// dir and returns what to load; the load must fail with wantErr (if set)
// and a message containing want.
type hostileCase struct {
	name    string
	make    func(t *testing.T, dir string) string
	wantErr error
	want    string
}

// hostileLayouts are the corpus' OCI layouts with bad blobs or indexes;
// sentinel is a path outside them.
func hostileLayouts(sentinel string) []hostileCase {
	return []hostileCase{
		{"bad layer digest", func(t *testing.T, dir string) string {
			l := writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			b := append([]byte{}, l.layerBytes...)
			b[600] ^= 1 // inside etc/hello's data
			if err := os.WriteFile(l.blobPath(l.layer), b, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, nil, "digest"},
		{"manifest not the one index.json names", func(t *testing.T, dir string) string {
			l := writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			if err := os.WriteFile(l.blobPath(l.manifest), append(l.manifestBytes, ' '), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrHostileImage, "has the digest"},
		{"layer from a URL outside the layout", func(t *testing.T, dir string) string {
			l := writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			_ = os.Remove(l.blobPath(l.layer))
			l.writeManifest(t, []string{"http://127.0.0.1:9/layer"})
			rewriteManifest(t, l)
			return dir
		}, ErrHostileImage, "outside the image"},
		{"blob symlink out of the layout", func(t *testing.T, dir string) string {
			l := writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			if err := os.WriteFile(sentinel, l.layerBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			_ = os.Remove(l.blobPath(l.layer))
			if err := os.Symlink(sentinel, l.blobPath(l.layer)); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrHostileImage, "not a regular file"},
		{"huge index", func(t *testing.T, dir string) string {
			writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			big := append([]byte(`{"schemaVersion":2,"manifests":[],"annotations":{"x":"`), bytes.Repeat([]byte("a"), MaxLayoutIndex)...)
			if err := os.WriteFile(filepath.Join(dir, "index.json"), append(big, `"}}`...), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrHostileImage, "index.json"},
		{"huge manifest", func(t *testing.T, dir string) string {
			l := writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			var m map[string]any
			if err := json.Unmarshal(l.manifestBytes, &m); err != nil {
				t.Fatal(err)
			}
			m["annotations"] = map[string]string{"x": strings.Repeat("a", 5<<20)}
			l.manifestBytes = mustJSON(t, m)
			l.manifest = sha(l.manifestBytes)
			rewriteManifest(t, l)
			return dir
		}, ErrHostileImage, "at most 4194304 bytes"},
		{"manifest digest leading out of the layout", func(t *testing.T, dir string) string {
			writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			idx := mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
				"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:../../../../../etc/passwd", "size": 10}}})
			if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrHostileImage, "lists the digest"},
		{"index of too many manifests", func(t *testing.T, dir string) string {
			l := writeLayout(t, dir, layerTar(t, plainLayer...), nil, "")
			ms := make([]any, MaxLayoutManifests+1)
			for i := range ms {
				ms[i] = map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": l.manifest, "size": len(l.manifestBytes)}
			}
			if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": ms}), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrHostileImage, "manifests"},
	}
}

// hostileLayers are the corpus' bad layers and oci-archives.
func hostileLayers(sentinel string) []hostileCase {
	return []hostileCase{
		{"layer with ../ traversal", func(t *testing.T, dir string) string {
			rel, _ := filepath.Rel("/", sentinel)
			writeLayout(t, dir, layerTar(t, tar.Header{Name: strings.Repeat("../", 40) + rel, Typeflag: tar.TypeReg}), nil, "")
			return dir
		}, ErrHostileImage, "leads out of the layer"},
		{"layer with a device node", func(t *testing.T, dir string) string {
			writeLayout(t, dir, layerTar(t, tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}), nil, "")
			return dir
		}, ErrHostileImage, "device node"},
		{"oci-archive member with ../", func(t *testing.T, dir string) string {
			writeLayout(t, filepath.Join(dir, "l"), layerTar(t, plainLayer...), nil, "")
			return archiveWith(t, dir, tar.Header{Name: "../escape", Typeflag: tar.TypeReg})
		}, ErrHostileImage, "not a local path"},
		{"oci-archive with a symlink", func(t *testing.T, dir string) string {
			writeLayout(t, filepath.Join(dir, "l"), layerTar(t, plainLayer...), nil, "")
			return archiveWith(t, dir, tar.Header{Name: "blobs/sha256/link", Typeflag: tar.TypeSymlink, Linkname: sentinel})
		}, ErrHostileImage, "symbolic link"},
	}
}

// TestHostileImages is the start of the hostile-image corpus: each
// layout or archive must be refused with a clear error and leave nothing
// in the store (no image, no layer, no unpacked archive).
func TestHostileImages(t *testing.T) {
	testutil.RequireRoot(t)
	sentinel := filepath.Join(t.TempDir(), "sentinel")
	tests := append(hostileLayouts(sentinel), hostileLayers(sentinel)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := imageEngine(t)
			_ = os.Remove(sentinel)
			src := tt.make(t, t.TempDir())
			_, err := e.ImageLoad(context.Background(), src, nil)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ImageLoad() = %v, want an error wrapping %v mentioning %q", err, tt.wantErr, tt.want)
			}
			t.Logf("refused: %v", err)
			storeEmpty(t, e)
			if _, err := os.Lstat(sentinel); err == nil && tt.name == "layer with ../ traversal" {
				t.Errorf("the layer wrote %s outside the store", sentinel)
			}
		})
	}
}

// rewriteManifest writes l's manifest blob and an index pointing at it.
func rewriteManifest(t *testing.T, l *layout) {
	t.Helper()
	if err := os.WriteFile(l.blobPath(l.manifest), l.manifestBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	idx := mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": l.manifest, "size": len(l.manifestBytes)}}})
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
}

// archiveWith writes dir/a.tar: the layout at dir/l as an oci-archive
// with the extra member h first.
func archiveWith(t *testing.T, dir string, h tar.Header) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	h.Mode = 0o644
	if err := tw.WriteHeader(&h); err != nil {
		t.Fatal(err)
	}
	if err := tw.AddFS(os.DirFS(filepath.Join(dir, "l"))); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWithImageProcess: podman's rules for what the image's config gives
// a container that run's options leave unset.
func TestWithImageProcess(t *testing.T) {
	p := &imageProcess{Entrypoint: []string{"/ep"}, Cmd: []string{"c1"}, Env: []string{"PATH=/img", "A=img"}, WorkingDir: "/w", User: "u"}
	tests := []struct {
		name string
		o    RunOptions
		want RunOptions
	}{
		{"nothing given", RunOptions{}, RunOptions{Entrypoint: []string{"/ep"}, Command: []string{"c1"}, Env: []string{"PATH=/img", "A=img"}, WorkDir: "/w", User: "u"}},
		{"CMD given", RunOptions{Command: []string{"x"}}, RunOptions{Entrypoint: []string{"/ep"}, Command: []string{"x"}, Env: []string{"PATH=/img", "A=img"}, WorkDir: "/w", User: "u"}},
		{"entrypoint drops the image's CMD", RunOptions{Entrypoint: []string{"/sh"}}, RunOptions{Entrypoint: []string{"/sh"}, Env: []string{"PATH=/img", "A=img"}, WorkDir: "/w", User: "u"}},
		{"-e, -w, -u win", RunOptions{Env: []string{"A=me", "B=me"}, WorkDir: "/mine", User: "0"},
			RunOptions{Entrypoint: []string{"/ep"}, Command: []string{"c1"}, Env: []string{"PATH=/img", "A=me", "B=me"}, WorkDir: "/mine", User: "0"}},
	}
	for _, tt := range tests {
		got := withImageProcess(&tt.o, p)
		if !slices.Equal(got.Entrypoint, tt.want.Entrypoint) || !slices.Equal(got.Command, tt.want.Command) || !slices.Equal(got.Env, tt.want.Env) ||
			got.WorkDir != tt.want.WorkDir || got.User != tt.want.User {
			t.Errorf("%s: withImageProcess() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if o := (&RunOptions{Command: []string{"x"}}); withImageProcess(o, nil) != o {
		t.Error("withImageProcess(o, nil) changed o, want o (an image without config)")
	}
}

// TestRunMissingImage: run of an image that is not in the store names
// the pull that fetches it (RemedyImagePull).
func TestRunMissingImage(t *testing.T) {
	e := imageEngine(t)
	_, err := e.Run(context.Background(), "example.com/nope:1", &RunOptions{Command: []string{"x"}})
	var re *RemedyError
	if !errors.Is(err, ErrUnknownImage) || !errors.As(err, &re) || re.Remedy != RemedyImagePull || re.Arg != "example.com/nope:1" {
		t.Fatalf("Run(missing image) = %v, want ErrUnknownImage with RemedyImagePull", err)
	}
}

// TestPullsQueue checks that a pull waits while another holds the root's
// pull lock (a failed pull removes the new layers no image uses, which
// must not be another's half-made ones), then goes on once it is free.
func TestPullsQueue(t *testing.T) {
	e := imageEngine(t)
	ctx := context.Background()
	l := writeLayout(t, t.TempDir(), layerTar(t, plainLayer...), &imageProcess{Cmd: []string{"/bin/true"}}, "example.com/queue:one")
	if err := os.MkdirAll(e.root(), 0o700); err != nil {
		t.Fatal(err)
	}
	g, err := fsutil.WaitLock(filepath.Join(e.root(), "pull.lock"), "a test's pull")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.ImageLoad(ctx, l.dir, nil)
		done <- err
	}()
	select {
	case err := <-done:
		g.Unlock()
		t.Fatalf("ImageLoad finished (%v) while another pull held the lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	g.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("ImageLoad after the lock was freed: %v", err)
	}
}
