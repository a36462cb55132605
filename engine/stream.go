package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
	"golang.org/x/sys/unix"
)

// A streamed export (ExportOptions.Stream, or Output) writes a streamed
// archive (docs/FORMAT.md §10) in one pass. CRIU's own --stream mode is
// out of reach through runc: runc drives CRIU over its RPC interface,
// where CRIU 4.2 sets up the image streamer with no mode and aborts
// (criu/cr-service.c, setup_images_and_workdir). So the engine streams
// the one part of the images that grows with the container's memory, the
// pages images: before runc starts it makes pages-1.img... FIFOs in the
// images directory, CRIU opens and writes them as files (it numbers them
// from 1, one per pagemap), and a goroutine per FIFO copies each into the
// archive as CRIU writes it. The other images are small and written as
// files; they go into the archive after the dump. The CPU description
// (cpuinfo.img, made before the dump) goes first, after the manifest, so
// that an import checks its CPU while the pages arrive. A pages image CRIU
// writes beyond the FIFOs made (more processes than counted) lands as a
// file and is added after the dump too.
//
// The container stays frozen from CRIU's pre-dump action (the action
// script of freeze.go; runc pause before runc starts where the script
// cannot run) until its archive is complete: CRIU, finding it frozen,
// leaves it so when it lets it run. A reader that goes away
// mid-stream leaves it running, never lost. Without LeaveRunning it is
// then killed and recorded exited: its images are in the archive only.

// pageStreams copies the pages images CRIU writes into FIFOs of an
// images directory to a StreamWriter, one at a time.
type pageStreams struct {
	dir, member string // the images directory, its archive directory
	sw          *format.StreamWriter
	mu          sync.Mutex // the writer: one member at a time
	discard     []atomic.Bool
	done        []chan struct{}
	streamed    []bool // under mu
	err         error  // the first error, under mu
	started     func() // called as the first pages image arrives
	once        sync.Once
}

// pipeSize is the pipe buffer a pages FIFO asks for.
const pipeSize = 1 << 20

// pageFIFOs is how many FIFOs a dump of a container of procs processes
// gets: one per process and a few for shared memory.
func pageFIFOs(procs int) int { return min(max(procs+4, 8), 1024) }

// pagesName is the name of the pages image with id i.
func pagesName(i int) string { return fmt.Sprintf("pages-%d.img", i) }

// startPageStreams makes n FIFOs pages-1.img... in dir and starts copying
// each into sw as member/<name> once CRIU opens it.
func startPageStreams(dir, member string, n int, sw *format.StreamWriter, started func()) (*pageStreams, error) {
	p := &pageStreams{dir: dir, member: member, sw: sw, discard: make([]atomic.Bool, n),
		done: make([]chan struct{}, n), streamed: make([]bool, n), started: started}
	for i := range n {
		if err := unix.Mkfifo(filepath.Join(dir, pagesName(i+1)), 0o600); err != nil {
			p.finish(0)
			return nil, fmt.Errorf("make the pages FIFOs in %s: %w", dir, err)
		}
		p.done[i] = make(chan struct{})
		go p.serve(i)
	}
	return p, nil
}

// serve copies FIFO i into the archive once a writer opens it, and
// drains it whatever happens, so that CRIU never waits on it.
func (p *pageStreams) serve(i int) {
	defer close(p.done[i])
	name := pagesName(i + 1)
	f, err := os.Open(filepath.Join(p.dir, name)) // waits for CRIU, or finish
	if err != nil {
		p.setErr(err)
		return
	}
	defer f.Close()
	if !p.discard[i].Load() {
		// CRIU splices the pages into the FIFO: a larger pipe lets it
		// hand over more per round (best effort: the host's
		// fs.pipe-max-size caps it).
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
		}
		p.once.Do(p.started)
		p.mu.Lock()
		if p.err == nil {
			if err := p.sw.AddStream(p.member+"/"+name, f); err != nil {
				p.err = err
			} else {
				p.streamed[i] = true
			}
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, f)
}

