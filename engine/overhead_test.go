package engine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkOverheadVsRunc measures the engine's checkpoint and restore
// next to bare `runc checkpoint`/`runc restore` on an identical container,
// interleaved so that load changes hit both alike, and reports the medians:
//
//	go test -run '^$' -bench OverheadVsRunc -benchtime 15x ./engine
//
// (CKPT_OVERHEAD_BALLAST adds MiB of touched memory to the workload.)
func BenchmarkOverheadVsRunc(bm *testing.B) {
	var t testing.TB = bm
	rounds := bm.N
	e := realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "50ms"}
	if mb := os.Getenv("CKPT_OVERHEAD_BALLAST"); mb != "" {
		cmd = append(cmd, "-ballast-mb", mb)
	}
	if _, err := e.Run(ctx, "workload", &RunOptions{Name: "a", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	b, err := e.Run(ctx, "workload", &RunOptions{Name: "b", Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	r := e.runc("")
	raw := t.TempDir()
	var ec, er, rc, rr []time.Duration
	for i := 0; i < rounds; i++ {
		img, work := filepath.Join(raw, "img"), filepath.Join(raw, "work")
		_ = os.RemoveAll(img)
		_ = os.RemoveAll(work)
		_ = os.MkdirAll(img, 0o700)
		_ = os.MkdirAll(work, 0o700)

		t0 := time.Now()
		if _, err := e.Checkpoint(ctx, "a", nil); err != nil {
			t.Fatal(err)
		}
		ec = append(ec, time.Since(t0))

		t0 = time.Now()
		if _, err := runcTool(ctx, r.checkpointArgs(b.ID, img, work, nil), filepath.Join(work, "dump.log")); err != nil {
			t.Fatal(err)
		}
		rc = append(rc, time.Since(t0))

		t0 = time.Now()
		if _, err := e.Restore(ctx, "a", nil); err != nil {
			t.Fatal(err)
		}
		er = append(er, time.Since(t0))

		// Bare runc restore with pipes as stdio, as CRIU needs them; the
		// write end of stdin and the read end of stdout stay open here.
		inR, inW, _ := os.Pipe()
		outR, outW, _ := os.Pipe()
		t.Cleanup(func() { inW.Close(); outR.Close() })
		go func() { _, _ = outR.WriteTo(discard{}) }()
		argv := r.restoreArgs(b.ID, e.containerDir(b.ID), filepath.Join(raw, "pid"), img, work, nil)
		x := exec.CommandContext(ctx, argv[0], argv[1:]...)
		x.Stdin, x.Stdout, x.Stderr = inR, outW, outW
		t0 = time.Now()
		if err := x.Run(); err != nil {
			t.Fatalf("runc restore: %v (%s)", err, logTail(filepath.Join(work, "restore.log"), 5))
		}
		rr = append(rr, time.Since(t0))
		inR.Close()
		outW.Close()
		time.Sleep(200 * time.Millisecond)
	}
	_, _ = runcTool(ctx, r.killArgs(b.ID, 9, false), "")
	time.Sleep(300 * time.Millisecond)
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2].Round(time.Millisecond)
	}
	t.Logf("rounds %d, medians: engine checkpoint %v, runc checkpoint %v; engine restore %v, runc restore %v",
		rounds, med(ec), med(rc), med(er), med(rr))
	ms := func(d []time.Duration) float64 { return float64(med(d)) / float64(time.Millisecond) }
	bm.ReportMetric(ms(ec), "ckpt-checkpoint-ms")
	bm.ReportMetric(ms(rc), "runc-checkpoint-ms")
	bm.ReportMetric(ms(er), "ckpt-restore-ms")
	bm.ReportMetric(ms(rr), "runc-restore-ms")
	bm.ReportMetric(0, "ns/op")
	t.Logf("engine checkpoint %v", ec)
	t.Logf("runc checkpoint   %v", rc)
	t.Logf("engine restore    %v", er)
	t.Logf("runc restore      %v", rr)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
