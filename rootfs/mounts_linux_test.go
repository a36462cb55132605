package rootfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
	"golang.org/x/sys/unix"
)

// bind mounts src on dst for the rest of the test.
func bind(t *testing.T, src, dst string) {
	t.Helper()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		testutil.Missing(t, "bind mount %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dst, err)
		}
	})
}

// Mount points in the container root (volumes, bind-mounted files, /proc)
// are not part of its layer: Changes skips them even when the caller
// forgot to list them, and WriteDiff reads nothing through them.
func TestChangesSkipsMounts(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	lower, merged := filepath.Join(base, "lower"), filepath.Join(base, "merged")
	writeFile(t, filepath.Join(lower, "etc/hosts"), "image hosts\n", 0o644)
	writeFile(t, filepath.Join(base, "hostvol/data"), "volume data\n", 0o644)
	writeFile(t, filepath.Join(base, "host-hosts"), "host hosts file\n", 0o644)
	copyTree(t, lower, merged)
	must(t, os.Mkdir(filepath.Join(merged, "vol"), 0o755))
	writeFile(t, filepath.Join(merged, "added"), "a", 0o644)
	bind(t, filepath.Join(base, "hostvol"), filepath.Join(merged, "vol"))
	bind(t, filepath.Join(base, "host-hosts"), filepath.Join(merged, "etc/hosts"))

	ctx := context.Background()
	got, err := Changes(ctx, lower, merged, nil)
	if err != nil {
		t.Fatalf("Changes() = %v", err)
	}
	want := []Change{{".", Modified}, {"added", Added}}
	if !slices.Equal(got, want) {
		t.Errorf("Changes() = %v, want %v", got, want)
	}
	for _, p := range []string{"vol", "vol/data", "etc/hosts"} {
		err := WriteDiff(ctx, io.Discard, merged, []Change{{p, Added}}, nil)
		if !errors.Is(err, ErrInsecurePath) && !errors.Is(err, ErrChanged) {
			t.Errorf("WriteDiff(%s) = %v, want ErrInsecurePath or ErrChanged", p, err)
		}
	}
}

// Apply never writes into, chmods, or empties a mount point below the
// root: a volume the engine mounted too early stays untouched.
func TestApplyRefusesMounts(t *testing.T) {
	testutil.RequireRoot(t)
	for _, walk := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "walk"}[walk], func(t *testing.T) {
			if walk {
				useOpenat2 = false
				t.Cleanup(func() { useOpenat2 = true })
			}
			cases := []struct {
				name    string
				tar     []tarbuild.Entry
				deleted []string
			}{
				{"file into a volume", []tarbuild.Entry{tarbuild.File("vol/new", "x", 0o644)}, nil},
				{"file over a volume file", []tarbuild.Entry{tarbuild.File("vol/data", "x", 0o644)}, nil},
				{"volume root metadata", []tarbuild.Entry{tarbuild.Dir("vol/", 0o777)}, nil},
				{"volume replaced by a file", []tarbuild.Entry{tarbuild.File("vol", "x", 0o644)}, nil},
				{"deleted volume", nil, []string{"/vol"}},
				{"deleted file in a volume", nil, []string{"/vol/data"}},
				{"deleted parent of a volume", nil, []string{"/srv"}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					base := t.TempDir()
					root := filepath.Join(base, "root")
					writeFile(t, filepath.Join(base, "hostvol/data"), "volume data\n", 0o644)
					must(t, os.MkdirAll(filepath.Join(root, "vol"), 0o755))
					must(t, os.MkdirAll(filepath.Join(root, "srv/inner"), 0o755))
					setAllTimes(t, base, baseTime)
					bind(t, filepath.Join(base, "hostvol"), filepath.Join(root, "vol"))
					bind(t, filepath.Join(base, "hostvol"), filepath.Join(root, "srv/inner"))
					before := testutil.Snapshot(t, filepath.Join(base, "hostvol"), keepXattr)
					var diff io.Reader
					if tc.tar != nil {
						diff = bytes.NewReader(tarbuild.Build(t, tc.tar...))
					}
					err := Apply(context.Background(), root, diff, tc.deleted, nil)
					if !errors.Is(err, ErrInsecurePath) {
						t.Errorf("Apply() = %v, want ErrInsecurePath", err)
					}
					for _, d := range testutil.DiffSnapshots(testutil.Snapshot(t, filepath.Join(base, "hostvol"), keepXattr), before) {
						t.Errorf("volume changed: %s", d)
					}
				})
			}
		})
	}
}
