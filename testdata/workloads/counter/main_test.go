package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func runFor(t *testing.T, args []string, env map[string]string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, envMap(env), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCounterTicks(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "counter")
	code, out, errOut := runFor(t, []string{"-file", file, "-interval", "1ms", "-ticks", "5"}, nil)
	if code != 0 {
		t.Fatalf("run() = %d, want 0; stderr %q", code, errOut)
	}
	if want := "counter 1\ncounter 2\ncounter 3\ncounter 4\ncounter 5\n"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "5\n" {
		t.Errorf("file = %q, want %q", got, "5\n")
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("stat(%s.tmp) = %v, want not exist", file, err)
	}
}

// TestCounterIgnoresFile checks that the counter never starts from the
// file's value: only a memory restore may carry it on.
func TestCounterIgnoresFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "counter")
	if err := os.WriteFile(file, []byte("41\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runFor(t, []string{"-file", file, "-interval", "1ms", "-ticks", "1"}, nil)
	if code != 0 || out != "counter 1\n" {
		t.Errorf("run() = %d, %q, want 0, %q", code, out, "counter 1\n")
	}
}

func TestCancelExitsZero(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-file", "", "-interval", "1h"}, envMap(nil), &stdout, &stderr)
	}()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run() after cancel = %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run() did not return after cancel")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{
			name: "defaults",
			want: config{file: "/tmp/counter", interval: 100 * time.Millisecond, root: "/"},
		},
		{
			name: "env",
			env: map[string]string{
				"COUNTER_FILE": "/data/counter", "COUNTER_INTERVAL": "1s", "COUNTER_TICKS": "7",
				"BALLAST_MB": "64", "DIRTY_PERCENT": "10", "COUNTER_TCP": "1", "COUNTER_TCP_PORT": "7000",
				"COUNTER_TCP_TIMEOUT": "5s", "COUNTER_WRITE_FILES": "true", "COUNTER_ROOT": "/r",
			},
			want: config{
				file: "/data/counter", interval: time.Second, ticks: 7, ballastMB: 64, dirtyPercent: 10,
				tcp: true, tcpPort: 7000, tcpTimeout: 5 * time.Second, writeFiles: true, root: "/r",
			},
		},
		{
			name: "flag wins over env",
			args: []string{"-file", "/f", "-ballast-mb", "2", "-tcp=false"},
			env:  map[string]string{"COUNTER_FILE": "/e", "BALLAST_MB": "64", "COUNTER_TCP": "1"},
			want: config{file: "/f", interval: 100 * time.Millisecond, ballastMB: 2, root: "/"},
		},
		{name: "bad env int", env: map[string]string{"BALLAST_MB": "x"}, wantErr: "env BALLAST_MB"},
		{name: "bad env bool", env: map[string]string{"COUNTER_TCP": "maybe"}, wantErr: "env COUNTER_TCP"},
		{name: "bad dirty", args: []string{"-dirty-percent", "101"}, wantErr: "dirty-percent"},
		{name: "bad interval", args: []string{"-interval", "0s"}, wantErr: "interval"},
		{name: "extra arg", args: []string{"x"}, wantErr: "unexpected argument"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseConfig(tt.args, envMap(tt.env), &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConfig(%q) error = %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig(%q) error = %v", tt.args, err)
			}
			if *got != tt.want {
				t.Errorf("parseConfig(%q) = %+v, want %+v", tt.args, *got, tt.want)
			}
		})
	}
}

func TestUsageExitCode(t *testing.T) {
	t.Parallel()
	if code, _, _ := runFor(t, []string{"-ballast-mb", "-1"}, nil); code != 2 {
		t.Errorf("run(-ballast-mb -1) = %d, want 2", code)
	}
	if code, _, _ := runFor(t, []string{"-h"}, nil); code != 0 {
		t.Errorf("run(-h) = %d, want 0", code)
	}
}

func TestWriteFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{modifiedFile: modifiedBefore, deletedFile: "delete me\n"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 { // the second run finds the file already deleted
		code, out, errOut := runFor(t, []string{"-write-files", "-root", root, "-file", "", "-interval", "1ms", "-ticks", "1"}, nil)
		if code != 0 || out != "files written\ncounter 1\n" {
			t.Fatalf("run %d = %d, %q (stderr %q), want 0, %q", i, code, out, errOut, "files written\ncounter 1\n")
		}
	}
	for name, want := range map[string]string{addedFile: addedContent, modifiedFile: modifiedAfter} {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || string(got) != want {
			t.Errorf("read %s = %q, %v, want %q", name, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, deletedFile)); !os.IsNotExist(err) {
		t.Errorf("stat %s = %v, want not exist", deletedFile, err)
	}
}

func TestBallast(t *testing.T) {
	t.Parallel()
	a, b := newBallast(1), newBallast(1)
	if len(a.mem) != 1<<20 || a.pages != 256 {
		t.Fatalf("newBallast(1): %d bytes, %d pages, want %d, 256", len(a.mem), a.pages, 1<<20)
	}
	if !bytes.Equal(a.mem, b.mem) {
		t.Error("newBallast is not deterministic")
	}
	half := len(a.mem) / 2
	if !bytes.HasPrefix(a.mem[half:], []byte(ballastText+ballastText)) {
		t.Error("second half does not hold the text")
	}
	zeroPages := 0
	for p := range a.pages {
		if bytes.Count(a.mem[p*pageSize:(p+1)*pageSize], []byte{0}) == pageSize {
			zeroPages++
		}
	}
	if zeroPages != 0 {
		t.Errorf("%d untouched (all-zero) pages, want 0", zeroPages)
	}

	// 10% of 256 pages is 25 pages per tick, walked round-robin.
	before := bytes.Clone(a.mem)
	a.dirty(10, 1)
	if got := changedPages(before, a.mem); got != 25 {
		t.Errorf("dirty(10) changed %d pages, want 25", got)
	}
	if a.mem[0] != 1 || a.mem[pageSize] != 1 {
		t.Errorf("dirtied page does not start with the tick")
	}
	before = bytes.Clone(a.mem)
	a.dirty(0, 2)
	if got := changedPages(before, a.mem); got != 0 {
		t.Errorf("dirty(0) changed %d pages, want 0", got)
	}
	a.dirty(100, 3)
	if got := changedPages(before, a.mem); got != 256 {
		t.Errorf("dirty(100) changed %d pages, want 256", got)
	}
}

func changedPages(a, b []byte) int {
	n := 0
	for p := 0; p < len(a); p += pageSize {
		if !bytes.Equal(a[p:p+pageSize], b[p:p+pageSize]) {
			n++
		}
	}
	return n
}

func TestTCP(t *testing.T) {
	t.Parallel()
	code, out, errOut := runFor(t, []string{"-tcp", "-file", "", "-interval", "1ms", "-ticks", "3", "-tcp-timeout", "10s"}, nil)
	if code != 0 {
		t.Fatalf("run(-tcp) = %d, want 0; stdout %q stderr %q", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "tcp listening 127.0.0.1:") {
		t.Fatalf("stdout = %q, want a listening line and 3 ticks", out)
	}
	var want strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&want, "counter %d\ntcp ok %d\n", i, i)
	}
	if got := strings.Join(lines[1:], "\n") + "\n"; got != want.String() {
		t.Errorf("ticks = %q, want %q", got, want.String())
	}
}

func TestTCPBroken(t *testing.T) {
	t.Parallel()
	p, err := newTCPPair(0, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.ping(1); err != nil {
		t.Fatalf("ping(1) = %v, want nil", err)
	}
	p.client.Close()
	if err := p.ping(2); err == nil {
		t.Error("ping after close = nil, want an error")
	}
}

func TestCounterCat(t *testing.T) {
	stdin = strings.NewReader("hi\nthere\n")
	defer func() { stdin = os.Stdin }()
	code, out, errOut := runFor(t, []string{"-cat"}, nil)
	if code != 0 || out != "hi\nthere\n" {
		t.Errorf("run(-cat) = %d, %q (stderr %q), want 0, %q", code, out, errOut, "hi\nthere\n")
	}
}
