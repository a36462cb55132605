package engine

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fileio"
	"golang.org/x/sys/unix"
)

// countingWriter counts bytes and reports them. With f set (the
// archive's file, written from its start) it has the kernel start writing
// each window of writebackWindow bytes to disk as soon as it is written
// (sync_file_range), so the disk works while the rest is compressed and
// the final fsync finds little left to write.
type countingWriter struct {
	w        io.Writer
	f        *os.File
	n        int64
	started  int64 // bytes whose write-back was started
	progress func(int64)
	ctx      context.Context
}

const writebackWindow = 8 << 20

// WriteAt writes to the file (the manifest over its reservation).
func (c *countingWriter) WriteAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.f.WriteAt(p, off)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.f != nil && c.n-c.started >= writebackWindow {
		// Only a hint: an error here shows at the fsync.
		_ = unix.SyncFileRange(int(c.f.Fd()), c.started, c.n-c.started, unix.SYNC_FILE_RANGE_WRITE)
		c.started = c.n
	}
	if c.progress != nil {
		c.progress(c.n)
	}
	return n, err
}

// archiveJob is one archive an export writes.
type archiveJob struct {
	f      *os.File   // the temporary file, written from its start
	c      *Container // the container's record as of the dump (config.dump)
	imgDir string     // the images: under pre-checkpoint/ for a -P, else checkpoint/
	work   string     // CRIU's work directory, with stats-dump
	comp   format.Compression
	o      *ExportOptions
	parent *format.Parent // the archive the images depend on, or nil
	// layers are the container layer's changes and the volumes, copied
	// earlier.
	layers []layerMember
	// th, if not nil, has been summing the pages images since the dump
	// began.
	th *tailHasher
	hf *hostFacts // the host's description
	// logCut, if not zero, is when the container froze for a dump that
	// left it running: the log is archived up to then.
	logCut time.Time
}

// archiveResult is what writeArchive wrote.
type archiveResult struct {
	size     int64
	manifest *format.Manifest
	digest   format.Digest // of the manifest
	// prehashed is how many pages images the hasher summed.
	prehashed int
}

