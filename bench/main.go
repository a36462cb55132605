// Command bench measures ckpt against podman 5 (with runc) on the same
// workload, side by side in one run, and against the floors: a bare
// `criu dump` to tmpfs and the compressor's throughput on the same images.
//
// Usage (as root, after `make deps` and `make build workloads`; podman is
// optional — `bash scripts/deps.sh --podman` installs it):
//
//	go run ./bench [-sizes 256,1024] [-runs 5] [-out bench/RESULTS.md]
//	go run ./bench -precopy 256:1,256:2,1024:1 [-runs 3] [-out bench/PRECOPY.md]
//	go run ./bench -streaming [-sizes 256,1024,4096] [-runs 5] [-rate 1000] [-pipe file|stdin|confirm] [-import-stdin]
//
// For each ballast size (MiB; the workload's ballast is half pseudo-random,
// half repetitive text) and each run, alternating which engine goes first,
// it runs testdata/workloads' counter, waits until the ballast is touched,
// and measures:
//
//   - checkpoint --export wall time (default zstd compression), the CRIU
//     frozen time from --print-stats, the archive size, and the peak RSS of
//     the engine's CLI process;
//   - restore --import wall time and peak RSS.
//
// It writes a Markdown report with the raw figures, medians, ratios
// ckpt/podman, the machine and the versions. It is not a test: timings are
// noisy, which is why every figure is kept and runs alternate.
//
// With -precopy it measures pre-copy chains of ckpt alone instead (see
// precopy.go): archive sizes of the pre-checkpoints, the final
// --with-previous checkpoint and a full checkpoint taken right after it,
// their frozen times, and the restore of the chain, into bench/PRECOPY.md.
//
// With -streaming it measures issue #20's streamed export and import
// against the floors measured in the same runs, the piped migration and
// ckpt's own peak RSS (see streaming.go), into a section of RESULTS.md
// that `make bench` keeps.
//
// bench/show.sh times `ckptinspect show` next to checkpointctl's on podman
// archives; its figures live in RESULTS.md after keptMarker, which the
// report keeps when it rewrites the file.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/format"
	"github.com/klauspost/compress/zstd"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	if len(os.Args) == 4 && os.Args[1] == formatSizeArg {
		// The child that writes the floor's images in ckpt's format.
		n, err := formatSize(os.Args[2], os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n)
		return
	}
	if len(os.Args) == 3 && os.Args[1] == zstdFloorArg {
		// The child that compresses the floor's images (streaming.go).
		if err := zstdFloor(os.Args[2]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == throttleArg {
		// The link of the one-command migration (streaming.go).
		if err := throttleChild(os.Args[2]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == warmMemoryArg {
		// The child that warms the memory (memory.go).
		n, err := strconv.ParseInt(os.Args[2], 10, 64)
		if err == nil {
			err = warmMemory(n)
		}
		if err != nil {
			log.Fatal(err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

type config struct {
	sizes  []int
	runs   int
	ckpt   string
	podman bool
	out    string
	work   string
	shm    string
	// precopy is -precopy's SIZE:DEPTH list; empty runs the comparison
	// with podman.
	precopy string
	// memory says how the guest's memory was prepared (memory.go).
	memory string
	// streaming is -streaming: the #20 measurements (streaming.go)
	// instead of the comparison with podman.
	streaming bool
	stream    streamConfig
}

func run(ctx context.Context, args []string) error {
	cfg, cases, err := parseConfig(args)
	if err != nil {
		return err
	}
	if err := checkSetup(&cfg); err != nil {
		return err
	}
	if err := prepareMemory(ctx, &cfg); err != nil {
		return err
	}
	os.RemoveAll(cfg.work)
	os.RemoveAll(cfg.shm)
	if err := os.MkdirAll(cfg.work, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(cfg.shm)
	if len(cases) > 0 {
		return runPrecopy(ctx, cfg, cases)
	}
	if cfg.streaming {
		return runStreaming(ctx, cfg, cfg.stream)
	}
	return compare(ctx, cfg)
}

// parseConfig parses the command line: the configuration, and the
// pre-copy cases to measure (none without -precopy).
func parseConfig(args []string) (config, []precopyCase, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	sizes := fs.String("sizes", "256,1024", "ballast sizes in MiB, comma-separated")
	runs := fs.Int("runs", 5, "runs per engine and size")
	ckpt := fs.String("ckpt", "bin/ckpt", "ckpt binary")
	noPodman := fs.Bool("no-podman", false, "do not run podman even if it is installed")
	out := fs.String("out", "bench/RESULTS.md", "report file (\"-\" for stdout)")
	work := fs.String("work", "/var/tmp/ckpt-bench", "scratch directory for archives and engine state (on disk, as users export); the floors use /dev/shm/ and its last element")
	precopy := fs.String("precopy", "", "measure pre-copy chains of ckpt alone instead: `SIZE:DEPTH,…` (MiB of ballast : number of pre-checkpoints), report in bench/PRECOPY.md unless -out")
	streaming := fs.Bool("streaming", false, "measure issue #20's streaming instead: streamed and staged export, import, a throttled piped migration and ckpt's peak RSS against bare criu dump/restore and the fastest zstd, a section of -out")
	rate := fs.Float64("rate", 1000, "with -streaming: the piped migration's link speed in Mbit/s")
	pipe := fs.String("pipe", pipeFile, "with -streaming: the piped migration's form: file (`checkpoint -e -` into a file, then `restore -i FILE`), stdin (`checkpoint -e - | restore -i -`) or confirm (one `checkpoint -e - --confirm-cmd '… | restore -i -'`)")
	importStdin := fs.Bool("import-stdin", false, "with -streaming: the import reads the streamed archive from stdin (`restore -i - < FILE`, the one-pass import) instead of `restore -i FILE`")
	none := fs.Bool("none", true, "with -streaming: also a streamed export with -c none (to /dev/null)")
	if err := fs.Parse(args); err != nil {
		return config{}, nil, err
	}
	cfg := config{runs: *runs, out: *out, work: *work, shm: filepath.Join("/dev/shm", filepath.Base(*work)), precopy: *precopy,
		ckpt: *ckpt, podman: !*noPodman && !*streaming, streaming: *streaming,
		stream: streamConfig{rateMbit: *rate, pipe: *pipe, importStdin: *importStdin, none: *none}}
	if *pipe != pipeFile && *pipe != pipeStdin && *pipe != pipeConfirm {
		return config{}, nil, fmt.Errorf("bad -pipe %q: want file, stdin or confirm", *pipe)
	}
	if *rate <= 0 {
		return config{}, nil, fmt.Errorf("bad -rate %v: want Mbit/s above 0", *rate)
	}
	var cases []precopyCase
	if cfg.precopy != "" {
		var err error
		if cases, err = parsePrecopy(cfg.precopy); err != nil {
			return config{}, nil, err
		}
		outSet := false
		fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
		if !outSet {
			cfg.out = "bench/PRECOPY.md"
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return config{}, nil, fmt.Errorf("bad -sizes entry %q", s)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	return cfg, cases, nil
}

// checkSetup checks that the bench can run (root, the ckpt binary, the
// workloads), makes cfg.ckpt absolute and leaves cfg.podman set only if
// podman is installed.
func checkSetup(cfg *config) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (CRIU and runc need it)")
	}
	var err error
	if cfg.ckpt, err = filepath.Abs(cfg.ckpt); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.ckpt); err != nil {
		return fmt.Errorf("ckpt binary: %w (run `make build`)", err)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		cfg.podman = false
	}
	for _, f := range []string{"testdata/workloads/bin/rootfs.tar"} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w (run `make workloads` from the repository root)", err)
		}
	}
	return nil
}

// prepareMemory warms the memory the runs will use and says in
// cfg.memory how the machine's memory was.
func prepareMemory(ctx context.Context, cfg *config) error {
	note := pageReportingNote()
	n := int64(4*slices.Max(cfg.sizes)+2048) << 20
	if avail := memAvailable(); avail > 0 {
		n = min(n, avail/2)
	}
	// In a child: an exec'd child's peak RSS starts from that of
	// the process it was forked from.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	t := time.Now()
	if out, err := exec.CommandContext(ctx, self, warmMemoryArg, strconv.FormatInt(n, 10)).CombinedOutput(); err != nil {
		return fmt.Errorf("warm memory: %w: %s", err, out)
	}
	cfg.memory = fmt.Sprintf("%s; %d MiB touched and freed first (%.1f s)", note, n>>20, time.Since(t).Seconds())
	log.Print(cfg.memory)
	return nil
}

// compare measures ckpt and podman (if cfg.podman) side by side, runs
// alternating which goes first, with the floors in every run, and writes
// the report.
func compare(ctx context.Context, cfg config) error {
	engines := []engine{newCkpt(cfg)}
	if cfg.podman {
		engines = append(engines, newPodman(cfg))
	}
	for _, e := range engines {
		if err := e.setup(ctx); err != nil {
			return fmt.Errorf("set up %s: %w", e.name(), err)
		}
		defer e.teardown()
	}

	rep := &report{started: time.Now(), cfg: cfg}
	for _, size := range cfg.sizes {
		var fs []floor
		for i := range cfg.runs {
			order := engines
			if i%2 == 1 {
				order = slices.Clone(engines)
				slices.Reverse(order)
			}
			for _, e := range order {
				r := measure(ctx, e, cfg.work, size, i)
				log.Printf("%s %d MiB run %d: %s", e.name(), size, i+1, r)
				rep.add(size, e.name(), r)
			}
			// The floor in every run too, under the same conditions
			// (this VM's memory is slower for a while at times).
			f, err := floors(ctx, cfg, size)
			if err != nil {
				log.Printf("floors %d MiB: %v", size, err)
			} else {
				log.Printf("floor %d MiB run %d: bare criu dump %.2fs (frozen %.2fs), tar+zstd %.2fs", size, i+1, f.Dump.Seconds(), f.Frozen.Seconds(), f.Compress.Seconds())
			}
			fs = append(fs, f)
		}
		rep.floors = append(rep.floors, medianFloor(fs))
	}
	return rep.write()
}

// result is one checkpoint+restore round of one engine.
type result struct {
	Export, Import time.Duration
	Frozen         time.Duration // CRIU's frozen_time
	// Stopped is how long the container was kept from running: ckpt's
	// ckpt_frozen_time (from its freeze until it thawed or stopped the
	// container); for podman, whose CRIU freezes and kills the container,
	// CRIU's frozen time.
	Stopped   time.Duration
	Size      int64
	ExportRSS int64 // KiB
	ImportRSS int64 // KiB
	// ExportPhases and ImportPhases are ckpt's ckpt_phases from
	// --print-stats (each phase's name and seconds); podman has none.
	ExportPhases, ImportPhases string
	Err                        string
}

func (r result) String() string {
	if r.Err != "" {
		return "error: " + r.Err
	}
	s := fmt.Sprintf("export %.2fs (CRIU frozen %.2fs, container stopped %.2fs, %s, RSS %d MiB), import %.2fs (RSS %d MiB)",
		r.Export.Seconds(), r.Frozen.Seconds(), r.Stopped.Seconds(), mb(r.Size), r.ExportRSS>>10, r.Import.Seconds(), r.ImportRSS>>10)
	if r.ExportPhases != "" {
		s += "; export phases: " + r.ExportPhases
	}
	if r.ImportPhases != "" {
		s += "; import phases: " + r.ImportPhases
	}
	return s
}

// phases returns ckpt's ckpt_phases from --print-stats output, each
// phase's name and seconds, comma-separated; "" if there are none (podman).
func phases(out []byte) string {
	var s struct {
		Containers []struct {
			Phases []struct {
				Name string `json:"name"`
				US   int64  `json:"us"`
			} `json:"ckpt_phases"`
		} `json:"container_statistics"`
	}
	i := bytes.IndexByte(out, '{')
	if i < 0 || json.Unmarshal(out[i:], &s) != nil || len(s.Containers) == 0 {
		return ""
	}
	var parts []string
	for _, p := range s.Containers[0].Phases {
		parts = append(parts, fmt.Sprintf("%s %.2fs", p.Name, float64(p.US)/1e6))
	}
	return strings.Join(parts, ", ")
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// engine is ckpt or podman behind podman's command-line interface.
type engine interface {
	name() string
	setup(ctx context.Context) error
	teardown()
	cmd(args ...string) []string
	image() string
}

func measure(ctx context.Context, e engine, work string, sizeMiB, i int) (r result) {
	name := fmt.Sprintf("bench-%d-%d", sizeMiB, i)
	archive := filepath.Join(work, name+"."+e.name()+".tar.zst")
	defer os.Remove(archive)
	defer func() { rm := e.cmd("rm", "-f", name); exec.Command(rm[0], rm[1:]...).Run() }()
	fail := func(format string, args ...any) result {
		r.Err = fmt.Sprintf(format, args...)
		return r
	}
	if _, _, err := runCmd(ctx, e.cmd("run", "-d", "--name", name, "--network", "none", e.image(),
		"/bin/counter", "-ballast-mb", strconv.Itoa(sizeMiB), "-file", "/tmp/counter")); err != nil {
		return fail("run: %v", err)
	}
	if err := waitLog(ctx, e, name, "ballast "); err != nil {
		return fail("%v", err)
	}
	settle()
	out, st, err := runCmd(ctx, e.cmd("container", "checkpoint", "--print-stats", "-e", archive, name))
	if err != nil {
		return fail("checkpoint: %v", err)
	}
	r.Export, r.ExportRSS = st.wall, st.maxRSS
	r.Frozen, r.Stopped = frozenTime(out)
	r.ExportPhases = phases(out)
	fi, err := os.Stat(archive)
	if err != nil {
		return fail("archive: %v", err)
	}
	r.Size = fi.Size()
	if _, _, err := runCmd(ctx, e.cmd("rm", "-f", name)); err != nil {
		return fail("rm: %v", err)
	}
	settle()
	out, st, err = runCmd(ctx, e.cmd("container", "restore", "--print-stats", "-i", archive))
	if err != nil {
		return fail("restore: %v", err)
	}
	r.Import, r.ImportRSS = st.wall, st.maxRSS
	r.ImportPhases = phases(out)
	return r
}

// settle writes back what earlier commands left dirty in the page cache
// before a measured one starts, so that none shares the disk with
// another's leftovers: podman's archive, written through the page cache
// without a sync, would otherwise reach the disk up to 30 s later
// (vm.dirty_expire_centisecs), during whatever runs then, and slow it.
func settle() { syscall.Sync() }

// frozenTime reads CRIU's frozen time from podman-shaped --print-stats,
// and how long the container was kept from running: ckpt's
// ckpt_frozen_time where there is one, else CRIU's.
func frozenTime(out []byte) (criu, stopped time.Duration) {
	var s struct {
		Containers []struct {
			CRIU struct {
				FrozenTime int64 `json:"frozen_time"`
			} `json:"criu_statistics"`
			Frozen int64 `json:"ckpt_frozen_time"`
		} `json:"container_statistics"`
	}
	i := bytes.IndexByte(out, '{')
	if i < 0 || json.Unmarshal(out[i:], &s) != nil || len(s.Containers) == 0 {
		return 0, 0
	}
	c := s.Containers[0]
	criu = time.Duration(c.CRIU.FrozenTime) * time.Microsecond
	if c.Frozen > 0 {
		return criu, time.Duration(c.Frozen) * time.Microsecond
	}
	return criu, criu
}

func waitLog(ctx context.Context, e engine, name, want string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		out, _, _ := runCmd(ctx, e.cmd("logs", name))
		if bytes.Contains(out, []byte(want)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("workload %s did not print %q", name, want)
}

type procStats struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

// runCmd runs argv and returns its combined output, wall time and peak RSS.
func runCmd(ctx context.Context, argv []string) ([]byte, procStats, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	t0 := time.Now()
	err := c.Run()
	st := procStats{wall: time.Since(t0)}
	if c.ProcessState == nil {
		return buf.Bytes(), st, err
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		st.maxRSS = ru.Maxrss
	}
	if err != nil {
		return buf.Bytes(), st, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tail(buf.String(), 400))
	}
	return buf.Bytes(), st, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type ckptEngine struct{ cfg config }

func newCkpt(cfg config) *ckptEngine { return &ckptEngine{cfg: cfg} }

func (e *ckptEngine) name() string  { return "ckpt" }
func (e *ckptEngine) image() string { return "bench-counter" }
func (e *ckptEngine) cmd(args ...string) []string {
	// podman's "container checkpoint/restore" is ckpt's "checkpoint/restore".
	if len(args) > 1 && args[0] == "container" {
		args = args[1:]
	}
	return append([]string{e.cfg.ckpt, "--root", filepath.Join(e.cfg.work, "ckpt-root")}, args...)
}

func (e *ckptEngine) setup(ctx context.Context) error {
	_, _, err := runCmd(ctx, e.cmd("image", "import", "testdata/workloads/bin/rootfs.tar", e.image()))
	return err
}

func (e *ckptEngine) teardown() {
	rm := e.cmd("rm", "-f", "-a")
	exec.Command(rm[0], rm[1:]...).Run()
}

type podmanEngine struct{ cfg config }

func newPodman(cfg config) *podmanEngine { return &podmanEngine{cfg: cfg} }

func (e *podmanEngine) name() string  { return "podman" }
func (e *podmanEngine) image() string { return "localhost/ckpt-counter:mkpodman" }
func (e *podmanEngine) cmd(args ...string) []string {
	a := []string{"podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"}
	return append(a, args...)
}

func (e *podmanEngine) setup(ctx context.Context) error {
	// The same rootfs, loaded under a fixed image ID (scripts/mkpodman.sh).
	_, _, err := runCmd(ctx, []string{"bash", "scripts/mkpodman.sh", "image"})
	return err
}

func (e *podmanEngine) teardown() {}

// floor is what CRIU and the compressor alone need for one size.
type floor struct {
	SizeMiB     int
	Dump        time.Duration // bare criu dump to tmpfs (wall)
	Frozen      time.Duration
	ImagesBytes int64
	Compress    time.Duration // tar + zstd (default level, all cores) of the images
	Compressed  int64
	// Format is the size of the same images in ckpt's format (its
	// writer, zstd, what an export writes of them).
	Format int64
	// Runs are the frozen times of every run (medianFloor), Sizes the
	// sizes of every run's images: Compressed and Format.
	Runs  []time.Duration
	Sizes [][2]int64
	Err   string
}

// medianFloor returns the floor whose values are the medians of fs's
// (those without an error), with every run's frozen time in Runs.
func medianFloor(fs []floor) floor {
	var ok []floor
	for _, f := range fs {
		if f.Err == "" {
			ok = append(ok, f)
		}
	}
	if len(ok) == 0 {
		if len(fs) > 0 {
			return fs[len(fs)-1]
		}
		return floor{Err: "no floor measured"}
	}
	med := func(v func(floor) time.Duration) time.Duration {
		xs := make([]time.Duration, len(ok))
		for i, f := range ok {
			xs[i] = v(f)
		}
		return middle(xs)
	}
	m := ok[len(ok)-1]
	m.Dump = med(func(f floor) time.Duration { return f.Dump })
	m.Frozen = med(func(f floor) time.Duration { return f.Frozen })
	m.Compress = med(func(f floor) time.Duration { return f.Compress })
	m.Runs, m.Sizes = nil, nil
	for _, f := range ok {
		m.Runs = append(m.Runs, f.Frozen)
		m.Sizes = append(m.Sizes, [2]int64{f.Compressed, f.Format})
	}
	return m
}

// floors dumps the workload with bare CRIU to tmpfs and compresses the
// images as ckpt's writer does.
func floors(ctx context.Context, cfg config, sizeMiB int) (f floor, err error) {
	f.SizeMiB = sizeMiB
	defer func() {
		if err != nil {
			f.Err = err.Error()
		}
	}()
	dir := filepath.Join(cfg.shm, fmt.Sprintf("floor-%d", sizeMiB))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	counter, _ := filepath.Abs("testdata/workloads/bin/counter")
	// Its own PID namespace, so the dump is of a fresh tree; stdio to
	// /dev/null inside a new session, as CRIU needs for a plain process.
	c := exec.CommandContext(ctx, "unshare", "--pid", "--fork", "setsid", counter, "-ballast-mb", strconv.Itoa(sizeMiB), "-file", "")
	var out bytes.Buffer
	c.Stdout = &out
	if err := c.Start(); err != nil {
		return f, err
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	deadline := time.Now().Add(5 * time.Minute)
	for !bytes.Contains(out.Bytes(), []byte("ballast ")) {
		if time.Now().After(deadline) {
			return f, errors.New("workload did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pid, err := childPID(c.Process.Pid)
	if err != nil {
		return f, err
	}
	settle()
	_, st, err := runCmd(ctx, []string{"criu", "dump", "-t", strconv.Itoa(pid), "-D", dir, "--shell-job", "-o", "dump.log"})
	if err != nil {
		return f, err
	}
	f.Dump = st.wall
	f.Frozen = criuFrozen(dir)
	t0 := time.Now()
	n, in, err := tarZstd(dir, zstd.SpeedDefault)
	if err != nil {
		return f, err
	}
	f.Compress, f.Compressed, f.ImagesBytes = time.Since(t0), n, in
	// In a child, as the warming (memory.go): the writer's buffers would
	// raise the peak RSS the engines' processes start from.
	self, err := os.Executable()
	if err != nil {
		return f, err
	}
	size, err := exec.CommandContext(ctx, self, formatSizeArg, dir, cfg.work).Output()
	if err != nil {
		return f, fmt.Errorf("write the images in ckpt's format: %w", err)
	}
	if f.Format, err = strconv.ParseInt(strings.TrimSpace(string(size)), 10, 64); err != nil {
		return f, err
	}
	return f, nil
}

// childPID returns the one child of pid (unshare's forked child).
func childPID(pid int) (int, error) {
	for range 50 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no child of %d", pid)
}

// criuFrozen returns the frozen time CRIU recorded in the images' stats-dump.
func criuFrozen(dir string) time.Duration {
	st, err := crit.GetDumpStats(dir)
	if err != nil {
		return 0
	}
	return time.Duration(st.GetFrozenTime()) * time.Microsecond
}

// tarZstd writes dir as a tar compressed by zstd at level, on all cores,
// to nowhere and returns the compressed and input sizes.
func tarZstd(dir string, level zstd.EncoderLevel) (compressed, input int64, err error) {
	cw := &countWriter{}
	enc, err := zstd.NewWriter(cw, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderLevel(level))
	if err != nil {
		return 0, 0, err
	}
	tw := tar.NewWriter(enc)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: d.Name(), Size: fi.Size(), Mode: 0o600}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		input += n
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = enc.Close()
	}
	return cw.n, input, err
}

// formatSizeArg makes the bench a child that runs formatSize.
const formatSizeArg = "-format-size-child"

// formatSize writes the images of dir as ckpt's writer does (a file
// in work, removed after) and returns the archive's size.
func formatSize(dir, work string) (int64, error) {
	f, err := os.CreateTemp(work, "floor-*.tar.zst")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	w := format.NewFileWriter(f, format.Manifest{Engine: format.Engine{Name: "bench"}, Container: format.Container{Name: "floor", ID: "floor"}}, nil)
	if err := w.AddDir(format.CheckpointDir, dir); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
