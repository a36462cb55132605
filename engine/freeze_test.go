package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runPreDumpScript writes f's pre-dump script into dir and runs it with
// CRTOOLS_SCRIPT_ACTION=action, as CRIU does (sh -c path).
func runPreDumpScript(t *testing.T, f *cgroupFreezer, dir, action string, tries int) (marker string) {
	t.Helper()
	marker = filepath.Join(dir, "it's frozen")
	script := filepath.Join(dir, "pre-dump.sh")
	if err := os.WriteFile(script, []byte(f.preDumpScript(marker, tries)), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "CRTOOLS_SCRIPT_ACTION="+action)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	return marker
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// TestPreDumpScript runs the pre-dump action script against plain files
// standing in for the freezer's: it freezes at pre-dump only, creates
// its marker once frozen, and, when the cgroup never freezes, thaws it
// again and still exits 0 without the marker (CRIU then freezes).
func TestPreDumpScript(t *testing.T) {
	t.Parallel()
	read := func(p string) string { b, _ := os.ReadFile(p); return strings.TrimSpace(string(b)) }

	t.Run("v1", func(t *testing.T) {
		dir := t.TempDir()
		f := &cgroupFreezer{v1: true, file: filepath.Join(dir, "freezer.state")}
		os.WriteFile(f.file, []byte("THAWED\n"), 0o600)
		if m := runPreDumpScript(t, f, dir, "post-dump", 10); exists(m) || read(f.file) != "THAWED" {
			t.Fatalf("post-dump: marker %v, state %q; want neither touched", exists(m), read(f.file))
		}
		// A regular file reads back what was written: frozen at once.
		if m := runPreDumpScript(t, f, dir, "pre-dump", 10); !exists(m) || read(f.file) != "FROZEN" {
			t.Fatalf("pre-dump: marker %v, state %q; want the marker and FROZEN", exists(m), read(f.file))
		}
	})
	// v2: cgroup.events says frozen, or never does (the script thaws).
	for _, c := range []struct {
		name, events string
		tries        int
		marker       bool
		freeze       string
	}{
		{"v2", "populated 1\nfrozen 1\n", 10, true, "1"},
		{"never frozen", "populated 1\nfrozen 0\n", 3, false, "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			f := &cgroupFreezer{file: filepath.Join(dir, "cgroup.freeze"), events: filepath.Join(dir, "cgroup.events")}
			os.WriteFile(f.events, []byte(c.events), 0o600)
			if m := runPreDumpScript(t, f, dir, "pre-dump", c.tries); exists(m) != c.marker || read(f.file) != c.freeze {
				t.Fatalf("marker %v, cgroup.freeze %q; want marker %v and %q", exists(m), read(f.file), c.marker, c.freeze)
			}
		})
	}
	t.Run("no freezer", func(t *testing.T) {
		dir := t.TempDir()
		f := &cgroupFreezer{v1: true, file: filepath.Join(dir, "missing", "freezer.state")}
		if m := runPreDumpScript(t, f, dir, "pre-dump", 3); exists(m) {
			t.Fatal("marker without a freezer")
		}
	})
}

// TestSetCRIUConfig: a bundle of an older ckpt does not name the
// configuration and one of this ckpt's does; the configuration is written
// after the host's runc.conf and removed by the function returned.
func TestSetCRIUConfig(t *testing.T) {
	e := &Engine{Root: t.TempDir()}
	c := &Container{ID: "0123456789abcdef", Name: "x", Command: []string{"/bin/true"}}
	if err := os.MkdirAll(e.containerDir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "runc.conf")
	old := hostRuncCRIUConfig
	hostRuncCRIUConfig = host
	t.Cleanup(func() { hostRuncCRIUConfig = old })

	// An older ckpt's bundle: no annotation.
	spec, err := specFor(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSpec(filepath.Join(e.containerDir(c.ID), "config.json"), spec); err != nil {
		t.Fatal(err)
	}
	if e.namesCRIUConfig(c) {
		t.Fatal("an older ckpt's bundle names the CRIU configuration")
	}
	if err := e.writeBundle(c); err != nil {
		t.Fatal(err)
	}
	if !e.namesCRIUConfig(c) {
		t.Fatal("the bundle does not name the CRIU configuration")
	}
	for _, tc := range []struct{ host, want string }{
		{"", "tcp-close\n"},
		{"log-level 4", "log-level 4\ntcp-close\n"},
	} {
		os.Remove(host)
		if tc.host != "" {
			os.WriteFile(host, []byte(tc.host), 0o600)
		}
		remove, err := e.setCRIUConfig(c, "tcp-close\n")
		if err != nil {
			t.Fatalf("setCRIUConfig = %v", err)
		}
		if b, _ := os.ReadFile(e.criuConfigPath(c.ID)); string(b) != tc.want {
			t.Errorf("host %q: %q, want %q", tc.host, b, tc.want)
		}
		remove()
		if exists(e.criuConfigPath(c.ID)) {
			t.Error("not removed")
		}
	}
}

func TestScriptable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if !scriptable(dir) {
		t.Errorf("%s: not scriptable", dir)
	}
	spaced := filepath.Join(dir, "a b")
	os.Mkdir(spaced, 0o700)
	if scriptable(spaced) || scriptable(filepath.Join(dir, "missing")) {
		t.Error("a path with a space, or a missing one, is scriptable")
	}
}