// writeArchive writes the v1 archive a describes to a.f.
func (e *Engine) writeArchive(ctx context.Context, a *archiveJob) (*archiveResult, error) {
	header, cpuinfo, err := e.manifestHeader(a)
	if err != nil {
		return nil, err
	}
	// NewFileWriter writes the manifest over its reservation at the end,
	// reading each member once. O_DIRECT where the file system has it;
	// otherwise unbuffered (the writer writes whole frames) through the
	// page cache.
	var file format.File
	var written func() (int64, error)
	var zw *format.Writer
	if len(a.o.SealTo) > 0 {
		// Sealed: no going back to write the manifest last, so the
		// plain Writer reads what was not summed during the dump twice.
		out, finish := sealedOut(ctx, a.f)
		defer finish.release()
		sl, err := newSealer(out, a.o)
		if err != nil {
			return nil, err
		}
		defer sl.Abort()
		cw := &countingWriter{w: sl, progress: a.o.Progress, ctx: ctx}
		zw = format.NewWriter(cw, header, &format.WriterOptions{Compression: a.comp})
		written = func() (int64, error) {
			if err := sl.Close(); err != nil {
				return 0, err
			}
			return finish.written()
		}
	} else if dw, err := fileio.NewDirectWriter(ctx, a.f, a.o.Progress); err == nil {
		defer dw.Release()
		file, written = dw, func() (int64, error) { return dw.Written(), dw.Finish() }
	} else {
		cw := &countingWriter{w: a.f, f: a.f, progress: a.o.Progress, ctx: ctx}
		file, written = cw, func() (int64, error) { return cw.n, nil }
	}
	if zw == nil {
		zw = format.NewFileWriter(file, header, &format.WriterOptions{Compression: a.comp})
	}
	r := &archiveResult{}
	if err := e.addDumpMembers(zw, a, cpuinfo); err != nil {
		return nil, err
	}
	if r.prehashed, err = a.setPageSums(zw); err != nil {
		return nil, err
	}
	for _, l := range a.layers {
		if err := zw.Add(l.name, l.src); err != nil {
			return nil, err
		}
		if l.sum != nil {
			if err := zw.SetSum(l.name, *l.sum); err != nil {
				return nil, err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if r.size, err = written(); err != nil {
		return nil, err
	}
	r.manifest, r.digest = zw.Manifest()
	return r, nil
}

// sealedFinish ends the writes of sealedOut's writer.
type sealedFinish struct {
	written func() (int64, error) // flushes, returns the file's size
	release func()
}

// sealedOut returns the writer of a sealed archive into f, new: the
// O_DIRECT writer where the file system has it (writing in its own
// goroutine, while the next chunks are sealed, and taking no page cache,
// as an unsealed archive's), else a buffer through the page cache.
func sealedOut(ctx context.Context, f *os.File) (io.Writer, sealedFinish) {
	if dw, err := fileio.NewDirectWriter(ctx, f, nil); err == nil {
		return dw, sealedFinish{written: func() (int64, error) { return dw.Written(), dw.Finish() }, release: dw.Release}
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return bw, sealedFinish{written: func() (int64, error) {
		if err := bw.Flush(); err != nil {
			return 0, err
		}
		return f.Seek(0, io.SeekCurrent)
	}, release: func() {}}
}

// imagesMember is the archive directory of a's images.
func (a *archiveJob) imagesMember() string {
	if a.o.PreCheckpoint {
		return format.PreCheckpointDir
	}
	return format.CheckpointDir
}

// manifestHeader returns the manifest of a before its members, and the
// path of the host's CPU image; it waits for the host's probe.
func (e *Engine) manifestHeader(a *archiveJob) (format.Manifest, string, error) {
	host, cpuinfo, err := a.hf.wait()
	if err != nil {
		return format.Manifest{}, "", err
	}
	c, o := a.c, a.o
	return format.Manifest{
		Created:   c.CheckpointedAt.Truncate(time.Second),
		Engine:    format.Engine{Name: "ckpt", Version: Version},
		Container: format.Container{Name: c.Name, ID: c.ID, Image: c.Image, ImageID: c.ImageID, Runtime: filepath.Base(e.runtimePath())},
		Host:      host,
		Options: format.Options{
			LeaveRunning: o.LeaveRunning, TCPEstablished: o.TCPEstablished, FileLocks: o.FileLocks,
			IgnoreRootfs: o.IgnoreRootfs, IgnoreVolumes: o.IgnoreVolumes, Compression: string(a.comp),
			PreCheckpoint: o.PreCheckpoint, WithPrevious: o.WithPrevious,
		},
		Parent: a.parent,
	}, cpuinfo, nil
}

// addDumpMembers adds the images, the container's record and spec,
// CRIU's statistics, the CPU image cpuinfo and the container's log.
func (e *Engine) addDumpMembers(zw *format.Writer, a *archiveJob, cpuinfo string) error {
	if err := zw.AddDir(a.imagesMember(), a.imgDir); err != nil {
		return err
	}
	cfg, err := marshalConfigDump(a.c, e.runtimePath())
	if err != nil {
		return err
	}
	if err := zw.AddBytes(format.ConfigName, cfg); err != nil {
		return err
	}
	if err := zw.AddFile(format.SpecName, filepath.Join(e.containerDir(a.c.ID), "config.json")); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(a.work, crit.StatsDump)); err == nil {
		if err := zw.AddFile(format.StatsName, filepath.Join(a.work, crit.StatsDump)); err != nil {
			return err
		}
	}
	if err := zw.AddFile(format.CPUInfoName, cpuinfo); err != nil {
		return err
	}
	if log, err := e.containerLog(a.c.ID, a.logCut); err == nil {
		if err := zw.AddBytes(format.ContainerLogName, log); err != nil {
			return err
		}
	}
	return nil
}

// containerLog returns the last 16 MiB of the container's log, up to cut
// (logUntil).
func (e *Engine) containerLog(id string, cut time.Time) ([]byte, error) {
	log, err := fileio.ReadTail(filepath.Join(e.containerDir(id), logFile), 16<<20)
	return logUntil(log, cut), err
}

// setPageSums hands the writer the hasher's sums of the pages images
// and returns how many. The writer asks for each after it copied the
// image, by when the hasher has caught up with the end of the dump.
func (a *archiveJob) setPageSums(zw *format.Writer) (int, error) {
	if a.th == nil {
		return 0, nil
	}
	n := 0
	pages, _ := filepath.Glob(filepath.Join(a.imgDir, "pages-*.img"))
	for _, p := range pages {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		name := filepath.Base(p)
		if err := zw.SetSumFunc(a.imagesMember()+"/"+name, fi.Size(), func() (format.Sum, error) { return a.th.sum(name) }); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
