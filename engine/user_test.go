package engine

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000::/home/app:/bin/sh\n")
	write("group", "root:x:0:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:other,app\n")
	for _, tt := range []struct {
		spec string
		want User
	}{
		{"app", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}}},
		{"1000", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 29}}},
		{"4321", User{UID: 4321, GID: 0}}, // podman: a uid the image lacks gets group 0
		{"app:wheel", User{UID: 1000, GID: 10, AdditionalGids: []uint32{29}}},
		{"app:77", User{UID: 1000, GID: 77, AdditionalGids: []uint32{10, 29}}},
		{"0:audio", User{UID: 0, GID: 29, AdditionalGids: []uint32{10}}},
	} {
		got, err := resolveUser(root, tt.spec)
		if err != nil {
			t.Errorf("resolveUser(%q): %v", tt.spec, err)
			continue
		}
		tt.want.Spec = tt.spec
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("resolveUser(%q) = %+v, want %+v", tt.spec, *got, tt.want)
		}
	}
	for spec, msg := range map[string]string{
		"nobody": `no user "nobody" in the image's /etc/passwd`, "app:staff": `no group "staff"`,
	} {
		if _, err := resolveUser(root, spec); !errors.Is(err, ErrUnknownUser) || !strings.Contains(err.Error(), msg) {
			t.Errorf("resolveUser(%q) = %v, want ErrUnknownUser saying %q", spec, err, msg)
		}
	}
	for _, spec := range []string{"", ":1", "1:"} {
		if _, err := resolveUser(root, spec); err == nil {
			t.Errorf("resolveUser(%q) succeeded", spec)
		}
	}
	// /etc/passwd is read inside the root: a link to a host file resolves there (to nothing).
	write("group", "")
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveUser(root, "root"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("resolveUser through a link to a host file (/etc/hostname) = %v, want ErrUnknownUser", err)
	}
	write("users", "app:x:1000:1000::/home/app:/bin/sh\n")
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../etc/users", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if u, err := resolveUser(root, "app"); err != nil || u.UID != 1000 {
		t.Errorf("resolveUser through an absolute link inside the image = %+v, %v", u, err)
	}
}

func TestSpecForProcessOptions(t *testing.T) {
	c := &Container{ID: strings.Repeat("ab", 32), Name: "x", Command: []string{"/bin/counter"}, Rootfs: "/r",
		Network: NetworkNone, User: &User{UID: 7, GID: 8, AdditionalGids: []uint32{9}}, WorkDir: "/data",
		Hostname: "box.example", MemoryLimit: 64 << 20}
	s, err := specFor(c)
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Process.User; u.UID != 7 || u.GID != 8 || !reflect.DeepEqual(u.AdditionalGids, []uint32{9}) {
		t.Errorf("user = %+v", u)
	}
	if s.Process.Cwd != "/data" || s.Hostname != "box.example" || !strings.Contains(strings.Join(s.Process.Env, " "), "HOSTNAME=box.example") {
		t.Errorf("cwd %q, hostname %q, env %q", s.Process.Cwd, s.Hostname, s.Process.Env)
	}
	if m := s.Linux.Resources.Memory; m == nil || m.Limit == nil || *m.Limit != 64<<20 {
		t.Errorf("memory = %+v, want a 64 MiB limit", m)
	}
	c.User, c.WorkDir, c.Hostname, c.MemoryLimit = nil, "", "", 0
	if s, _ = specFor(c); s.Process.User.UID != 0 || s.Process.Cwd != "/" || s.Hostname != c.ID[:12] || s.Linux.Resources.Memory != nil {
		t.Errorf("defaults: user %+v, cwd %q, hostname %q, memory %+v", s.Process.User, s.Process.Cwd, s.Hostname, s.Linux.Resources.Memory)
	}
}

func TestCheckProcessOptions(t *testing.T) {
	for _, o := range []RunOptions{
		{}, {Command: []string{"x"}, WorkDir: "data"}, {Command: []string{"x"}, Hostname: "-bad"},
		{Command: []string{"x"}, Hostname: "a_b"}, {Command: []string{"x"}, Hostname: strings.Repeat("a", 65)},
		{Command: []string{"x"}, MemoryLimit: -1},
	} {
		if err := checkProcessOptions(&o); err == nil {
			t.Errorf("checkProcessOptions(%+v) = nil, want an error", o)
		}
	}
	for _, o := range []RunOptions{
		{Entrypoint: []string{"/bin/x"}}, {Command: []string{"x"}, WorkDir: "/a b", Hostname: "h-1.example", MemoryLimit: 1},
	} {
		if err := checkProcessOptions(&o); err != nil {
			t.Errorf("checkProcessOptions(%+v) = %v", o, err)
		}
	}
}
