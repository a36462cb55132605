package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Streaming mode (-streaming, issue #20): ckpt's streamed export, staged
// export and import against the floors, measured in the same run, runs
// alternating which goes first. Per size and run:
//
//   - floors: the counter started by hand in its own PID namespace, a
//     bare `criu dump` of it to tmpfs (its wall time and CRIU's frozen
//     time), zstd at its fastest level on all cores over a tar of those
//     images read from tmpfs (klauspost/compress, in a child so that its
//     CPU is its own), and a bare `criu restore -d` from tmpfs;
//   - ckpt: a streamed export (`checkpoint -e -`, into a file on disk), its
//     import (`restore -i FILE`, or `restore -i - < FILE` with
//     -import-stdin), a staged export (`checkpoint -e FILE`), a
//     streamed export with `-c none` (to /dev/null), and a piped migration:
//     `checkpoint -e -` through a copier throttled to -rate into a file
//     imported once it is whole (-pipe file), into `restore -i -` (-pipe
//     stdin), or as one command with --confirm-cmd (-pipe confirm).
//
// Each ckpt command's wall time, own and children's CPU, own peak RSS and
// wait4's peak (CRIU's when larger) are kept (proc.go). The report is a
// section of bench/RESULTS.md between streamBegin and streamEnd.

// streamRun is one run of one size.
type streamRun struct {
	// The floors.
	Dump, Zstd, Restore usage
	Freeze              time.Duration // CRIU's frozen_time of the bare dump
	Images, Compressed  int64
	ZstdTime            time.Duration // measured inside the child
	// ckpt.
	Streamed, Staged, None, Import usage
	// Stopped is ckpt_frozen_time: how long the container could not run.
	StoppedStreamed, StoppedStaged, StoppedNone time.Duration
	FrozenStreamed                              time.Duration // CRIU's frozen_time
	Size                                        int64         // the streamed archive
	ExportPhases, ImportPhases                  string
	// The piped migration.
	PipeExport, PipeImport usage
	PipeTotal              time.Duration
	PipeBytes              int64
	Errs                   []string
}

func (r *streamRun) fail(what string, err error) {
	r.Errs = append(r.Errs, what+": "+err.Error())
	log.Printf("%s: %v", what, err)
}

// streamConfig is -streaming's own flags.
type streamConfig struct {
	rateMbit    float64
	pipe        string // pipeFile, pipeStdin or pipeConfirm
	importStdin bool   // the import reads the archive from stdin
	none        bool
}

// runStreaming measures every size cfg.runs times and writes the report.
func runStreaming(ctx context.Context, cfg config, sc streamConfig) error {
	e := newCkpt(cfg)
	if err := e.setup(ctx); err != nil {
		return fmt.Errorf("set up ckpt: %w", err)
	}
	defer e.teardown()
	rep := &streamReport{cfg: cfg, sc: sc, started: time.Now(), commit: commit(), load0: loadAvg(), runs: map[int][]streamRun{}}
	for _, size := range cfg.sizes {
		for i := range cfg.runs {
			var r streamRun
			steps := []func(){
				func() { streamFloors(ctx, cfg, size, &r) },
				func() { streamCkpt(ctx, e, sc, size, i, &r) },
			}
			if i%2 == 1 {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, s := range steps {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s()
			}
			log.Printf("%d MiB run %d: %s", size, i+1, r.summary())
			rep.runs[size] = append(rep.runs[size], r)
			// After every run: a bench stopped half-way leaves what it
			// measured.
			rep.load1 = loadAvg()
			if err := rep.write(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r streamRun) summary() string {
	s := fmt.Sprintf("dump %.2fs (freeze %.2fs), zstd %.2fs, restore %.2fs; streamed %.2fs (stopped %.2fs, RSS %d MiB), staged %.2fs (stopped %.2fs), none %.2fs, import %.2fs (RSS %d MiB), piped %.2fs",
		r.Dump.Wall.Seconds(), r.Freeze.Seconds(), r.ZstdTime.Seconds(), r.Restore.Wall.Seconds(),
		r.Streamed.Wall.Seconds(), r.StoppedStreamed.Seconds(), r.Streamed.HWM>>10, r.Staged.Wall.Seconds(), r.StoppedStaged.Seconds(),
		r.None.Wall.Seconds(), r.Import.Wall.Seconds(), r.Import.HWM>>10, r.PipeTotal.Seconds())
	if len(r.Errs) > 0 {
		s += "; errors: " + strings.Join(r.Errs, "; ")
	}
	return s
}

// startCounter runs the workload as container name and waits until its
// ballast is touched.
func startCounter(ctx context.Context, e engine, name string, sizeMiB int) error {
	if _, _, err := runCmd(ctx, e.cmd("run", "-d", "--name", name, "--network", "none", e.image(),
		"/bin/counter", "-ballast-mb", strconv.Itoa(sizeMiB), "-file", "/tmp/counter")); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return waitLog(ctx, e, name, "ballast ")
}

// removeContainer removes name, whatever its state.
func removeContainer(e engine, name string) {
	rm := e.cmd("rm", "-f", name)
	exec.Command(rm[0], rm[1:]...).Run()
}

// streamCkpt measures ckpt's streamed export, its import, a staged
// export, a -c none streamed export and the piped migration, each of a
// fresh container.
func streamCkpt(ctx context.Context, e *ckptEngine, sc streamConfig, sizeMiB, i int, r *streamRun) {
	name := fmt.Sprintf("stream-%d-%d", sizeMiB, i)
	archive := filepath.Join(e.cfg.work, name+".tar.zst")
	defer os.Remove(archive)
	if err := streamedExport(ctx, e, name, sizeMiB, archive, nil, r); err != nil {
		r.fail("streamed export", err)
	} else {
		// The exported container's record (exited) holds its name.
		removeContainer(e, name)
		settle()
		var out bytes.Buffer
		u, err := importArchive(ctx, e, sc, archive, &out)
		if err != nil {
			r.fail("import", err)
		}
		r.Import, r.ImportPhases = u, phases(out.Bytes())
	}
	removeContainer(e, name)
	os.Remove(archive)

	staged := name + "-staged"
	if err := startCounter(ctx, e, staged, sizeMiB); err != nil {
		r.fail("staged export", err)
	} else {
		settle()
		file := filepath.Join(e.cfg.work, staged+".tar.zst")
		var out bytes.Buffer
		u, _, err := runMeasured(ctx, e.cmd("checkpoint", "--print-stats", "-e", file, staged), cmdIO{Stdout: &out})
		os.Remove(file)
		if err != nil {
			r.fail("staged export", err)
		}
		r.Staged = u
		_, r.StoppedStaged = frozenTime(out.Bytes())
	}
	removeContainer(e, staged)

	if sc.none {
		none := name + "-none"
		var nr streamRun
		if err := streamedExport(ctx, e, none, sizeMiB, os.DevNull, []string{"-c", "none"}, &nr); err != nil {
			r.fail("-c none export", err)
		}
		r.None, r.StoppedNone = nr.Streamed, nr.StoppedStreamed
		removeContainer(e, none)
	}

	if err := pipedMigration(ctx, e, sc, name+"-piped", sizeMiB, r); err != nil {
		r.fail("piped migration", err)
	}
	removeContainer(e, name+"-piped")
}

// importArchive runs `restore --print-stats -i FILE`, or with
// -import-stdin `restore --print-stats -i -` reading the file.
func importArchive(ctx context.Context, e *ckptEngine, sc streamConfig, archive string, out io.Writer) (usage, error) {
	if !sc.importStdin {
		u, _, err := runMeasured(ctx, e.cmd("restore", "--print-stats", "-i", archive), cmdIO{Stdout: out})
		return u, err
	}
	f, err := os.Open(archive)
	if err != nil {
		return usage{}, err
	}
	defer f.Close()
	u, _, err := runMeasured(ctx, e.cmd("restore", "--print-stats", "-i", "-"), cmdIO{Stdin: f, Stdout: out})
	return u, err
}

// streamedExport starts the workload as name and exports it with
// `checkpoint -e -` (and extra flags) into the file at path.
func streamedExport(ctx context.Context, e *ckptEngine, name string, sizeMiB int, path string, extra []string, r *streamRun) error {
	if err := startCounter(ctx, e, name, sizeMiB); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	settle()
	args := append([]string{"checkpoint", "--print-stats"}, extra...)
	u, errOut, err := runMeasured(ctx, e.cmd(append(args, "-e", "-", name)...), cmdIO{Stdout: f})
	r.Streamed = u
	r.FrozenStreamed, r.StoppedStreamed = frozenTime(errOut)
	r.ExportPhases = phases(errOut)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil {
		r.Size = fi.Size()
	}
	return nil
}

// The piped migration's forms (-pipe).
const (
	// pipeFile: `checkpoint -e -` | copier > FILE, then `restore -i FILE`.
	pipeFile = "file"
	// pipeStdin: `checkpoint -e -` | copier | `restore -i -`.
	pipeStdin = "stdin"
	// pipeConfirm: one command, `checkpoint -e - --confirm-cmd
	// 'COPIER | ckpt restore -i -'`: the source stops once the target
	// restored.
	pipeConfirm = "confirm"
)

// pipedMigration exports a fresh container with `checkpoint -e -` through
// a copier throttled to sc.rateMbit and imports what arrives, in the
// form sc.pipe says.
func pipedMigration(ctx context.Context, e *ckptEngine, sc streamConfig, name string, sizeMiB int, r *streamRun) error {
	if err := startCounter(ctx, e, name, sizeMiB); err != nil {
		return err
	}
	defer removeContainer(e, name+"-target")
	if sc.pipe == pipeConfirm {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		target := fmt.Sprintf("%s %s %g | %s", self, throttleArg, sc.rateMbit*1e6/8,
			strings.Join(e.cmd("restore", "-n", name+"-target", "-i", "-"), " "))
		settle()
		r.PipeExport, _, err = runMeasured(ctx, e.cmd("checkpoint", "-e", "-", "--confirm-cmd", target, name), cmdIO{})
		r.PipeTotal = r.PipeExport.Wall
		return err
	}
	file := filepath.Join(e.cfg.work, name+".tar.zst")
	defer os.Remove(file)
	settle()
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	t0 := time.Now()
	exp, err := startMeasured(ctx, e.cmd("checkpoint", "-e", "-", name), cmdIO{Stdout: pw})
	pw.Close()
	if err != nil {
		return err
	}
	var dst io.WriteCloser
	var imp *measured
	if sc.pipe == pipeStdin {
		var ir *os.File
		if ir, dst, err = os.Pipe(); err == nil {
			// The source's name is taken until its export ends.
			imp, err = startMeasured(ctx, e.cmd("restore", "-n", name+"-target", "-i", "-"), cmdIO{Stdin: ir})
			ir.Close()
		}
	} else {
		dst, err = os.Create(file)
	}
	if err != nil {
		pr.Close()
		exp.wait()
		return err
	}
	n, cerr := throttledCopy(dst, pr, sc.rateMbit*1e6/8)
	pr.Close()
	dst.Close()
	r.PipeBytes = n
	u, xerr := exp.wait()
	r.PipeExport = u
	if imp == nil && cerr == nil && xerr == nil {
		imp, cerr = startMeasured(ctx, e.cmd("restore", "-n", name+"-target", "-i", file), cmdIO{})
	}
	var ierr error
	if imp != nil {
		r.PipeImport, ierr = imp.wait()
	}
	r.PipeTotal = time.Since(t0)
	return errors.Join(cerr, xerr, ierr)
}

// throttleArg makes the bench a child that copies stdin to stdout at
// a rate (bytes a second): the link of the one-command migration.
const throttleArg = "-throttle-child"

func throttleChild(rate string) error {
	bps, err := strconv.ParseFloat(rate, 64)
	if err != nil || bps <= 0 {
		return fmt.Errorf("bad rate %q", rate)
	}
	_, err = throttledCopy(os.Stdout, os.Stdin, bps)
	return err
}

// throttledCopy copies src to dst at no more than rate bytes a second on
// average (a link's speed), in 256 KiB writes.
func throttledCopy(dst io.Writer, src io.Reader, rate float64) (int64, error) {
	buf := make([]byte, 256<<10)
	t0 := time.Now()
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			if d := time.Until(t0.Add(time.Duration(float64(n) / rate * 1e9))); d > 0 {
				time.Sleep(d)
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// streamFloors measures the floors of one run: bare criu dump to tmpfs,
// the fastest zstd of its images, bare criu restore of them.
func streamFloors(ctx context.Context, cfg config, sizeMiB int, r *streamRun) {
	base := filepath.Join(cfg.shm, fmt.Sprintf("floor-%d", sizeMiB))
	dir := filepath.Join(base, "images")
	defer os.RemoveAll(base)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.fail("floors", err)
		return
	}
	bare, err := startBareCounter(ctx, base, sizeMiB)
	if err != nil {
		r.fail("floors", err)
		return
	}
	defer bare.stop()
	pid, err := bare.pid()
	if err != nil {
		r.fail("floors", err)
		return
	}
	settle()
	r.Dump, _, err = runMeasured(ctx, []string{"criu", "dump", "-t", strconv.Itoa(pid), "-D", dir, "--shell-job", "-o", "dump.log"}, cmdIO{})
	if err != nil {
		r.fail("bare criu dump", err)
		return
	}
	r.Freeze = criuFrozen(dir)
	self, err := os.Executable()
	if err != nil {
		r.fail("floors", err)
		return
	}
	var out bytes.Buffer
	r.Zstd, _, err = runMeasured(ctx, []string{self, zstdFloorArg, dir}, cmdIO{Stdout: &out})
	if err == nil {
		_, err = fmt.Sscan(out.String(), &r.Compressed, &r.Images, &r.ZstdTime)
	}
	if err != nil {
		r.fail("zstd floor", err)
	}
	settle()
	pidfile := filepath.Join(base, "restored.pid")
	r.Restore, _, err = runMeasured(ctx, []string{"criu", "restore", "-D", dir, "--shell-job", "-d", "-o", "restore.log", "--pidfile", pidfile}, cmdIO{})
	if err != nil {
		r.fail("bare criu restore", err)
	}
	if b, err := os.ReadFile(pidfile); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 1 {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// startBareCounter runs the counter in its own PID namespace and session,
// stdout to a file in dir (CRIU restores a file, where a pipe to the
// bench would be gone), and waits until its ballast is touched.
func startBareCounter(ctx context.Context, dir string, sizeMiB int) (*bareProc, error) {
	counter, err := filepath.Abs("testdata/workloads/bin/counter")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "counter.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	c := exec.CommandContext(ctx, "unshare", "--pid", "--fork", "setsid", counter, "-ballast-mb", strconv.Itoa(sizeMiB), "-file", "")
	// Not stderr: unshare says something there as its child dies after
	// the dump, and CRIU refuses a file whose size changed since.
	c.Stdout = lf
	if err := c.Start(); err != nil {
		return nil, err
	}
	b := &bareProc{c: c}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, _ := os.ReadFile(logPath)
		if bytes.Contains(out, []byte("ballast ")) {
			return b, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.stop()
			return nil, errors.New("the bare workload did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bareProc is the bare workload: unshare, whose child is the counter.
type bareProc struct{ c *exec.Cmd }

func (b *bareProc) pid() (int, error) { return childPID(b.c.Process.Pid) }

func (b *bareProc) stop() { b.c.Process.Kill(); b.c.Wait() }

// zstdFloorArg makes the bench a child that runs zstdFloor.
const zstdFloorArg = "-zstd-floor-child"

// zstdFloor compresses a tar of dir at zstd's fastest level on all cores
// to nowhere and prints the compressed and input sizes and the time.
func zstdFloor(dir string) error {
	t0 := time.Now()
	n, in, err := tarZstd(dir, zstd.SpeedFastest)
	if err != nil {
		return err
	}
	fmt.Println(n, in, int64(time.Since(t0)))
	return nil
}
