package engine

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
)

// prehasher sums the pages images CRIU writes into a directory while it
// writes them, following each file as it grows, on the core CRIU leaves
// idle: once the dump ends, little is left to read, and the archive
// writer (given the sums with format.Writer.SetSum) reads each page once
// instead of twice. CRIU appends to its image files; should a file ever
// change behind what was summed, the writer's CRC-32C check of its one
// read fails the export (format.ErrSourceChanged), so a wrong sum never
// reaches an archive.
type prehasher struct {
	dir   string
	stop  chan struct{}
	done  chan struct{}
	files map[string]*followed
}

type followed struct {
	f   *os.File
	off int64
	s   *format.Summer
	err error
}

// prehashPoll is how often the directory and the files are looked at
// again when nothing new was read.
const prehashPoll = 2 * time.Millisecond

// startPrehash starts following the pages-*.img files of dir.
func startPrehash(dir string) *prehasher {
	p := &prehasher{dir: dir, stop: make(chan struct{}), done: make(chan struct{}), files: map[string]*followed{}}
	go p.run()
	return p
}

func (p *prehasher) run() {
	defer close(p.done)
	buf := make([]byte, 1<<20)
	for {
		stopped := false
		select {
		case <-p.stop:
			stopped = true
		default:
		}
		// After the stop, one last pass reads every file to its end.
		progress := p.pass(buf)
		if stopped {
			return
		}
		if !progress {
			select {
			case <-p.stop:
			case <-time.After(prehashPoll):
			}
		}
	}
}

// pass opens pages images not seen yet and reads what was added to each;
// it reports whether it read anything.
func (p *prehasher) pass(buf []byte) bool {
	if ents, err := os.ReadDir(p.dir); err == nil {
		for _, d := range ents {
			name := d.Name()
			if _, ok := p.files[name]; ok || !strings.HasPrefix(name, "pages-") || !strings.HasSuffix(name, ".img") || !d.Type().IsRegular() {
				continue
			}
			fl := &followed{s: format.NewSummer()}
			fl.f, fl.err = os.Open(filepath.Join(p.dir, name))
			p.files[name] = fl
		}
	}
	progress := false
	for _, fl := range p.files {
		if fl.err != nil {
			continue
		}
		for {
			n, err := fl.f.ReadAt(buf, fl.off)
			if n > 0 {
				_, _ = fl.s.Write(buf[:n])
				fl.off += int64(n)
				progress = true
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fl.err = err
				break
			}
		}
	}
	return progress
}

// finish ends the following after the dump (every file is complete) and
// returns the sums of the files read without error, by file name; with
// discard it only stops and closes.
func (p *prehasher) finish(discard bool) map[string]format.Sum {
	close(p.stop)
	<-p.done
	sums := map[string]format.Sum{}
	for name, fl := range p.files {
		if fl.f != nil {
			_ = fl.f.Close()
		}
		if fl.err == nil && !discard {
			sums[name] = fl.s.Sum()
		}
	}
	return sums
}
