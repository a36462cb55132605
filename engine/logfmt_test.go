package engine

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestLogWriter(t *testing.T) {
	var b bytes.Buffer
	at := time.Date(2026, 1, 2, 15, 4, 5, 120000000, time.FixedZone("X", 3600))
	l := &logWriter{w: &b, now: func() time.Time { return at }}
	_ = l.write("stdout", []byte("one\ntwo\nthr"))
	_ = l.write("stderr", []byte("ee\n"))
	_ = l.write("stdout", nil)
	want := "2026-01-02T14:04:05.120000000Z stdout F one\n" +
		"2026-01-02T14:04:05.120000000Z stdout F two\n" +
		"2026-01-02T14:04:05.120000000Z stdout P thr\n" +
		"2026-01-02T14:04:05.120000000Z stderr F ee\n"
	if b.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestReadLogOptions(t *testing.T) {
	// An older ckpt's untimed lines, then podman's and ckpt's records.
	log := "old line\n" +
		"2026-11-23T11:48:39.2+00:00 stdout F counter 35\n" +
		"2026-11-23T11:48:39.3+00:00 stderr P part\n" +
		"2026-11-23T11:48:39.4+00:00 stderr F ial\n" +
		"2026-11-23T12:00:00.000000000Z stdout F \n" +
		"2026-11-23T12:00:01.000000000Z stdout F last\n" +
		"no newline"
	at := func(s string) time.Time {
		x, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tt := range []struct {
		name string
		o    LogOptions
		want string
	}{
		{"all", LogOptions{Tail: -1}, "old line\ncounter 35\npartial\n\nlast\nno newline\n"},
		{"tail 2", LogOptions{Tail: 2}, "last\nno newline\n"},
		{"tail 0", LogOptions{Tail: 0}, ""},
		{"tail 99", LogOptions{Tail: 99}, "old line\ncounter 35\npartial\n\nlast\nno newline\n"},
		{"timestamps", LogOptions{Tail: 3, Timestamps: true}, "2026-11-23T12:00:00.000000000Z \n2026-11-23T12:00:01.000000000Z last\nno newline\n"},
		{"since", LogOptions{Tail: -1, Since: at("2026-11-23T11:48:39.3Z")}, "partial\n\nlast\n"},
		{"until", LogOptions{Tail: -1, Until: at("2026-11-23T11:48:39.3Z")}, "old line\ncounter 35\nno newline\n"},
		{"since and tail", LogOptions{Tail: 1, Since: at("2026-11-23T11:00:00Z")}, "last\n"},
	} {
		var out bytes.Buffer
		e := &Engine{}
		if err := e.copyLog(context.Background(), "x", bufio.NewReader(strings.NewReader(log)), &out, &tt.o); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if out.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, out.String(), tt.want)
		}
	}
}

// TestLogUntil checks that an -R export's log stops when the container ran
// again: records read after it are left out, untimed lines and earlier
// records kept.
func TestLogUntil(t *testing.T) {
	cut := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	log := "old untimed line\n" +
		"2026-01-02T15:04:04.000000000Z stdout F 1\n" +
		"2026-01-02T15:04:05.000000000Z stdout F 2\n" +
		"2026-01-02T15:04:05.000000001Z stdout F 3\n" +
		"2026-01-02T15:04:06.000000000Z stdout F 4\n"
	want := "old untimed line\n" +
		"2026-01-02T15:04:04.000000000Z stdout F 1\n" +
		"2026-01-02T15:04:05.000000000Z stdout F 2\n"
	if got := string(logUntil([]byte(log), cut)); got != want {
		t.Errorf("logUntil = %q, want %q", got, want)
	}
	if got := string(logUntil([]byte(log), time.Time{})); got != log {
		t.Errorf("logUntil with no cut = %q, want all", got)
	}
	if got := string(logUntil([]byte("2026-01-02T15:04:04.000000000Z stdout P no newline"), cut)); got != "2026-01-02T15:04:04.000000000Z stdout P no newline" {
		t.Errorf("logUntil of an unterminated record = %q", got)
	}
}
