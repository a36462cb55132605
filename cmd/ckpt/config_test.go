package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/internal/testutil"
)

// TestSettingsPrecedence: a flag wins over CKPT_*, CKPT_* over the
// configuration file, the file over the default; --config over
// CKPT_CONFIG.
func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ckpt.conf")
	writeFile(t, conf, `# ckpt settings
[ckpt]
root = "/from/file"
runroot = /from/file/run   # a comment
storage_root = '/from/file/storage'
criu-timeout = 5m
runtime = file-runc
`)
	other := filepath.Join(dir, "other.conf")
	writeFile(t, other, "tmpdir = /from/other\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want globalOptions
		file string
	}{
		{name: "defaults", args: nil, env: nil,
			want: globalOptions{root: "/var/lib/ckpt", runtime: "runc", criu: "criu"}},
		{name: "file", args: nil, env: map[string]string{"CKPT_CONFIG": conf}, file: conf,
			want: globalOptions{root: "/from/file", runRoot: "/from/file/run", storageRoot: "/from/file/storage", runtime: "file-runc", criu: "criu"}},
		{name: "env over file", env: map[string]string{"CKPT_CONFIG": conf, "CKPT_ROOT": "/from/env", "CKPT_CRIU": "env-criu", "CKPT_CRIU_TIMEOUT": "7m"}, file: conf,
			want: globalOptions{root: "/from/env", runRoot: "/from/file/run", storageRoot: "/from/file/storage", runtime: "file-runc", criu: "env-criu"}},
		{name: "flag over env", args: []string{"--root", "/from/flag", "--runtime", "flag-runc"},
			env: map[string]string{"CKPT_CONFIG": conf, "CKPT_ROOT": "/from/env", "CKPT_RUNTIME": "env-runc"}, file: conf,
			want: globalOptions{root: "/from/flag", runRoot: "/from/file/run", storageRoot: "/from/file/storage", runtime: "flag-runc", criu: "criu"}},
		{name: "--config over CKPT_CONFIG", args: []string{"--config", other}, env: map[string]string{"CKPT_CONFIG": conf}, file: other,
			want: globalOptions{root: "/var/lib/ckpt", tmpDir: "/from/other", runtime: "runc", criu: "criu"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g globalOptions
			fs := globalFlags(&g)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			file, err := applySettings(fs, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("applySettings: %v", err)
			}
			if file != tt.file {
				t.Errorf("config file = %q, want %q", file, tt.file)
			}
			got := globalOptions{root: g.root, storageRoot: g.storageRoot, runRoot: g.runRoot, tmpDir: g.tmpDir, runtime: g.runtime, criu: g.criu}
			if got != tt.want {
				t.Errorf("settings = %+v, want %+v", got, tt.want)
			}
		})
	}
	// The timeout's three sources, checked on the parsed value.
	for _, c := range []struct {
		args []string
		env  map[string]string
		want time.Duration
	}{
		{nil, map[string]string{"CKPT_CONFIG": conf}, 5 * time.Minute},
		{nil, map[string]string{"CKPT_CONFIG": conf, "CKPT_CRIU_TIMEOUT": "7m"}, 7 * time.Minute},
		{[]string{"--criu-timeout", "9m"}, map[string]string{"CKPT_CONFIG": conf, "CKPT_CRIU_TIMEOUT": "7m"}, 9 * time.Minute},
	} {
		var g globalOptions
		fs := globalFlags(&g)
		_ = fs.Parse(c.args)
		if _, err := applySettings(fs, func(k string) string { return c.env[k] }); err != nil || g.criuLimits.Timeout != c.want {
			t.Errorf("%v %v: criu timeout = %v (%v), want %v", c.args, c.env, g.criuLimits.Timeout, err, c.want)
		}
	}
}

// TestSettingsErrors: a bad setting names its source (file and line, or
// variable); an explicitly named file must exist.
func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		conf, want string
		env        map[string]string
	}{
		{conf: "nonsense\n", want: "ckpt.conf:1: want name = value"},
		{conf: "\n\nroots = /x\n", want: `ckpt.conf:3: unknown setting "roots"`},
		{conf: "criu-timeout = soon\n", want: `ckpt.conf:1: criu-timeout = "soon"`},
		{conf: "root = \"/x\" trailing\n", want: "ckpt.conf:1: root: text after the quoted value"},
		{conf: "version = true\n", want: `unknown setting "version"`},
		{conf: "", env: map[string]string{"CKPT_CRIU_MAX_LOG": "lots"}, want: `CKPT_CRIU_MAX_LOG="lots"`},
		{conf: "-", want: "no such file"},
	} {
		conf := filepath.Join(dir, "ckpt.conf")
		_ = os.Remove(conf)
		if c.conf != "-" {
			writeFile(t, conf, c.conf)
		}
		env := map[string]string{"CKPT_CONFIG": conf}
		for k, v := range c.env {
			env[k] = v
		}
		var g globalOptions
		fs := globalFlags(&g)
		_ = fs.Parse(nil)
		if _, err := applySettings(fs, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q, env %v: error %v, want it to contain %q", c.conf, c.env, err, c.want)
		}
	}
}

// TestCKPTRootEnv: CKPT_ROOT and the configuration file reach the engine
// through the whole command line (info --json reports the directories).
func TestCKPTRootEnv(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "ckpt.conf")
	writeFile(t, conf, "runroot = "+filepath.Join(dir, "run")+"\ntmpdir = /from/file\n")
	t.Setenv("CKPT_CONFIG", conf)
	t.Setenv("CKPT_ROOT", filepath.Join(dir, "root"))
	t.Setenv("CKPT_TMPDIR", "/dev/shm")
	code, out, errOut := ckpt(t, "info", "--json")
	if code != 0 {
		t.Fatalf("info --json = %d: %s", code, errOut)
	}
	var in struct {
		Root, RunRoot, TmpDir, Config string
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	in.Root, _ = raw["root"].(string)
	in.RunRoot, _ = raw["run_root"].(string)
	in.TmpDir, _ = raw["tmp_dir"].(string)
	in.Config, _ = raw["config_file"].(string)
	if in.Root != filepath.Join(dir, "root") || in.RunRoot != filepath.Join(dir, "run") || in.TmpDir != "/dev/shm" || in.Config != conf {
		t.Errorf("info --json = %+v, want root from CKPT_ROOT, runroot from the file, tmpdir from CKPT_TMPDIR", in)
	}
	if code, _, errOut := ckpt(t, "--root", filepath.Join(dir, "flag"), "--tmpdir", "", "info"); code != 0 || errOut != "" {
		t.Errorf("info with --root = %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "flag", "storage")); err != nil {
		t.Errorf("--root did not win over CKPT_ROOT: %v", err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
