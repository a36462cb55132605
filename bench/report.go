package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	started time.Time
	cfg     config
	results map[int]map[string][]result // size -> engine -> runs
	floors  []floor
}

func (r *report) add(size int, engine string, res result) {
	if r.results == nil {
		r.results = map[int]map[string][]result{}
	}
	if r.results[size] == nil {
		r.results[size] = map[string][]result{}
	}
	r.results[size][engine] = append(r.results[size][engine], res)
}

// median of the successful runs' values of f.
func median(rs []result, f func(result) float64) (float64, bool) {
	var v []float64
	for _, r := range rs {
		if r.Err == "" {
			v = append(v, f(r))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return middle(v), true
}

// middle returns the median of v (the upper one of an even count); v
// must not be empty. It sorts v.
func middle[T cmp.Ordered](v []T) T {
	slices.Sort(v)
	return v[len(v)/2]
}

func (r *report) write() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmark results\n\n")
	fmt.Fprintf(&b, "Made by `make bench` (`go run ./bench -sizes %s -runs %d`) on %s.\n\n",
		joinInts(r.cfg.sizes), r.cfg.runs, r.started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s\n\n", machine())
	fmt.Fprintf(&b, "Memory: %s. (A balloon's free page reporting makes memory freed 2 s earlier cost 2–4× as much to touch again, at random; see bench/memory.go.)\n\n", r.cfg.memory)
	fmt.Fprintf(&b, "Workload: testdata/workloads counter with `-ballast-mb N` (half pseudo-random, half text), `--network none`. ")
	fmt.Fprintf(&b, "Archives are written to disk (%s), default zstd compression. Runs alternate which engine goes first; each measured command starts after a sync(2), so that none shares the disk with what an earlier one left to write back. ", r.cfg.work)
	fmt.Fprintf(&b, "Times are wall-clock seconds of the CLI command; CRIU frozen is CRIU's frozen_time from --print-stats; container stopped is how long the container could not run (ckpt: its ckpt_frozen_time, from its own cgroup freeze at CRIU's pre-dump action to the end of CRIU's dump; podman: CRIU's frozen_time, which leaves out CRIU's own freezing, up to 100 ms of polling); RSS is the CLI process's peak.\n\n")
	for _, size := range r.cfg.sizes {
		fmt.Fprintf(&b, "## %d MiB\n\n", size)
		engines := r.results[size]
		fmt.Fprintf(&b, "| metric (median) | ckpt | podman | ckpt/podman | target |\n|---|---|---|---|---|\n")
		metrics := []struct {
			name, target string
			f            func(result) float64
			unit         string
		}{
			{"checkpoint --export (s)", "≤ 0.33", func(x result) float64 { return x.Export.Seconds() }, "%.2f"},
			{"CRIU frozen time (s)", "", func(x result) float64 { return x.Frozen.Seconds() }, "%.2f"},
			{"container stopped (s)", "", func(x result) float64 { return x.Stopped.Seconds() }, "%.2f"},
			{"archive size (bytes)", "≤ 1.0000", func(x result) float64 { return float64(x.Size) }, "%.0f"},
			{"restore --import (s)", "≤ 0.33", func(x result) float64 { return x.Import.Seconds() }, "%.2f"},
			{"peak RSS export (MiB)", "ckpt ≤ 256 MiB", func(x result) float64 { return float64(x.ExportRSS) / 1024 }, "%.0f"},
			{"peak RSS import (MiB)", "ckpt ≤ 256 MiB", func(x result) float64 { return float64(x.ImportRSS) / 1024 }, "%.0f"},
		}
		for _, m := range metrics {
			c, okc := median(engines["ckpt"], m.f)
			p, okp := median(engines["podman"], m.f)
			cell := func(v float64, ok bool) string {
				if !ok {
					return "—"
				}
				return fmt.Sprintf(m.unit, v)
			}
			ratio := "—"
			if okc && okp && p > 0 {
				ratio = fmt.Sprintf("%.2f", c/p)
				if strings.HasPrefix(m.name, "archive size") {
					ratio = fmt.Sprintf("%.4f", c/p)
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.name, cell(c, okc), cell(p, okp), ratio, m.target)
		}
		for _, f := range r.floors {
			if f.SizeMiB != size {
				continue
			}
			if f.Err != "" {
				fmt.Fprintf(&b, "\nFloors: error: %s\n", f.Err)
				continue
			}
			var runs []string
			for _, r := range f.Runs {
				runs = append(runs, fmt.Sprintf("%.2f", r.Seconds()))
			}
			fmt.Fprintf(&b, "\nFloors (medians of one per run): bare `criu dump` to tmpfs %.2f s (frozen ≈ %.2f s; each run: %s s), images %s; tar+zstd of the images %.2f s (%.0f MB/s) → %s.\n",
				f.Dump.Seconds(), f.Frozen.Seconds(), strings.Join(runs, ", "), mb(f.ImagesBytes), f.Compress.Seconds(), float64(f.ImagesBytes)/1e6/f.Compress.Seconds(), mb(f.Compressed))
			var diffs []string
			var ds []int64
			for _, sz := range f.Sizes {
				diffs = append(diffs, fmt.Sprintf("%+d", sz[1]-sz[0]))
				ds = append(ds, sz[1]-sz[0])
			}
			if len(ds) > 0 {
				fmt.Fprintf(&b, "The same images both ways (the engines' archives hold different containers, whose memory differs by a few pages from run to run): ckpt's format minus tar+zstd = %+d bytes, median (each run: %s), with ckpt's manifest.\n", middle(ds), strings.Join(diffs, ", "))
			}
			if c, ok := median(engines["ckpt"], func(x result) float64 { return x.Frozen.Seconds() }); ok && f.Frozen > 0 {
				fmt.Fprintf(&b, "ckpt's CRIU frozen / bare CRIU frozen = %.2f (target ≤ 1.10).\n", c/f.Frozen.Seconds())
			}
			if c, ok := median(engines["ckpt"], func(x result) float64 { return x.Stopped.Seconds() }); ok && f.Frozen > 0 {
				fmt.Fprintf(&b, "ckpt's container stopped / bare CRIU frozen = %.2f (the whole freeze: ckpt's cgroup freeze at CRIU's pre-dump action, the rest of CRIU's start, its dump and kill).\n", c/f.Frozen.Seconds())
			}
		}
		fmt.Fprintf(&b, "\nRaw runs:\n\n")
		for _, e := range []string{"ckpt", "podman"} {
			for i, x := range engines[e] {
				fmt.Fprintf(&b, "- %s run %d: %s\n", e, i+1, x)
			}
		}
		fmt.Fprintln(&b)
	}
	if r.cfg.out == "-" {
		_, err := os.Stdout.Write(b.Bytes())
		return err
	}
	if old, err := os.ReadFile(r.cfg.out); err == nil {
		b.Write(keptTail(old))
	}
	tmp := r.cfg.out + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.cfg.out)
}

// keptMarker starts the part of a report that other benchmarks wrote
// (bench/show.sh's): write keeps it, from the marker on, after its own.
const keptMarker = "<!-- kept by make bench: sections below come from other benchmarks -->"

// keptTail returns old from keptMarker on; nothing when it has none.
func keptTail(old []byte) []byte {
	if i := bytes.Index(old, []byte(keptMarker)); i >= 0 {
		return old[i:]
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// machine describes the host and the versions of the parts measured.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	ver := func(argv ...string) string {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			return argv[0] + " (not installed)"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d cores (%s), kernel %s, %s; CRIU %s; %s; %s; %s",
		runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version(),
		strings.TrimPrefix(ver("criu", "--version"), "Version: "), ver("runc", "--version"), ver("podman", "--version"), memTotal())
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return ""
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.Join(strings.Fields(l), " ")
}
