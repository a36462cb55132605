package engine

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/format"
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

// writeArchive writes the v1 archive of container c to f, with the images
// of imgDir under pre-checkpoint/ (o.PreCheckpoint) or checkpoint/, and
// returns its size, manifest and manifest digest. The container layer's
// changes and the volumes are layers, copied earlier; th, if not nil, is
// summing the pages images since the dump began (prehashed counts those
// whose sums it gives); hf is the host's description.
func (e *Engine) writeArchive(ctx context.Context, f *os.File, c *Container, imgDir, work string, comp format.Compression, o *ExportOptions, parent *format.Parent, pt *phaseTimer, layers []layerMember, th *tailHasher, prehashed *int, hf *hostFacts) (int64, *format.Manifest, format.Digest, error) {
	host, cpuinfo, err := hf.wait()
	if err != nil {
		return 0, nil, "", err
	}
	header := format.Manifest{
		Created:   c.CheckpointedAt.Truncate(time.Second),
		Engine:    format.Engine{Name: "ckpt", Version: Version},
		Container: format.Container{Name: c.Name, ID: c.ID, Image: c.Image, ImageID: c.ImageID, Runtime: filepath.Base(e.runtimePath())},
		Host:      host,
		Options: format.Options{
			LeaveRunning: o.LeaveRunning, TCPEstablished: o.TCPEstablished, FileLocks: o.FileLocks,
			IgnoreRootfs: o.IgnoreRootfs, IgnoreVolumes: o.IgnoreVolumes, Compression: string(comp),
			PreCheckpoint: o.PreCheckpoint, WithPrevious: o.WithPrevious,
		},
		Parent: parent,
	}
	dirName := format.CheckpointDir
	if o.PreCheckpoint {
		dirName = format.PreCheckpointDir
	}
	// NewFileWriter writes the manifest over its reservation at the end,
	// reading each member once. O_DIRECT where the file system has it;
	// otherwise unbuffered (the writer writes whole frames) through the
	// page cache.
	var file format.File
	var written func() (int64, error)
	if dw, err := newDirectWriter(ctx, f, o.Progress); err == nil {
		defer dw.release()
		file, written = dw, func() (int64, error) { return dw.n, dw.Finish() }
	} else {
		cw := &countingWriter{w: f, f: f, progress: o.Progress, ctx: ctx}
		file, written = cw, func() (int64, error) { return cw.n, nil }
	}
	zw := format.NewFileWriter(file, header, &format.WriterOptions{Compression: comp})
	if err := zw.AddDir(dirName, imgDir); err != nil {
		return 0, nil, "", err
	}
	cfg, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return 0, nil, "", err
	}
	if err := zw.AddBytes(format.ConfigName, cfg); err != nil {
		return 0, nil, "", err
	}
	if err := zw.AddFile(format.SpecName, filepath.Join(e.containerDir(c.ID), "config.json")); err != nil {
		return 0, nil, "", err
	}
	if _, err := os.Stat(filepath.Join(work, crit.StatsDump)); err == nil {
		if err := zw.AddFile(format.StatsName, filepath.Join(work, crit.StatsDump)); err != nil {
			return 0, nil, "", err
		}
	}
	if err := zw.AddFile(format.CPUInfoName, cpuinfo); err != nil {
		return 0, nil, "", err
	}
	if log, err := readTail(filepath.Join(e.containerDir(c.ID), logFile), 16<<20); err == nil {
		if err := zw.AddBytes(format.ContainerLogName, log); err != nil {
			return 0, nil, "", err
		}
	}
	if th != nil {
		// The writer asks for each sum after it copied the image, by
		// when the hasher has caught up with the end of the dump.
		pages, _ := filepath.Glob(filepath.Join(imgDir, "pages-*.img"))
		for _, p := range pages {
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			n := filepath.Base(p)
			if err := zw.SetSumFunc(dirName+"/"+n, fi.Size(), func() (format.Sum, error) { return th.sum(n) }); err != nil {
				return 0, nil, "", err
			}
			*prehashed++
		}
	}
	for _, l := range layers {
		if err := zw.Add(l.name, l.src); err != nil {
			return 0, nil, "", err
		}
		if l.sum != nil {
			if err := zw.SetSum(l.name, *l.sum); err != nil {
				return 0, nil, "", err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return 0, nil, "", err
	}
	n, err := written()
	if err != nil {
		return 0, nil, "", err
	}
	pt.done("write_archive")
	m, md := zw.Manifest()
	return n, m, md, nil
}
