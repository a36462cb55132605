package main

import "testing"

// TestKeptTail: a report rewritten by make bench keeps the sections
// other benchmarks added after keptMarker, and only those.
func TestKeptTail(t *testing.T) {
	old := "# Benchmark results\n\nold figures\n\n" + keptMarker + "\n\n## show\n\nfigures\n"
	if got, want := string(keptTail([]byte(old))), keptMarker+"\n\n## show\n\nfigures\n"; got != want {
		t.Errorf("keptTail() = %q, want %q", got, want)
	}
	if got := keptTail([]byte("# Benchmark results\n\nold figures\n")); got != nil {
		t.Errorf("keptTail(no marker) = %q, want nothing", got)
	}
}
