package engine

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format/seal"
	"github.com/ckpt/ckpt/inspect"
	"github.com/ckpt/ckpt/internal/testutil"
)

var (
	sealedMiB  = flag.Int("sealed-mib", 1024, "BenchmarkSealedVsPlain: the counter's ballast in MiB")
	sealedRuns = flag.Int("sealed-runs", 5, "BenchmarkSealedVsPlain: runs, each one export and import unsealed and sealed, alternating which goes first")
)

// BenchmarkSealedVsPlain measures, in one run, the export (staged, CRIU
// images on a tmpfs, archive on disk, default zstd) and the import (on a
// second root) of the counter holding -sealed-mib of ballast, unsealed
// and sealed to an ssh-keygen ed25519 key, -sealed-runs times, alternating
// which goes first; each measured call starts after a sync(2). It logs
// every run, the medians with their spread, the ratios sealed/unsealed,
// the import's extract phase, `show` of the sealed archive with its key
// (inspect.Show), and the load average before and after.
//
//	go test ./engine/ -run '^$' -bench 'SealedVsPlain$' -benchtime 1x -timeout 30m -v
func BenchmarkSealedVsPlain(b *testing.B) {
	src, dst := realEngine(b), realEngine(b)
	mib := *sealedMiB
	tmp := b.TempDir()
	if err := syscall.Mount("tmpfs", tmp, "tmpfs", 0, fmt.Sprintf("size=%dm", mib+512)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Unmount(tmp, syscall.MNT_DETACH) })
	src.TmpDir = tmp
	priv := benchKey(b)
	to, err := seal.ParseRecipients(priv + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	ids, err := seal.ParseIdentities(priv)
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	ctx := context.Background()
	m := sealedMeasures{}
	load := loadAvg()
	for range b.N {
		for run := range *sealedRuns {
			order := []bool{false, true}
			if run%2 == 1 {
				order = []bool{true, false}
			}
			for _, sealed := range order {
				c := sealedCase{src: src, dst: dst, mib: mib, archive: filepath.Join(out, fmt.Sprintf("r%d", run))}
				if sealed {
					c.xo.SealTo, c.im.Identities = to, ids
				}
				c.measure(ctx, b, m, fmt.Sprintf("r%d", run))
			}
		}
	}
	b.Logf("load average before: %s; after: %s", load, loadAvg())
	m.report(b)
}

// benchKey makes an ed25519 key with ssh-keygen and returns its private
// key file.
func benchKey(b *testing.B) string {
	p := filepath.Join(b.TempDir(), "id")
	if out, err := exec.Command(testutil.RequireTool(b, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return p
}

// sealedCase is one export and import of BenchmarkSealedVsPlain.
type sealedCase struct {
	src, dst *Engine
	mib      int
	archive  string
	xo       ExportOptions
	im       ImportOptions
}

// sealedMeasures are the seconds of each measure ("plain export",
// "sealed import", …), one per run.
type sealedMeasures map[string][]float64

func (c *sealedCase) measure(ctx context.Context, b *testing.B, m sealedMeasures, name string) {
	mode := "plain"
	if len(c.xo.SealTo) > 0 {
		mode = "sealed"
	}
	name += mode
	cmd := []string{"/bin/counter", "-interval", "100ms", "-ballast-mb", fmt.Sprint(c.mib)}
	if _, err := c.src.Run(ctx, "workload", &RunOptions{Name: name, Command: cmd}); err != nil {
		b.Fatal(err)
	}
	waitBallast(b, c.src, name)
	syscall.Sync()
	cpu0 := cpuSeconds()
	t0 := time.Now()
	xr, err := c.src.Export(ctx, name, c.archive, &c.xo)
	if err != nil {
		b.Fatal(err)
	}
	exp := time.Since(t0)
	m[mode+" export own CPU"] = append(m[mode+" export own CPU"], cpuSeconds()-cpu0)
	syscall.Sync()
	t0 = time.Now()
	ir, err := c.dst.Import(ctx, c.archive, &c.im)
	if err != nil {
		b.Fatal(err)
	}
	imp := time.Since(t0)
	m[mode+" export"] = append(m[mode+" export"], exp.Seconds())
	m[mode+" import"] = append(m[mode+" import"], imp.Seconds())
	for _, p := range xr.Phases {
		if p.Name == "write_archive" {
			m[mode+" export write"] = append(m[mode+" export write"], float64(p.Microseconds)/1e6)
		}
	}
	for _, p := range ir.Phases {
		if p.Name == "extract" {
			m[mode+" import extract"] = append(m[mode+" import extract"], float64(p.Microseconds)/1e6)
		}
	}
	line := fmt.Sprintf("%s: export %.2fs (%.1f MB), import %.2fs", name, exp.Seconds(), float64(xr.Size)/1e6, imp.Seconds())
	if mode == "sealed" {
		t0 = time.Now()
		s, err := inspect.Show(ctx, c.archive, &inspect.ShowOptions{Identities: c.im.Identities})
		if err != nil || s.PagesSize < int64(c.mib)<<20 {
			b.Fatalf("show --decrypt-key: %v (pages %d)", err, s.PagesSize)
		}
		show := time.Since(t0)
		m["sealed show (key)"] = append(m["sealed show (key)"], show.Seconds())
		line += fmt.Sprintf(", show with key %.1f ms", show.Seconds()*1000)
	}
	b.Log(line)
	_ = os.Remove(c.archive)
	for _, r := range []struct {
		e   *Engine
		ref string
	}{{c.src, name}, {c.dst, ir.Container.ID}} {
		if err := r.e.Remove(ctx, r.ref, true); err != nil {
			b.Fatal(err)
		}
	}
}

// report logs each measure's median and spread, and the ratios.
func (m sealedMeasures) report(b *testing.B) {
	med := map[string]float64{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var rows []string
	for _, k := range keys {
		v := slices.Clone(m[k])
		slices.Sort(v)
		med[k] = v[len(v)/2]
		rows = append(rows, fmt.Sprintf("%-22s median %.3fs  min %.3fs  max %.3fs  (n=%d)", k, med[k], v[0], v[len(v)-1], len(v)))
	}
	for _, op := range []string{"export", "export write", "export own CPU", "import", "import extract"} {
		if p := med["plain "+op]; p > 0 {
			r := med["sealed "+op] / p
			// Each run's own ratio (its two cases ran one after the
			// other): their median follows less the machine's load.
			var pairs []float64
			for i := range min(len(m["plain "+op]), len(m["sealed "+op])) {
				pairs = append(pairs, m["sealed "+op][i]/m["plain "+op][i])
			}
			slices.Sort(pairs)
			rows = append(rows, fmt.Sprintf("sealed/plain %s: %.3fx of the medians; per run: median %.3fx, min %.3fx, max %.3fx", op, r, pairs[len(pairs)/2], pairs[0], pairs[len(pairs)-1]))
			b.ReportMetric(r, strings.ReplaceAll(op, " ", "-")+"-x")
		}
	}
	b.ReportMetric(med["sealed show (key)"]*1000, "show-ms")
	b.Log("\n" + strings.Join(rows, "\n"))
}

// loadAvg is /proc/loadavg's three figures.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuSeconds is this process's CPU time (user and system), in seconds:
// the engine's own work (runc and CRIU, its children, are left out: the
// children reaped include the checkpointed container, whose own CPU would
// count).
func cpuSeconds() float64 {
	var self syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	t := func(v syscall.Timeval) float64 { return float64(v.Sec) + float64(v.Usec)/1e6 }
	return t(self.Utime) + t(self.Stime)
}
