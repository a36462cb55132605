package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/engine"
)

func TestPSFormat(t *testing.T) {
	now := time.Now().UTC()
	ctrs := []*engine.Container{
		{ID: strings.Repeat("a", 64), Name: "web", Image: "localhost/w:latest", ImageID: strings.Repeat("b", 64),
			Command: []string{"/bin/counter", "-ticks", "3"}, Status: engine.StatusRunning, PID: 42, Network: "none",
			CreatedAt: now.Add(-5 * time.Minute), StartedAt: now.Add(-3 * time.Minute),
			Mounts: []engine.Mount{{Destination: "/data"}, {Destination: "/cfg"}}},
		{ID: strings.Repeat("c", 64), Name: "done", Status: engine.StatusExited, ExitCode: 3, PID: 7,
			CreatedAt: now.Add(-2 * time.Hour), FinishedAt: now.Add(-90 * time.Second)},
	}
	run := func(quiet bool, format string, noTrunc bool) (int, string, string) {
		var o, e strings.Builder
		env := &cmdEnv{stdout: &o, stderr: &e}
		code := psFormatted(env, psCmd(), ctrs, quiet, format, noTrunc)
		return code, o.String(), e.String()
	}
	for _, tt := range []struct {
		quiet, noTrunc bool
		format, want   string
	}{
		{quiet: true, want: "aaaaaaaaaaaa\ncccccccccccc\n"},
		{quiet: true, noTrunc: true, want: strings.Repeat("a", 64) + "\n" + strings.Repeat("c", 64) + "\n"},
		{format: `{{.Names}} {{.State}} {{.Pid}} {{.ExitCode}} {{.Exited}}`, want: "web running 42 0 false\ndone exited 0 3 true\n"},
		{format: `{{.Status}}|{{.CreatedHuman}}|{{join .Mounts ","}}|{{.Command}}`,
			want: "Up 3 minutes|5 minutes ago|/data,/cfg|/bin/counter -ticks 3\nExited (3) About a minute ago|2 hours ago||\n"},
		{format: `table {{.ID}}\t{{.Names}}`, want: "CONTAINER ID  NAMES\naaaaaaaaaaaa  web\ncccccccccccc  done\n"},
	} {
		code, out, errOut := run(tt.quiet, tt.format, tt.noTrunc)
		if code != 0 || out != tt.want {
			t.Errorf("ps -q=%v --format %q = %d, %q (%s)\nwant %q", tt.quiet, tt.format, code, out, errOut, tt.want)
		}
	}
	code, out, _ := run(false, "json", false)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 2 || rows[0]["Names"] != "web" || rows[1]["ExitCode"] != 3.0 {
		t.Errorf("ps --format json = %d, %s (%v)", code, out, err)
	}
	if code, _, errOut := run(false, "{{.Nope}}", false); code != exitUsage || !strings.Contains(errOut, "--format") {
		t.Errorf("ps --format {{.Nope}} = %d, %q; want a usage error", code, errOut)
	}
	if code, _, errOut := ckpt(t, "--root", t.TempDir(), "ps", "-q", "--json"); code != exitUsage || !strings.Contains(errOut, "cannot be used together") {
		t.Errorf("ps -q --json = %d, %q", code, errOut)
	}
}
