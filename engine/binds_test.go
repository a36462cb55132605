package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/criuimg"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
	"github.com/ckpt/ckpt/volumes"
)

func TestGrantedBinds(t *testing.T) {
	rec := []volumes.BindMount{
		{Source: "/", Destination: "/host"},
		{Source: "/srv/logs", Destination: "/logs", Options: []string{"ro"}},
	}
	for _, tc := range []struct {
		name        string
		recorded    []volumes.BindMount
		g           hostGrants
		wantBinds   []volumes.BindMount
		wantDropped []string
		wantErr     error
		wantIn      []string // substrings of the error
		wantRemedy  Remedy
	}{
		{name: "none recorded", recorded: nil},
		{
			name: "unmapped", recorded: rec, wantErr: ErrHostResource,
			wantIn:     []string{`/host (on the source host "/")`, `/logs (on the source host "/srv/logs")`, "ImportOptions.Binds", "IgnoreBinds"},
			wantRemedy: RemedyBinds,
		},
		{
			name: "one of two mapped", recorded: rec, wantErr: ErrHostResource,
			g:      hostGrants{binds: []BindMap{{Source: "/tmp/a", Destination: "/host"}}},
			wantIn: []string{"/logs"}, wantRemedy: RemedyBinds,
		},
		{
			name: "all mapped, the user's sources and options", recorded: rec,
			g:         hostGrants{binds: []BindMap{{Source: "/tmp/a/", Destination: "/host/"}, {Source: "/tmp/b", Destination: "/logs"}}},
			wantBinds: []volumes.BindMount{{Source: "/tmp/a", Destination: "/host"}, {Source: "/tmp/b", Destination: "/logs"}},
		},
		{
			name: "dropped", recorded: rec,
			g:           hostGrants{dropBinds: true, binds: []BindMap{{Source: "/tmp/b", Destination: "/logs", Options: []string{"ro"}}}},
			wantBinds:   []volumes.BindMount{{Source: "/tmp/b", Destination: "/logs", Options: []string{"ro"}}},
			wantDropped: []string{"/host"},
		},
		{
			name: "mapping a destination the checkpoint lacks", recorded: rec, wantErr: ErrHostResource,
			g:      hostGrants{dropBinds: true, binds: []BindMap{{Source: "/tmp/a", Destination: "/elsewhere"}}},
			wantIn: []string{"no bind mount at /elsewhere", "/host, /logs"},
		},
		{
			name: "mapped twice", recorded: rec, wantErr: ErrHostResource,
			g: hostGrants{dropBinds: true, binds: []BindMap{{Source: "/tmp/a", Destination: "/host"}, {Source: "/tmp/b", Destination: "/host"}}},
		},
		{
			name: "recorded destination not clean", wantErr: volumes.ErrInvalidMount,
			recorded: []volumes.BindMount{{Source: "/", Destination: "/a/../../etc"}}, g: hostGrants{dropBinds: true},
		},
		{
			name: "recorded destination relative", wantErr: volumes.ErrInvalidMount,
			recorded: []volumes.BindMount{{Source: "/", Destination: "etc"}}, g: hostGrants{dropBinds: true},
		},
		{
			name: "recorded twice", wantErr: volumes.ErrInvalidMount,
			recorded: []volumes.BindMount{{Source: "/a", Destination: "/x"}, {Source: "/b", Destination: "/x"}}, g: hostGrants{dropBinds: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			binds, dropped, err := grantedBinds(tc.recorded, tc.g)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("grantedBinds() error = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("grantedBinds() error = %q, want it to contain %q", err, s)
				}
			}
			if tc.wantRemedy != 0 && !hasRemedy(err, tc.wantRemedy, "") {
				t.Errorf("grantedBinds() error = %v, want a *RemedyError with %v", err, tc.wantRemedy)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(binds, tc.wantBinds) || !reflect.DeepEqual(dropped, tc.wantDropped) {
				t.Errorf("grantedBinds() = %v, %v, want %v, %v", binds, dropped, tc.wantBinds, tc.wantDropped)
			}
		})
	}
}

func TestGrantedNetwork(t *testing.T) {
	for _, tc := range []struct {
		recorded, flag, want string
		wantErr              error
		wantRemedy           Remedy
	}{
		{"", "", NetworkNone, nil, 0},
		{NetworkNone, "", NetworkNone, nil, 0},
		{NetworkNone, NetworkNone, NetworkNone, nil, 0},
		{NetworkHost, "", "", ErrHostResource, RemedyNetworkHost},
		{NetworkHost, NetworkHost, NetworkHost, nil, 0},
		{NetworkNone, NetworkHost, "", ErrUnsupported, RemedyNoNetwork},
		{NetworkHost, NetworkNone, "", ErrUnsupported, RemedyNetworkHost},
	} {
		got, err := grantedNetwork(tc.recorded, tc.flag)
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("grantedNetwork(%q, %q) = %q, %v, want %q, %v", tc.recorded, tc.flag, got, err, tc.want, tc.wantErr)
		}
		if tc.wantRemedy != 0 && !hasRemedy(err, tc.wantRemedy, "") {
			t.Errorf("grantedNetwork(%q, %q) = %v, want a *RemedyError with %v", tc.recorded, tc.flag, err, tc.wantRemedy)
		}
	}
}

