package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// multiArchive is podman's archive of one container checkpointed with -R
// four times (testdata/podman/README.md): pstree.img lists sh (1) and a
// sleep (34); the images of earlier sleeps are stale.
var multiArchive = filepath.Join(repoTestdata, "podman", "multi.tar.zst")

// TestVerifyStale: verify of podman's multi-checkpoint archive is ok, with
// each stale image a note and in "stale", none a problem; a copy with a
// live image corrupted fails naming it.
func TestVerifyStale(t *testing.T) {
	ctx := context.Background()
	r, err := Verify(ctx, multiArchive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("Verify(%s) problems = %q, want none", multiArchive, r.Problems)
	}
	note := StaleNote + " checkpoint/pagemap-14.img: pid 14 is not in pstree.img"
	if !contains(r.Notes, note) {
		t.Errorf("notes = %q, want %q", r.Notes, note)
	}
	notes := 0
	for _, n := range r.Notes {
		if strings.HasPrefix(n, StaleNote) {
			notes++
		}
	}
	if notes != len(r.Stale) || notes < 20 {
		t.Errorf("%d stale notes, %d stale images; want one note each, at least 20", notes, len(r.Stale))
	}
	b, err := json.Marshal(VerifyJSON{Version: JSONVersion, Archives: []*VerifyResult{r}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"problems":[]`)) || !bytes.Contains(b, []byte(`{"member":"checkpoint/pages-3.img","reason":"no pagemap of the dump names it"}`)) {
		t.Errorf("verify JSON = %s, want no problem and pages-3.img stale", b)
	}

	bad := filepath.Join(t.TempDir(), "bad.tar.zst")
	corrupt := tarbuild.RewriteZstd(t, multiArchive, "checkpoint/core-34.img", func(b []byte) []byte {
		b[8], b[9], b[10], b[11] = 0xff, 0xff, 0xff, 0x7f
		return b
	})
	if err := os.WriteFile(bad, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = Verify(ctx, bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || !strings.Contains(r.Problems[0], "checkpoint/core-34.img") {
		t.Errorf("Verify(core-34.img corrupted) problems = %q, want the first naming it", r.Problems)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestReadersStale: inspect, memparse and diff of the archive see the
// dump's processes only, and a stale pid has no memory.
func TestReadersStale(t *testing.T) {
	ctx := context.Background()
	in, err := Inspect(ctx, multiArchive, &InspectOptions{PsTree: true, Cmd: true, Files: true})
	if err != nil {
		t.Fatal(err)
	}
	var pids []uint32
	Walk(in.Processes, func(p *Process, _ int) { pids = append(pids, p.PID) })
	if len(pids) != 2 || pids[0] != 1 || pids[1] != 34 {
		t.Fatalf("processes %v, want [1 34]", pids)
	}
	if got := strings.Join(in.Processes[0].Cmdline, " "); !strings.HasPrefix(got, "/bin/sh -c i=0;") {
		t.Errorf("cmdline of 1 = %q", got)
	}
	if len(in.Stale) < 20 || in.Stale[0].Member == "" {
		t.Errorf("Inspection.Stale = %v, want the stale images", in.Stale)
	}
	var out bytes.Buffer
	if err := WriteInspection(&out, in); err != nil || !strings.Contains(out.String(), "Stale images: ") {
		t.Errorf("inspect tree: %v\n%s", err, out.String())
	}

	a, err := Load(ctx, multiArchive, &LoadOptions{Images: true, Pages: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	use, err := a.MemoryUsage()
	if err != nil || len(use) != 2 || use[1].PID != 34 || use[1].Memory != 68<<10 {
		t.Errorf("MemoryUsage = %+v, %v; want sh and sleep 34 (68 KiB)", use, err)
	}
	if _, ok := a.Images["pagemap-14.img"]; ok {
		t.Error("Load kept stale pagemap-14.img")
	}
	if err := a.HexDump(&out, 14); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("HexDump(14) = %v, want an error saying its images are stale", err)
	}
	if err := a.HexDump(&bytes.Buffer{}, 34); err != nil {
		t.Errorf("HexDump(34) = %v", err)
	}

	d, err := DiffArchives(ctx, multiArchive, multiArchive, nil)
	if err != nil || !d.Identical {
		t.Errorf("DiffArchives(multi, multi) = %+v, %v; want identical", d, err)
	}
}
