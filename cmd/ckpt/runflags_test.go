package main

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{
		"100": 100, "100b": 100, "64k": 64 << 10, "512m": 512 << 20, "512M": 512 << 20, "1g": 1 << 30,
		"1.5g": 3 << 29, "2G": 2 << 30, "64MiB": 64 << 20, "64mb": 64 << 20, "1t": 1 << 40, "0": 0,
	} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-1m", "1x", "1.g", "1 gb b", "99999999999p", "0x10"} {
		if got, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	in := `# comment
A=1
  B=two words =x
 # indented comment

C="quoted"
HOSTVAR
MISSING
PRE*
D=
`
	environ := []string{"HOSTVAR=from host", "PREFIX_1=p1", "PREFIX_2=p2", "OTHER=o"}
	got, err := parseEnvFile(strings.NewReader(in), environ)
	want := []string{"A=1", "B=two words =x", `C="quoted"`, "HOSTVAR=from host", "PREFIX_1=p1", "PREFIX_2=p2", "D="}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseEnvFile = %q, %v\nwant %q", got, err, want)
	}
	if _, err := parseEnvFile(strings.NewReader("A=1\n=oops\n"), nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("parseEnvFile(=oops) = %v, want an error naming line 2", err)
	}
	// --env wins over --env-file, in the file's place.
	if got := mergeEnv([]string{"A=file", "B=file"}, []string{"B=flag", "C=flag"}); !reflect.DeepEqual(got, []string{"A=file", "B=flag", "C=flag"}) {
		t.Errorf("mergeEnv = %q", got)
	}
	// The CLI names the file that is missing.
	root := t.TempDir()
	code, _, errOut := ckpt(t, "--root", root, "run", "--env-file", filepath.Join(root, "nope.env"), "img", "/bin/x")
	if code != exitUsage || !strings.Contains(errOut, "nope.env") {
		t.Errorf("run --env-file missing = %d, %q", code, errOut)
	}
}

func TestParseEntrypoint(t *testing.T) {
	for in, want := range map[string][]string{
		"": nil, "/bin/sh": {"/bin/sh"}, "/bin/my prog": {"/bin/my prog"}, `["/bin/sh","-c"]`: {"/bin/sh", "-c"},
	} {
		if got, err := parseEntrypoint(in); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseEntrypoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`["/bin/sh"`, `[]`, `[""]`, `[1]`} {
		if _, err := parseEntrypoint(bad); err == nil {
			t.Errorf("parseEntrypoint(%q) succeeded", bad)
		}
	}
}

func TestRunFlagErrors(t *testing.T) {
	root := t.TempDir()
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"run", "-m", "lots", "img", "/bin/x"}, `--memory: invalid size "lots"`},
		{[]string{"create", "--memory", "1q", "img", "/bin/x"}, "--memory"},
		{[]string{"run", "-w", "data", "img", "/bin/x"}, `--workdir "data" must be an absolute path`},
		{[]string{"exec", "-w", "tmp", "c", "/bin/x"}, `--workdir "tmp" must be an absolute path`},
		{[]string{"run", "--entrypoint", "[oops", "img"}, "--entrypoint: invalid JSON array"},
	} {
		code, _, errOut := ckpt(t, append([]string{"--root", root}, tt.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("ckpt %q = %d, %q; want %d and %q", tt.args, code, errOut, exitUsage, tt.stderr)
		}
	}
}

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-01-02T15:04:05Z":          time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		"2026-01-02T15:04:05.5+01:00":   time.Date(2026, 1, 2, 14, 4, 5, 5e8, time.UTC),
		"2026-01-02T15:04:05":           time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		"2026-01-02T15:04:05.123456789": time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.UTC),
		"2026-01-02":                    time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		"2026-01-02+02:00":              time.Date(2026, 1, 1, 22, 0, 0, 0, time.UTC),
		"1767366245":                    time.Unix(1767366245, 0),
		"1767366245.25":                 time.Unix(1767366245, 25e7),
		"10m":                           now.Add(-10 * time.Minute),
		"1h30m":                         now.Add(-90 * time.Minute),
		"0":                             time.Unix(0, 0),
	} {
		if got, err := parseLogTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseLogTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-01", "10 minutes", "NaN", "Inf"} {
		if _, err := parseLogTime(bad, now); err == nil {
			t.Errorf("parseLogTime(%q) succeeded", bad)
		}
	}
	if code, _, errOut := ckpt(t, "--root", t.TempDir(), "logs", "--since", "yesterday", "x"); code != exitUsage || !strings.Contains(errOut, `--since: invalid time "yesterday"`) {
		t.Errorf("logs --since yesterday = %d, %q", code, errOut)
	}
}

// TestEnvFlags: -e K=V as given, -e K and -e K* from this shell (left out
// when unset), an empty name refused.
func TestEnvFlags(t *testing.T) {
	environ := []string{"HOME=/root", "LC_ALL=C", "LC_TIME=x", "EMPTY="}
	got, err := envFlags([]string{"A=1", "HOME", "LC_*", "UNSET", "EMPTY", "B=="}, environ)
	want := []string{"A=1", "HOME=/root", "LC_ALL=C", "LC_TIME=x", "EMPTY=", "B=="}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("envFlags = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"=x", "*", ""} {
		if _, err := envFlags([]string{bad}, environ); err == nil {
			t.Errorf("envFlags(%q) = nil error, want one", bad)
		}
	}
}
