package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestSpliceSection: a streaming run replaces its own section only, and
// adds it after keptMarker (which make bench keeps) when there is none.
func TestSpliceSection(t *testing.T) {
	sec := func(body string) string { return streamBegin + "\n" + body + "\n" + streamEnd + "\n" }
	head := "# Benchmark results\n\nfigures\n"
	got := string(spliceSection([]byte(head), sec("one")))
	if want := head + "\n" + keptMarker + "\n\n" + sec("one"); got != want {
		t.Fatalf("first section:\n%s\nwant:\n%s", got, want)
	}
	if keptTail([]byte(got)) == nil || !strings.Contains(string(keptTail([]byte(got))), "one") {
		t.Errorf("the section is not in the part make bench keeps:\n%s", got)
	}
	withShow := got + "\n## show\n\nshow figures\n"
	got2 := string(spliceSection([]byte(withShow), sec("two")))
	if strings.Contains(got2, "one") || !strings.Contains(got2, "two") || !strings.HasSuffix(got2, "## show\n\nshow figures\n") || strings.Count(got2, keptMarker) != 1 {
		t.Errorf("replaced section:\n%s", got2)
	}
}

// TestStatOf: the median of an even count is the mean of the middle two;
// zero values (not measured) are left out.
func TestStatOf(t *testing.T) {
	rs := []streamRun{{Freeze: 4 * time.Second}, {Freeze: 1 * time.Second}, {}, {Freeze: 2 * time.Second}, {Freeze: 3 * time.Second}}
	s, ok := statOf(rs, func(r streamRun) float64 { return secs(r.Freeze) })
	if !ok || s.med != 2.5 || s.lo != 1 || s.hi != 4 || len(s.all) != 4 {
		t.Errorf("statOf = %+v, %v; want median 2.5, 1–4, 4 values", s, ok)
	}
	if _, ok := statOf(rs[2:3], func(r streamRun) float64 { return secs(r.Freeze) }); ok {
		t.Error("statOf of no measured value: ok")
	}
}

// TestThrottledCopy: the copier keeps to its rate and copies every byte.
func TestThrottledCopy(t *testing.T) {
	src := bytes.Repeat([]byte("x"), 1<<20)
	var dst bytes.Buffer
	t0 := time.Now()
	n, err := throttledCopy(&dst, bytes.NewReader(src), 4<<20) // 0.25 s
	if d := time.Since(t0); err != nil || n != int64(len(src)) || !bytes.Equal(dst.Bytes(), src) || d < 240*time.Millisecond {
		t.Errorf("throttledCopy: %d bytes, %v, in %v; want %d bytes in at least 0.24 s", n, err, d, len(src))
	}
}

// TestMeasuredOwnAndChildren: a shell that runs a child spinning on the
// CPU gets its CPU as children's, not its own, and a peak RSS.
func TestMeasuredOwnAndChildren(t *testing.T) {
	u, _, err := runMeasured(t.Context(), []string{"sh", "-c", "timeout 0.3 sh -c 'while :; do :; done'; true"}, cmdIO{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if u.CUser+u.CSys < 100*time.Millisecond || u.User+u.Sys > 50*time.Millisecond || u.HWM == 0 || u.MaxRSS == 0 {
		t.Errorf("usage %+v: want ≥ 0.1 s of children's CPU, little of its own, a peak RSS", u)
	}
}
