package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// The streaming section of the report lies between these markers, after
// keptMarker, so that the comparison with podman keeps it and a new
// streaming run replaces only it.
const (
	streamBegin = "<!-- streaming (#20): written by go run ./bench -streaming -->"
	streamEnd   = "<!-- end of streaming (#20) -->"
)

type streamReport struct {
	cfg          config
	sc           streamConfig
	started      time.Time
	commit       string // at the start: the code measured
	load0, load1 string
	runs         map[int][]streamRun
}

// metric is one row: its name and its value in a run (0: not measured).
type metric struct {
	name string
	f    func(streamRun) float64
}

func secs(d time.Duration) float64 { return d.Seconds() }

// stat is the median, minimum and maximum of the runs' non-zero values.
type stat struct {
	med, lo, hi float64
	all         []float64
}

func statOf(rs []streamRun, f func(streamRun) float64) (stat, bool) {
	var v []float64
	for _, r := range rs {
		if x := f(r); x > 0 {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return stat{}, false
	}
	s := stat{all: slices.Clone(v)}
	slices.Sort(v)
	s.lo, s.hi = v[0], v[len(v)-1]
	// The median proper: the mean of the middle two of an even count.
	s.med = v[len(v)/2]
	if len(v)%2 == 0 {
		s.med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return s, true
}

// transfer is how long the piped migration's bytes take at the rate.
func (rep *streamReport) transfer(r streamRun) float64 {
	n := r.PipeBytes
	if n == 0 { // -pipe confirm: the bench does not see the bytes
		n = r.Size
	}
	return float64(n) * 8 / (rep.sc.rateMbit * 1e6)
}

// parts is the piped migration's parts of a run: its streamed export,
// the transfer at the rate and its import.
func (rep *streamReport) parts(r streamRun) float64 {
	if rep.transfer(r) == 0 || r.Streamed.Wall == 0 || r.Import.Wall == 0 {
		return 0
	}
	return secs(r.Streamed.Wall) + rep.transfer(r) + secs(r.Import.Wall)
}

// importName is the import's row: the command that read the archive.
func (rep *streamReport) importName() string {
	if rep.sc.importStdin {
		return "ckpt import `restore -i - < FILE` of the streamed archive"
	}
	return "ckpt import `restore -i FILE` of the streamed archive"
}

func (rep *streamReport) timeMetrics() []metric {
	return []metric{
		{"floor: bare `criu dump` to tmpfs", func(r streamRun) float64 { return secs(r.Dump.Wall) }},
		{"floor: bare dump's freeze (CRIU frozen_time)", func(r streamRun) float64 { return secs(r.Freeze) }},
		{"floor: zstd fastest, all cores, tar of the images from tmpfs", func(r streamRun) float64 { return secs(r.ZstdTime) }},
		{"floor: bare `criu restore -d` from tmpfs", func(r streamRun) float64 { return secs(r.Restore.Wall) }},
		{"ckpt streamed export `checkpoint -e -` (to a file)", func(r streamRun) float64 { return secs(r.Streamed.Wall) }},
		{"ckpt staged export `checkpoint -e FILE`", func(r streamRun) float64 { return secs(r.Staged.Wall) }},
		{"ckpt streamed export `-c none` (to /dev/null)", func(r streamRun) float64 { return secs(r.None.Wall) }},
		{rep.importName(), func(r streamRun) float64 { return secs(r.Import.Wall) }},
		{"container stopped, streamed export (ckpt_frozen_time)", func(r streamRun) float64 { return secs(r.StoppedStreamed) }},
		{"container stopped, staged export", func(r streamRun) float64 { return secs(r.StoppedStaged) }},
		{"container stopped, `-c none` streamed export", func(r streamRun) float64 { return secs(r.StoppedNone) }},
		{"CRIU frozen_time in the streamed export", func(r streamRun) float64 { return secs(r.FrozenStreamed) }},
		{fmt.Sprintf("piped migration at %g Mbit/s, export start to import end", rep.sc.rateMbit), func(r streamRun) float64 { return secs(r.PipeTotal) }},
		{"  its parts: streamed export + transfer at that rate + import", rep.parts},
		{"  of which the transfer alone", func(r streamRun) float64 { return rep.transfer(r) }},
	}
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

func memMetrics() []metric {
	return []metric{
		{"ckpt's own peak RSS, streamed export", func(r streamRun) float64 { return mib(r.Streamed.HWM) }},
		{"ckpt's own peak RSS, import", func(r streamRun) float64 { return mib(r.Import.HWM) }},
		{"ckpt's own peak RSS, staged export", func(r streamRun) float64 { return mib(r.Staged.HWM) }},
		{"ckpt's own peak RSS, `-c none` streamed export", func(r streamRun) float64 { return mib(r.None.HWM) }},
		{"ckpt's own peak RSS, piped export / import", func(r streamRun) float64 { return mib(max(r.PipeExport.HWM, r.PipeImport.HWM)) }},
		{"wait4 peak of ckpt and its children (runc, CRIU), streamed export", func(r streamRun) float64 { return mib(r.Streamed.MaxRSS) }},
		{"wait4 peak of ckpt and its children, import", func(r streamRun) float64 { return mib(r.Import.MaxRSS) }},
		{"bare `criu dump`'s peak", func(r streamRun) float64 { return mib(r.Dump.MaxRSS) }},
	}
}

// cpuRows are the commands whose CPU the report splits: own and children.
func cpuRows() []struct {
	name string
	u    func(streamRun) usage
} {
	return []struct {
		name string
		u    func(streamRun) usage
	}{
		{"ckpt streamed export (children: runc, CRIU)", func(r streamRun) usage { return r.Streamed }},
		{"ckpt streamed export `-c none`", func(r streamRun) usage { return r.None }},
		{"ckpt staged export", func(r streamRun) usage { return r.Staged }},
		{"ckpt import (CRIU runs under ckpt's monitor: not a child)", func(r streamRun) usage { return r.Import }},
		{"bare `criu dump`", func(r streamRun) usage { return r.Dump }},
		{"zstd fastest (the bench's child)", func(r streamRun) usage { return r.Zstd }},
		{"bare `criu restore -d`", func(r streamRun) usage { return r.Restore }},
	}
}

func (rep *streamReport) header(b *bytes.Buffer) {
	fmt.Fprintf(b, "## Streaming (#20)\n\n")
	fmt.Fprintf(b, "Made by `%s` on %s, commit %s.\n\n", strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "),
		rep.started.UTC().Format("2006-01-02 15:04 UTC"), rep.commit)
	fmt.Fprintf(b, "Load average (1, 5, 15 min) at the start %s, after the last run %s. Machine: %s. Memory: %s.\n\n", rep.load0, rep.load1, machine(), rep.cfg.memory)
	how := map[string]string{
		pipeFile:    "into a file, imported once whole (`-pipe file`)",
		pipeStdin:   "into `restore -i -` (`-pipe stdin`)",
		pipeConfirm: "as one command, `checkpoint -e - --confirm-cmd 'COPIER | ckpt restore -i -'` (`-pipe confirm`; its time is that command's)",
	}[rep.sc.pipe]
	fmt.Fprintf(b, "Per size, %d runs (the report is rewritten after each: a size with fewer was cut short); in each, the floors and ckpt's commands alternate which goes first; every command starts after a sync(2), on a fresh container (counter, `-ballast-mb N`, half pseudo-random, half text). ", rep.cfg.runs)
	fmt.Fprintf(b, "Floors: the counter in its own PID namespace, `criu dump --shell-job` to tmpfs (its images), zstd at `SpeedFastest` on all cores (klauspost/compress) over a tar of those images read from tmpfs to nowhere, `criu restore -d` from them. ")
	fmt.Fprintf(b, "ckpt: archives on disk (%s); the piped migration copies `checkpoint -e -` through a copier throttled to %g Mbit/s %s. ", rep.cfg.work, rep.sc.rateMbit, how)
	fmt.Fprintf(b, "Times are wall seconds; medians with min–max. A process's own peak RSS is its VmHWM polled every 5 ms; wait4's peak is the largest of it and each child it reaped; CPU is /proc/PID/stat's, read from the zombie before it is reaped (own, and reaped children's).\n\n")
}

func (rep *streamReport) write() error {
	var b bytes.Buffer
	rep.header(&b)
	for _, size := range rep.cfg.sizes {
		if len(rep.runs[size]) > 0 {
			rep.writeSize(&b, size, rep.runs[size])
		}
	}
	section := streamBegin + "\n\n" + b.String() + streamEnd + "\n"
	if rep.cfg.out == "-" {
		_, err := os.Stdout.WriteString(section)
		return err
	}
	old, err := os.ReadFile(rep.cfg.out)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	tmp := rep.cfg.out + ".tmp"
	if err := os.WriteFile(tmp, spliceSection(old, section), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, rep.cfg.out)
}

// spliceSection returns old with its streaming section replaced by
// section, or with section added after keptMarker (added if missing).
func spliceSection(old []byte, section string) []byte {
	s := string(old)
	if i := strings.Index(s, streamBegin); i >= 0 {
		if j := strings.Index(s[i:], streamEnd); j >= 0 {
			rest := strings.TrimPrefix(s[i+j+len(streamEnd):], "\n")
			return []byte(s[:i] + section + rest)
		}
	}
	if !strings.Contains(s, keptMarker) {
		s = strings.TrimRight(s, "\n") + "\n\n" + keptMarker + "\n"
	}
	return []byte(strings.TrimRight(s, "\n") + "\n\n" + section)
}

func (rep *streamReport) writeSize(b *bytes.Buffer, size int, rs []streamRun) {
	fmt.Fprintf(b, "### %d MiB (%d runs)\n\n", size, len(rs))
	if s, ok := statOf(rs, func(r streamRun) float64 { return float64(r.Size) }); ok {
		im, _ := statOf(rs, func(r streamRun) float64 { return float64(r.Images) })
		fmt.Fprintf(b, "Images %.0f MB (bare dump), streamed archive %.0f MB (medians).\n\n", im.med/1e6, s.med/1e6)
	}
	rep.ratios(b, rs)
	fmt.Fprintf(b, "| measure | median | min–max | each run |\n|---|---|---|---|\n")
	row := func(m metric, unit string) {
		s, ok := statOf(rs, m.f)
		if !ok {
			fmt.Fprintf(b, "| %s | — | | |\n", m.name)
			return
		}
		each := make([]string, len(s.all))
		for i, v := range s.all {
			each[i] = fmt.Sprintf(unit, v)
		}
		fmt.Fprintf(b, "| %s | "+unit+" | "+unit+"–"+unit+" | %s |\n", m.name, s.med, s.lo, s.hi, strings.Join(each, ", "))
	}
	for _, m := range rep.timeMetrics() {
		row(m, "%.2f")
	}
	fmt.Fprintf(b, "\nPeak RSS (MiB):\n\n| measure | median | min–max | each run |\n|---|---|---|---|\n")
	for _, m := range memMetrics() {
		row(m, "%.0f")
	}
	fmt.Fprintf(b, "\nWhere the CPU goes (s, medians): own user / sys, reaped children's user / sys.\n\n| command | own user | own sys | children user | children sys | wall |\n|---|---|---|---|---|---|\n")
	for _, c := range cpuRows() {
		med := func(f func(usage) time.Duration) string {
			s, ok := statOf(rs, func(r streamRun) float64 { return secs(f(c.u(r))) })
			if !ok {
				return "0"
			}
			return fmt.Sprintf("%.2f", s.med)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", c.name, med(func(u usage) time.Duration { return u.User }), med(func(u usage) time.Duration { return u.Sys }),
			med(func(u usage) time.Duration { return u.CUser }), med(func(u usage) time.Duration { return u.CSys }), med(func(u usage) time.Duration { return u.Wall }))
	}
	fmt.Fprintf(b, "\nRaw runs:\n\n")
	for i, r := range rs {
		fmt.Fprintf(b, "- run %d: %s", i+1, r.summary())
		if r.ExportPhases != "" {
			fmt.Fprintf(b, "; streamed export phases: %s", r.ExportPhases)
		}
		if r.ImportPhases != "" {
			fmt.Fprintf(b, "; import phases: %s", r.ImportPhases)
		}
		fmt.Fprintln(b)
	}
	fmt.Fprintln(b)
}

// ratios writes the done-when ratios from the medians.
func (rep *streamReport) ratios(b *bytes.Buffer, rs []streamRun) {
	med := func(f func(streamRun) float64) float64 {
		s, _ := statOf(rs, f)
		return s.med
	}
	dump, zst := med(func(r streamRun) float64 { return secs(r.Dump.Wall) }), med(func(r streamRun) float64 { return secs(r.ZstdTime) })
	floor := max(dump, zst)
	restore := med(func(r streamRun) float64 { return secs(r.Restore.Wall) })
	freeze := med(func(r streamRun) float64 { return secs(r.Freeze) })
	verdict := func(v, target float64) string {
		switch {
		case v == 0 || target == 0:
			return "not measured"
		case v <= target:
			return "met"
		}
		return "**not met**"
	}
	ratio := func(a, c float64) float64 {
		if a == 0 || c == 0 {
			return 0
		}
		return a / c
	}
	fmt.Fprintf(b, "| done-when ratio (medians) | value | target | |\n|---|---|---|---|\n")
	line := func(name string, v, target float64) {
		t, vd := "—", ""
		if target > 0 {
			t, vd = fmt.Sprintf("≤ %.2f", target), verdict(v, target)
		}
		val := "—"
		if v > 0 {
			val = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, val, t, vd)
	}
	line("streamed export / max(bare dump, fastest zstd)", ratio(med(func(r streamRun) float64 { return secs(r.Streamed.Wall) }), floor), 1.25)
	line("staged export / max(bare dump, fastest zstd)", ratio(med(func(r streamRun) float64 { return secs(r.Staged.Wall) }), floor), 0)
	line("`-c none` streamed export / bare dump", ratio(med(func(r streamRun) float64 { return secs(r.None.Wall) }), dump), 0)
	line("import / bare restore", ratio(med(func(r streamRun) float64 { return secs(r.Import.Wall) }), restore), 1.25)
	line("container stopped, streamed / bare freeze", ratio(med(func(r streamRun) float64 { return secs(r.StoppedStreamed) }), freeze), 1.1)
	line("container stopped, staged / bare freeze", ratio(med(func(r streamRun) float64 { return secs(r.StoppedStaged) }), freeze), 0)
	parts := rep.parts
	line("piped migration / the sum of its parts", ratio(med(func(r streamRun) float64 { return secs(r.PipeTotal) }), med(parts)), 0)
	peak := func(f func(streamRun) int64) float64 {
		var m int64
		for _, r := range rs {
			m = max(m, f(r))
		}
		return mib(m)
	}
	fmt.Fprintf(b, "| ckpt's own peak RSS, streamed export (MiB, max of runs) | %.0f | ≤ 256 | %s |\n", peak(func(r streamRun) int64 { return r.Streamed.HWM }), verdict(peak(func(r streamRun) int64 { return r.Streamed.HWM }), 256))
	fmt.Fprintf(b, "| ckpt's own peak RSS, import (MiB, max of runs) | %.0f | ≤ 256 | %s |\n\n", peak(func(r streamRun) int64 { return r.Import.HWM }), verdict(peak(func(r streamRun) int64 { return r.Import.HWM }), 256))
}

// commit is the checked-out commit, "+dirty" when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

// loadAvg is /proc/loadavg's three load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