func TestStandIns(t *testing.T) {
	root, dir := t.TempDir(), filepath.Join(t.TempDir(), "stand")
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A link in the container's root must not make the look land on the
	// host: /escape/f would be a file outside the root.
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	got, err := standIns(dir, root, []string{"/etc/conf", "/data", "/etc"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Type: "bind", Source: filepath.Join(dir, "0"), Destination: "/etc/conf"},
		{Type: "bind", Source: filepath.Join(dir, "1"), Destination: "/data"},
		{Type: "bind", Source: filepath.Join(dir, "2"), Destination: "/etc"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("standIns() = %v, want %v", got, want)
	}
	for i, wantDir := range []bool{false, true, true} {
		fi, err := os.Lstat(got[i].Source)
		if err != nil || fi.IsDir() != wantDir || (!wantDir && fi.Size() != 0) {
			t.Errorf("stand-in for %s: %v, %v; want a directory: %v, empty", got[i].Destination, fi, err, wantDir)
		}
	}
	if _, err := standIns(filepath.Join(t.TempDir(), "s"), root, []string{"/escape/f"}); err == nil {
		t.Errorf("standIns(/escape/f) through a link out of the root succeeded")
	}
}

// TestImageOptions: the checks an import adds to every reader's refuse,
// on the images of a real podman container, threads with capabilities
// beyond defaultCaps, tasks in the dumping CRIU's namespaces and device
// nodes in tmpfs contents.
func TestImageOptions(t *testing.T) {
	host, err := os.ReadFile("../format/criuimg/testdata/tiny-4.2.1/core-19163.img")
	if err != nil {
		t.Fatal(err)
	}
	var mem bytes.Buffer
	zw := gzip.NewWriter(&mem)
	tw := tar.NewWriter(zw)
	_ = tw.WriteHeader(&tar.Header{Name: "./mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666})
	_ = tw.Close()
	_ = zw.Close()
	inv, err := criuimg.ReadInventory(podmanImage(t, "checkpoint/inventory.img"))
	if err != nil {
		t.Fatal(err)
	}
	ids := podmanImage(t, "checkpoint/ids-1.img")
	hostPid := bytes.Clone(ids)
	// ids-1.img: magics, a 4-byte size, then the message; the pid_ns_id
	// field (5) holds 9, the dumping CRIU's is inv.RootIDs.PidNsID.
	i := bytes.Index(hostPid[12:], []byte{5 << 3, 9})
	if i < 0 {
		t.Fatal("no pid_ns_id 9 in ids-1.img")
	}
	hostPid[12+i+1] = byte(inv.RootIDs.PidNsID)
	for _, tc := range []struct {
		name, file string
		img        []byte
		hostNet    bool
		wantErr    error
		wantIn     string
	}{
		{name: "podman's"},
		{name: "a host process's core", file: "core-1.img", img: host, wantErr: criuimg.ErrPrivilege, wantIn: "CAP_SYS_ADMIN"},
		{name: "in the host's PID namespace", file: "ids-1.img", img: hostPid, wantErr: criuimg.ErrPrivilege, wantIn: "host's pid namespace"},
		{name: "/dev/mem", file: "tmpfs-dev-44.tar.gz.img", img: mem.Bytes(), wantErr: criuimg.ErrImage, wantIn: "(1:1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := podmanImages(t)
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, tc.file), tc.img, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := format.CheckImageDir(dir, imageOptions(tc.hostNet, nil, nil))
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) || err != nil && !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("CheckImageDir() = %v, want %v with %q", err, tc.wantErr, tc.wantIn)
			}
		})
	}
}

// podmanImages extracts the CRIU images of the podman archive in testdata
// into a new directory.
func podmanImages(t *testing.T) string {
	t.Helper()
	f, err := os.Open("../testdata/podman/counter.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		base, ok := strings.CutPrefix(h.Name, "checkpoint/")
		if !ok || h.Typeflag != tar.TypeReg || strings.Contains(base, "/") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, base), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// podmanImage returns a member of the podman archive in testdata.
func podmanImage(t *testing.T, name string) []byte {
	t.Helper()
	return tarbuild.Member(t, "../testdata/podman/counter.tar", name)
}

func TestMemoryProblem(t *testing.T) {
	if err := memoryProblem(1<<30, 1<<30); err != nil {
		t.Errorf("memoryProblem(1 GiB, 1 GiB) = %v", err)
	}
	if err := memoryProblem(3<<29, 1<<30); !errors.Is(err, ErrNoRoom) || !strings.Contains(err.Error(), "1.5 GiB of memory pages and this host has 1.0 GiB") {
		t.Errorf("memoryProblem(1.5 GiB, 1 GiB) = %v", err)
	}
	if mem, err := memAndSwap(); err != nil || mem <= 0 {
		t.Errorf("memAndSwap() = %d, %v", mem, err)
	}
	m := &format.Manifest{Members: []format.Member{
		{Name: "checkpoint/pages-1.img", Kind: format.KindImage, Size: 10},
		{Name: "pre-checkpoint/pages-2.img", Kind: format.KindPreImage, Size: 5},
		{Name: "checkpoint/pagemap-1.img", Kind: format.KindImage, Size: 7},
		{Name: "volumes/pages-1.img", Kind: format.KindVolume, Size: 100},
	}}
	if got := pagesOf(m); got != 15 {
		t.Errorf("pagesOf() = %d, want 15", got)
	}
}
