package rootfs

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
	"golang.org/x/sys/unix"
)

// breakoutCase is one hostile restore, after containerd's TestBreakouts.
// Every case runs in base/ with the root at base/root, a sentinel file at
// base/sentinel.txt and a directory base/outside holding victim; after
// Apply, nothing outside base/root may have changed.
type breakoutCase struct {
	name    string
	setup   func(t *testing.T, base, root string) // image content, may be nil
	entries func(base string) []tarbuild.Entry    // nil means no diff
	deleted func(base string) []string
	opts    *ApplyOptions
	root    bool  // needs root (mknod)
	wantErr error // nil: Apply must succeed
	check   func(t *testing.T, root string)
}

func entries(e ...tarbuild.Entry) func(string) []tarbuild.Entry {
	return func(string) []tarbuild.Entry { return e }
}

func deleted(p ...string) func(string) []string {
	return func(string) []string { return p }
}

func breakoutCases() []breakoutCase {
	long := strings.Repeat("x", MaxNameLength+1)
	return []breakoutCase{
		{
			name:    "symlink up and out, then write through it",
			entries: entries(tarbuild.Symlink("escape", "../outside"), tarbuild.File("escape/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "absolute symlink, then write through it",
			entries: func(base string) []tarbuild.Entry {
				return []tarbuild.Entry{tarbuild.Symlink("abs", filepath.Join(base, "outside")), tarbuild.File("abs/victim", "pwned", 0o644)}
			},
			wantErr: ErrInsecurePath,
		},
		{
			name: "absolute symlink to the sentinel, then write over the link",
			entries: func(base string) []tarbuild.Entry {
				return []tarbuild.Entry{tarbuild.Symlink("s", filepath.Join(base, "sentinel.txt")), tarbuild.File("s", "pwned", 0o644)}
			},
			wantErr: ErrFormat, // duplicate name
		},
		{
			// The link is a middle component of the parent, where no
			// O_NOFOLLOW of the last one stops it.
			name:    "symlink up and out, then write two levels below it",
			entries: entries(tarbuild.Symlink("x", "../outside"), tarbuild.File("x/sub/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "symlink up and out, a directory below it, then a file",
			entries: entries(tarbuild.Symlink("x", "../outside"), tarbuild.Dir("x/sub/", 0o755),
				tarbuild.File("x/sub/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "image's symlink in the middle of the parent",
			setup: func(t *testing.T, base, root string) {
				must(t, os.MkdirAll(filepath.Join(base, "outside/sub"), 0o755))
				must(t, os.Symlink("../outside", filepath.Join(root, "x")))
			},
			entries: entries(tarbuild.File("x/sub/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "symlink chain",
			entries: entries(tarbuild.Symlink("a", "b"), tarbuild.Symlink("b", "c"), tarbuild.Symlink("c", "../outside"), tarbuild.File("a/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "symlink to the root's parent through a subdirectory",
			entries: entries(tarbuild.Dir("d/", 0o755), tarbuild.Symlink("d/up", "../.."),
				tarbuild.File("d/up/sentinel.txt", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "dot-dot name",
			entries: entries(tarbuild.File("../sentinel.txt", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "dot-dot inside a name",
			entries: entries(tarbuild.File("a/../../sentinel.txt", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "absolute name",
			entries: func(base string) []tarbuild.Entry {
				return []tarbuild.Entry{tarbuild.File(filepath.Join(base, "sentinel.txt"), "pwned", 0o644)}
			},
			wantErr: ErrInsecurePath,
		},
		{
			name:    "hardlink to outside",
			entries: entries(tarbuild.Link("hl", "../sentinel.txt")),
			wantErr: ErrInsecurePath,
		},
		{
			name: "hardlink to an absolute path",
			entries: func(base string) []tarbuild.Entry {
				return []tarbuild.Entry{tarbuild.Link("hl", filepath.Join(base, "sentinel.txt"))}
			},
			wantErr: ErrInsecurePath,
		},
		{
			name:    "hardlink through a symlink",
			entries: entries(tarbuild.Symlink("up", ".."), tarbuild.Link("hl", "up/sentinel.txt")),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "hardlink through a symlink to a file of the diff",
			entries: entries(tarbuild.File("f", "data", 0o644), tarbuild.Symlink("d", "."), tarbuild.Link("hl", "d/f")),
			wantErr: ErrInsecurePath,
		},
		{
			name: "hardlink to an image file",
			setup: func(t *testing.T, _, root string) {
				writeFile(t, filepath.Join(root, "etc/shadow"), "secret", 0o600)
			},
			entries: entries(tarbuild.Link("readable", "etc/shadow")),
			wantErr: ErrInsecurePath,
		},
		{
			name: "directory replaced by a symlink, then a file under it",
			setup: func(t *testing.T, _, root string) {
				must(t, os.Mkdir(filepath.Join(root, "d"), 0o755))
			},
			entries: entries(tarbuild.Symlink("d", "../outside"), tarbuild.File("d/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "file under a directory, then the directory replaced",
			setup: func(t *testing.T, _, root string) {
				must(t, os.Mkdir(filepath.Join(root, "d"), 0o755))
			},
			entries: entries(tarbuild.File("d/f", "x", 0o644), tarbuild.Symlink("d", "../outside")),
			wantErr: ErrFormat,
		},
		{
			name: "existing absolute symlink in the image is replaced, not followed",
			setup: func(t *testing.T, base, root string) {
				must(t, os.Symlink(filepath.Join(base, "sentinel.txt"), filepath.Join(root, "link")))
			},
			entries: entries(tarbuild.File("link", "replaced", 0o644)),
			check: func(t *testing.T, root string) {
				b, err := os.ReadFile(filepath.Join(root, "link"))
				if err != nil || string(b) != "replaced" {
					t.Errorf("root/link = %q, %v; want a regular file with \"replaced\"", b, err)
				}
			},
		},
		{
			name: "existing symlinked parent in the image is not followed",
			setup: func(t *testing.T, base, root string) {
				must(t, os.Symlink("../outside", filepath.Join(root, "etc")))
			},
			entries: entries(tarbuild.File("etc/victim", "pwned", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name: "symlinks with absolute and dot-dot targets are created, not followed",
			entries: entries(tarbuild.Symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
				tarbuild.Symlink("up", "../../.."), tarbuild.Symlink("abs", "/")),
			check: func(t *testing.T, root string) {
				for p, want := range map[string]string{"etc/localtime": "/usr/share/zoneinfo/UTC", "up": "../../..", "abs": "/"} {
					if got, err := os.Readlink(filepath.Join(root, p)); got != want || err != nil {
						t.Errorf("Readlink(%s) = %q, %v; want %q", p, got, err, want)
					}
				}
			},
		},
		{
			name:    "whiteout file name",
			entries: entries(tarbuild.File(".wh.etc", "", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "opaque whiteout marker",
			entries: entries(tarbuild.File("etc/.wh..wh..opq", "", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "whiteout device even when devices are allowed",
			entries: entries(tarbuild.Dev('3', "etc", 0, 0)),
			opts:    &ApplyOptions{Devices: true},
			wantErr: ErrInsecurePath,
		},
		{
			name:    "overlay xattrs are dropped",
			entries: entries(tarbuild.WithXattrs(tarbuild.Dir("d/", 0o755), "trusted.overlay.opaque", "y", "user.overlay.opaque", "y", "user.ok", "1")),
			check: func(t *testing.T, root string) {
				for _, k := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
					if v, err := getxattr(filepath.Join(root, "d"), k); !errors.Is(err, unix.ENODATA) {
						t.Errorf("xattr %s = %q, %v; want ENODATA", k, v, err)
					}
				}
				if v, err := getxattr(filepath.Join(root, "d"), "user.ok"); v != "1" || err != nil {
					t.Errorf("xattr user.ok = %q, %v; want 1", v, err)
				}
			},
		},
		{
			name:    "device node refused by default",
			entries: entries(tarbuild.Dev('3', "dev/mem", 1, 1)),
			wantErr: ErrSpecialFile,
		},
		{
			name:    "block device refused by default",
			entries: entries(tarbuild.Dev('4', "dev/sda", 8, 0)),
			wantErr: ErrSpecialFile,
		},
		{
			name:    "device node allowed when opted in",
			entries: entries(tarbuild.Dev('3', "dev/null", 1, 3)),
			opts:    &ApplyOptions{Devices: true},
			root:    true,
			check: func(t *testing.T, root string) {
				var st unix.Stat_t
				must(t, unix.Lstat(filepath.Join(root, "dev/null"), &st))
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
					t.Errorf("dev/null: mode %o rdev %d", st.Mode, st.Rdev)
				}
			},
		},
		{
			name:    "FIFO refused by default",
			entries: entries(tarbuild.Dev('6', "etc/passwd", 0, 0)),
			wantErr: ErrSpecialFile,
		},
		{
			name: "FIFO allowed when opted in",
			entries: func(string) []tarbuild.Entry {
				e := tarbuild.Dev('6', "run/fifo", 0, 0)
				e.Header.Mode = 0o4640
				return []tarbuild.Entry{e}
			},
			opts: &ApplyOptions{FIFOs: true},
			check: func(t *testing.T, root string) {
				var st unix.Stat_t
				must(t, unix.Lstat(filepath.Join(root, "run/fifo"), &st))
				if st.Mode != unix.S_IFIFO|0o640 {
					t.Errorf("run/fifo mode = %o, want %o (no setuid)", st.Mode, unix.S_IFIFO|0o640)
				}
			},
		},
		{
			name: "setuid under a world-writable directory is stripped",
			entries: entries(tarbuild.Dir("tmp/", 0o1777), tarbuild.File("tmp/su", "#!", 0o4755), tarbuild.File("tmp/sg", "#!", 0o2755),
				tarbuild.Dir("usr/bin/", 0o755), tarbuild.File("usr/bin/su", "#!", 0o4755), tarbuild.Link("tmp/su-link", "usr/bin/su"),
				tarbuild.File("usr/bin/ok", "#!", 0o6755)),
			check: func(t *testing.T, root string) {
				for p, want := range map[string]uint32{"tmp/su": 0o755, "tmp/sg": 0o755, "usr/bin/su": 0o755, "usr/bin/ok": 0o6755} {
					var st unix.Stat_t
					must(t, unix.Lstat(filepath.Join(root, p), &st))
					if st.Mode&0o7777 != want {
						t.Errorf("%s mode = %o, want %o", p, st.Mode&0o7777, want)
					}
				}
			},
		},
		{
			name:    "huge declared size",
			entries: entries(tarbuild.Huge("big", 1<<50)),
			wantErr: ErrTooLarge,
		},
		{
			name:    "file over the entry limit",
			entries: entries(tarbuild.File("a", "0123456789a", 0o644)),
			opts:    &ApplyOptions{MaxEntrySize: 10},
			wantErr: ErrTooLarge,
		},
		{
			name:    "files over the total limit",
			entries: entries(tarbuild.File("a", "0123456789", 0o644), tarbuild.File("b", "0123456789", 0o644)),
			opts:    &ApplyOptions{MaxTotalSize: 15},
			wantErr: ErrTooLarge,
		},
		{
			name:    "too many entries",
			entries: entries(tarbuild.Dir("a/", 0o755), tarbuild.Dir("b/", 0o755), tarbuild.Dir("c/", 0o755), tarbuild.Dir("d/", 0o755)),
			opts:    &ApplyOptions{MaxEntries: 3},
			wantErr: ErrTooLarge,
		},
		{
			name:    "too many deleted paths",
			deleted: deleted("a", "b", "c", "d"),
			opts:    &ApplyOptions{MaxEntries: 3},
			wantErr: ErrTooLarge,
		},
		{
			name:    "name component too long",
			entries: entries(tarbuild.File("d/"+long, "x", 0o644)),
			wantErr: ErrTooLarge,
		},
		{
			name:    "truncated entry",
			entries: entries(tarbuild.Huge("short", 100)),
			wantErr: ErrFormat,
		},
		{
			name:    "root replaced by a file",
			entries: entries(tarbuild.File(".", "x", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "root replaced by a symlink",
			entries: entries(tarbuild.Symlink(".", "../outside")),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "file then a file below it",
			entries: entries(tarbuild.File("a", "x", 0o644), tarbuild.File("a/b", "x", 0o644)),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted ../x",
			deleted: deleted("../outside/victim"),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted a/../../x",
			deleted: deleted("a/../../sentinel.txt"),
			wantErr: ErrInsecurePath,
		},
		{
			name: "deleted absolute host path is inside the root",
			setup: func(t *testing.T, _, root string) {
				writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0", 0o644)
			},
			deleted: func(base string) []string {
				return []string{"/etc/passwd", filepath.Join(base, "sentinel.txt"), filepath.Join(base, "outside")}
			},
			check: func(t *testing.T, root string) {
				if _, err := os.Lstat(filepath.Join(root, "etc/passwd")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("root/etc/passwd still there: %v", err)
				}
				if _, err := os.Stat("/etc/passwd"); err != nil {
					t.Errorf("host /etc/passwd: %v", err)
				}
			},
		},
		{
			name: "deleted through a relative symlinked parent",
			setup: func(t *testing.T, _, root string) {
				must(t, os.Symlink("../outside", filepath.Join(root, "a")))
			},
			deleted: deleted("/a/victim"),
			wantErr: ErrInsecurePath,
		},
		{
			name: "deleted through a symlink in the middle of the path",
			setup: func(t *testing.T, base, root string) {
				writeFile(t, filepath.Join(base, "outside/sub/victim"), "victim", 0o644)
				must(t, os.Symlink("../outside", filepath.Join(root, "a")))
			},
			deleted: deleted("/a/sub/victim"),
			wantErr: ErrInsecurePath,
		},
		{
			name: "deleted through an absolute symlinked parent",
			setup: func(t *testing.T, base, root string) {
				must(t, os.Symlink(filepath.Join(base, "outside"), filepath.Join(root, "a")))
			},
			deleted: deleted("a/victim"),
			wantErr: ErrInsecurePath,
		},
		{
			name: "deleted symlink is removed, its target kept",
			setup: func(t *testing.T, base, root string) {
				must(t, os.Symlink(filepath.Join(base, "outside"), filepath.Join(root, "link")))
				must(t, os.Mkdir(filepath.Join(root, "d"), 0o755))
				must(t, os.Symlink("../../outside", filepath.Join(root, "d/up")))
			},
			deleted: deleted("/link", "/d"),
			check: func(t *testing.T, root string) {
				for _, p := range []string{"link", "d"} {
					if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("root/%s still there: %v", p, err)
					}
				}
			},
		},
		{
			name: "deleted child of a directory the diff replaces by a file",
			setup: func(t *testing.T, _, root string) {
				writeFile(t, filepath.Join(root, "d/x"), "x", 0o644)
				writeFile(t, filepath.Join(root, "e/y"), "y", 0o644)
			},
			deleted: deleted("/d/x", "/e/y"),
			entries: entries(tarbuild.File("d", "now a file", 0o644), tarbuild.Symlink("e", "d")),
			check: func(t *testing.T, root string) {
				if b, err := os.ReadFile(filepath.Join(root, "d")); string(b) != "now a file" || err != nil {
					t.Errorf("root/d = %q, %v; want the new file", b, err)
				}
			},
		},
		{
			name:    "deleted path with NUL",
			deleted: deleted("etc\x00/passwd"),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted empty path",
			deleted: deleted(""),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted root",
			deleted: deleted("."),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted slash",
			deleted: deleted("/"),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted whiteout name",
			deleted: deleted("/etc/.wh.passwd"),
			wantErr: ErrInsecurePath,
		},
		{
			name:    "deleted ../ checked before anything is removed",
			setup:   func(t *testing.T, _, root string) { writeFile(t, filepath.Join(root, "keep"), "k", 0o644) },
			deleted: deleted("/keep", "../sentinel.txt"),
			wantErr: ErrInsecurePath,
			check: func(t *testing.T, root string) {
				if _, err := os.Lstat(filepath.Join(root, "keep")); err != nil {
					t.Errorf("root/keep removed before the bad path was found: %v", err)
				}
			},
		},
	}
}

// outsideState records everything in base except the root.
func outsideState(t *testing.T, base string) map[string]testutil.Node {
	return testutil.Snapshot(t, base, keepXattr, "root")
}

func TestBreakouts(t *testing.T) {
	for _, walk := range []bool{false, true} {
		mode := "openat2"
		if walk {
			mode = "walk"
		}
		t.Run(mode, func(t *testing.T) {
			if walk {
				useOpenat2 = false
				t.Cleanup(func() { useOpenat2 = true })
			}
			cases := breakoutCases()
			if len(cases) < 20 {
				t.Fatalf("only %d breakout cases", len(cases))
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					if tc.root {
						testutil.RequireRoot(t)
					}
					runBreakout(t, tc)
				})
			}
		})
	}
}

func TestApplyGzip(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(tarbuild.Build(t, tarbuild.Dir("etc/", 0o755), tarbuild.File("etc/motd", "hi\n", 0o644)))
	zw.Close()
	root := t.TempDir()
	opts := &ApplyOptions{NoChown: os.Geteuid() != 0}
	if err := Apply(context.Background(), root, bytes.NewReader(z.Bytes()), nil, opts); err != nil {
		t.Fatalf("Apply(gzip) = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/motd")); string(b) != "hi\n" || err != nil {
		t.Errorf("etc/motd = %q, %v; want hi", b, err)
	}
	bad := []byte{0x1f, 0x8b, 0, 0, 0}
	if err := Apply(context.Background(), root, bytes.NewReader(bad), nil, opts); !errors.Is(err, ErrFormat) {
		t.Errorf("Apply(bad gzip) = %v, want ErrFormat", err)
	}
	if err := Apply(context.Background(), root, bytes.NewReader(z.Bytes()[:z.Len()/2]), nil, opts); !errors.Is(err, ErrFormat) {
		t.Errorf("Apply(truncated gzip) = %v, want ErrFormat", err)
	}
}

func TestApplyRefusesHostRoot(t *testing.T) {
	err := Apply(context.Background(), "/", nil, []string{"/nonexistent-ckpt-test-path"}, nil)
	if !errors.Is(err, ErrInsecurePath) {
		t.Errorf("Apply(\"/\") = %v, want ErrInsecurePath", err)
	}
}

func runBreakout(t *testing.T, tc breakoutCase) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	must(t, os.Mkdir(root, 0o755))
	writeFile(t, filepath.Join(base, "sentinel.txt"), "sentinel", 0o644)
	writeFile(t, filepath.Join(base, "outside/victim"), "victim", 0o644)
	if tc.setup != nil {
		tc.setup(t, base, root)
	}
	setAllTimes(t, base, baseTime)
	before := outsideState(t, base)

	var diff *bytes.Reader
	if tc.entries != nil {
		diff = bytes.NewReader(tarbuild.Build(t, tc.entries(base)...))
	}
	var del []string
	if tc.deleted != nil {
		del = tc.deleted(base)
	}
	opts := tc.opts
	if opts == nil {
		opts = &ApplyOptions{}
	}
	if os.Geteuid() != 0 {
		opts.NoChown = true
	}
	var err error
	if diff != nil {
		err = Apply(context.Background(), root, diff, del, opts)
	} else {
		err = Apply(context.Background(), root, nil, del, opts)
	}
	t.Logf("Apply() = %v", err)
	switch {
	case tc.wantErr == nil && err != nil:
		t.Errorf("Apply() = %v, want success", err)
	case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
		t.Errorf("Apply() = %v, want %v", err, tc.wantErr)
	case err != nil:
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Apply() = %T %v, want *rootfs.Error", err, err)
		}
	}
	for _, d := range testutil.DiffSnapshots(outsideState(t, base), before) {
		t.Errorf("outside the root changed: %s", d)
	}
	if tc.check != nil {
		tc.check(t, root)
	}
}