func (p *pageStreams) setErr(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// finish ends the streams once CRIU has exited, having used the first
// used FIFOs: the others' copies are let go (opened for writing and
// closed), every copy is waited for, and the FIFOs are removed. It
// returns the first error of the copies, and which pages images went into
// the archive.
func (p *pageStreams) finish(used int) (map[string]bool, error) {
	for i := used; i < len(p.done); i++ {
		if p.done[i] == nil {
			continue
		}
		p.discard[i].Store(true)
		path := filepath.Join(p.dir, pagesName(i+1))
		for {
			// Non-blocking: it fails (ENXIO) until the copy waits in its open.
			w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				w.Close()
				break
			}
			select {
			case <-p.done[i]:
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
	}
	streamed := map[string]bool{}
	for i, d := range p.done {
		if d != nil {
			<-d
		}
		path := filepath.Join(p.dir, pagesName(i+1))
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			_ = os.Remove(path)
		}
		if p.streamed[i] {
			streamed[pagesName(i+1)] = true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return streamed, p.err
}

// pagemaps counts the pagemap images of a dump in dir: CRIU gives each
// a pages image, numbered from 1.
func pagemaps(dir string) int {
	n := 0
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "pagemap") && strings.HasSuffix(e.Name(), ".img") {
			n++
		}
	}
	return n
}

// cgroupProcs counts the processes in the cgroup of pid (its pids
// controller's, or on cgroup v2 its own), 1 if it cannot tell.
func cgroupProcs(pid int) int {
	cg, err := procCgroups(pid)
	if err != nil {
		return 1
	}
	for _, p := range []string{cg.byController["pids"], cg.v2} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err == nil {
			return max(1, strings.Count(string(b), "\n"))
		}
	}
	return 1
}

// streamOut counts what goes to the archive's destination and reports
// it.
type streamOut struct {
	w        io.Writer
	n        atomic.Int64
	progress func(int64)
}

func (s *streamOut) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.progress(s.n.Add(int64(n)))
	return n, err
}

// startStream writes the manifest to the archive's destination and
// makes the pages FIFOs, before the dump.
func (x *exportJob) startStream() error {
	if !x.streaming {
		return nil
	}
	imgDir := x.imgDir
	x.undo.push("remove the dump's images", func() error { return fsutil.RemoveAll(imgDir) })
	// The manifest names the container as dump() records it after.
	x.rec = *x.c
	x.rec.PreCheckpoint, x.rec.CheckpointedAt = nil, time.Now().UTC()
	a := x.archiveJob()
	header, cpuinfo, err := x.e.manifestHeader(a)
	if err != nil {
		return err
	}
	x.cpuinfo = cpuinfo
	var dst io.Writer = x.opts.Output
	if dst == nil {
		dst = x.f
	}
	progress := x.progress()
	if progress == nil {
		progress = func(int64) {}
	}
	x.out = &streamOut{w: dst, progress: progress}
	var w io.Writer = x.out
	if len(x.opts.SealTo) > 0 {
		if x.sealer, err = newSealer(x.out, &x.opts); err != nil {
			return x.fail("write archive", err)
		}
		x.held.push("end the sealing", func() error { x.sealer.Abort(); return nil })
		w = x.sealer
	}
	sw, err := format.NewStreamWriter(w, header, &format.WriterOptions{Compression: x.comp})
	if err != nil {
		return x.fail("write archive", err)
	}
	x.sw = sw
	// The CPU description first (it is made before the dump): an import
	// checks this CPU against it while the pages arrive.
	if err := sw.AddFile(format.CPUInfoName, cpuinfo); err != nil {
		return x.fail("write archive", err)
	}
	ps, err := startPageStreams(x.imgDir, a.imagesMember(), pageFIFOs(cgroupProcs(x.c.PID)), sw, func() { x.j.running("streaming") })
	if err != nil {
		return err
	}
	x.ps = ps
	x.held.push("end the pages streams", func() error { _, _ = ps.finish(0); return nil })
	return nil
}

// endStream ends the pages streams after the dump (dumped: it
// succeeded) and returns their error.
func (x *exportJob) endStream(dumped bool) error {
	used := 0
	if dumped {
		used = pagemaps(x.imgDir)
	}
	streamed, err := x.ps.finish(used)
	x.streamed = streamed
	if err != nil {
		return x.fail("write archive", err)
	}
	return nil
}

