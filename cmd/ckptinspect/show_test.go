package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestShowLegacyNote shows podman's own archives (testdata/podman): the
// uncompressed one with every size; the zstd one with its sizes "-", a
// note on stderr naming them and --full, and "unknown" in the JSON; with
// --full every size and no note.
func TestShowLegacyNote(t *testing.T) {
	const zst, plain = "../../testdata/podman/counter.tar.zst", "../../testdata/podman/counter.tar"
	show := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"show"}, args...), &stdout, &stderr); code != 0 {
			t.Fatalf("show %q = %d: %s", args, code, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	// row returns the fields of the table's one row from CHKPT SIZE on:
	// CHKPT SIZE, PAGES SIZE, ROOTFS DIFF, CHAIN, VERIFIED (sizes are two
	// words, "803.6 KiB", or "-").
	row := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("show printed %d lines, want a header and one row:\n%s", len(lines), out)
		}
		_, after, _ := strings.Cut(lines[1], " legacy ")
		return strings.Join(strings.Fields(after), " ")
	}
	out, errOut := show(plain)
	if got := row(out); got != "803.6 KiB 772.0 KiB 2.0 KiB - unverifiable" || errOut != "" {
		t.Errorf("show %s: %q, stderr %q; want every size, no note", plain, got, errOut)
	}
	out, errOut = show(zst)
	if got := row(out); got != "- - - - unverifiable" {
		t.Errorf("show %s: %q, want the sizes \"-\"", zst, got)
	}
	if want := "show: note: " + zst + ": CHKPT SIZE, PAGES SIZE and ROOTFS DIFF need the whole zstd stream decompressed"; !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "show --full") {
		t.Errorf("show %s: stderr %q, want %q... naming show --full", zst, errOut, want)
	}
	out, errOut = show("--full", zst)
	if got := row(out); !strings.HasPrefix(got, "8") || strings.HasPrefix(got, "-") || errOut != "" {
		t.Errorf("show --full %s: %q, stderr %q; want every size, no note", zst, got, errOut)
	}
	out, errOut = show("--json", zst)
	var doc struct {
		Archives []struct {
			CheckpointSize int64    `json:"checkpointSize"`
			Unknown        []string `json:"unknown"`
		} `json:"archives"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Archives) != 1 {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if a := doc.Archives[0]; strings.Join(a.Unknown, ",") != "checkpointSize,memoryPagesSize,rootfsDiffSize" || errOut != "" {
		t.Errorf("show --json %s: unknown %q, stderr %q; want the three sizes, no note", zst, a.Unknown, errOut)
	}
}