// writeStreamed adds what the dump left in files to the streamed
// archive, then the container's record, spec, CRIU's statistics, the CPU
// image, its log and the layer copies, and closes it.
func (x *exportJob) writeStreamed() error {
	a := x.archiveJob()
	sw := x.sw
	ents, err := os.ReadDir(x.imgDir)
	if err != nil {
		return x.fail("write archive", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() && !x.streamed[e.Name()] {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		if err := sw.AddFile(a.imagesMember()+"/"+n, filepath.Join(x.imgDir, n)); err != nil {
			return x.fail("write archive", err)
		}
	}
	if err := x.addStreamedMeta(); err != nil {
		return x.fail("write archive", err)
	}
	for _, l := range x.layers {
		if err := sw.Add(l.name, l.src); err != nil {
			return x.fail("write archive", err)
		}
	}
	if err := sw.Close(); err != nil {
		return x.fail("write archive", err)
	}
	if x.sealer != nil {
		if err := x.sealer.Close(); err != nil {
			return x.fail("write archive", err)
		}
	}
	m, d := sw.Manifest()
	x.archive = &archiveResult{size: x.out.n.Load(), manifest: m, digest: d}
	return nil
}

// addStreamedMeta adds config.dump, spec.dump, stats-dump and ctr.log,
// as addDumpMembers does for a file (cpuinfo.img went first).
func (x *exportJob) addStreamedMeta() error {
	sw := x.sw
	cfg, err := marshalConfigDump(&x.rec, x.e.runtimePath())
	if err != nil {
		return err
	}
	if err := sw.AddBytes(format.ConfigName, cfg); err != nil {
		return err
	}
	if err := sw.AddFile(format.SpecName, filepath.Join(x.e.containerDir(x.c.ID), "config.json")); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(x.work, crit.StatsDump)); err == nil {
		if err := sw.AddFile(format.StatsName, filepath.Join(x.work, crit.StatsDump)); err != nil {
			return err
		}
	}
	if log, err := x.e.containerLog(x.c.ID, x.logCut()); err == nil {
		if err := sw.AddBytes(format.ContainerLogName, log); err != nil {
			return err
		}
	}
	return nil
}

// stopStreamed ends a streamed export without LeaveRunning: the
// container, frozen until its archive was complete, is killed and
// recorded exited. With LeaveRunning it was thawed after the dump.
func (x *exportJob) stopStreamed() error {
	if !x.streaming {
		return nil
	}
	if x.opts.LeaveRunning {
		return nil // thawed and released after the dump
	}
	defer x.wd.released()
	x.j.phase("stop")
	x.res.Frozen = time.Since(x.frozenAt)
	// Killed while frozen, so that it runs on not a moment after its
	// archive; runc kill --all thaws it itself, the resume is for a runc
	// that does not.
	_, kerr := runcTool(x.ctx, x.e.runc("").killArgs(x.c.ID, int(syscall.SIGKILL), true), "")
	if kerr != nil {
		return fmt.Errorf("stop the container after its export: %w (the archive %s is complete; the container runs on, frozen until this command ends)", kerr, x.abs)
	}
	_ = x.resume()
	x.unpause.drop()
	c, err := x.e.waitExit(x.ctx, x.c.ID, 10*time.Second)
	if err == nil && c.Status == StatusRunning {
		err = errors.New("it did not exit after SIGKILL")
	}
	if err != nil {
		return fmt.Errorf("stop the container after its export: %w (the archive %s is complete)", err, x.abs)
	}
	x.c = c
	x.pt.done("stop")
	return nil
}

// archiveJob describes the archive of x for manifestHeader.
func (x *exportJob) archiveJob() *archiveJob {
	o := x.opts
	return &archiveJob{c: &x.rec, imgDir: x.imgDir, work: x.work, comp: x.comp, o: &o, parent: x.parent, hf: x.hf, logCut: x.logCut()}
}

// writeStreamedFile finishes a streamed archive and, written to a file,
// syncs it.
func (x *exportJob) writeStreamedFile() error {
	if err := x.writeStreamed(); err != nil {
		return err
	}
	x.pt.done("write_archive")
	if x.f != nil {
		if err := x.f.Sync(); err != nil {
			return x.fail("sync archive", err)
		}
		if err := x.f.Close(); err != nil {
			return x.fail("close archive", err)
		}
	}
	if err := x.ctx.Err(); err != nil {
		return x.fail("export", err)
	}
	return nil
}

// confirm waits, after a streamed archive's last byte, for its reader to
// say it restored the container (ExportOptions.Confirm), with the
// container still frozen and alive (or, with LeaveRunning, running): a
// refusal fails the export, whose undo thaws it, so it runs on.
func (x *exportJob) confirm() error {
	if x.opts.Confirm == nil {
		return nil
	}
	x.j.phase("confirm")
	if err := x.opts.Confirm(); err != nil {
		return fmt.Errorf("%w: %w (the container runs on here)", ErrNotConfirmed, err)
	}
	x.pt.done("confirm")
	return nil
}
