package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
)

// tailHasher sums CRIU's pages images while CRIU writes them, so that the
// archive writer need not digest them after the dump (format.Writer's
// SetSum; it still checks each one's CRC-32C as it copies it, so an image
// that changed after it was summed fails the export). It follows every
// pages-*.img of dir from its start, reading what has been written so far
// and polling every 2 ms for more, until told that the dump ended; then it
// reads each to its end. CRIU writes them sequentially, in the page cache,
// while the container is frozen, and the hashing runs on another core: it
// takes work off the archive's write without lengthening the freeze
// (docs/MIGRATION.md, Measured).
type tailHasher struct {
	dir   string
	ended chan struct{}
	done  chan struct{}
	sums  map[string]format.Sum
	err   error
}

func startTailHasher(dir string) *tailHasher {
	t := &tailHasher{dir: dir, ended: make(chan struct{}), done: make(chan struct{}), sums: map[string]format.Sum{}}
	go t.run()
	return t
}

type tailed struct {
	f *os.File
	s *format.Summer
}

func (t *tailHasher) run() {
	defer close(t.done)
	files := map[string]*tailed{}
	defer func() {
		for _, tf := range files {
			tf.f.Close()
		}
	}()
	buf := make([]byte, 1<<20)
	ended := false
	for {
		select {
		case <-t.ended:
			ended = true
		default:
		}
		ents, err := os.ReadDir(t.dir)
		if err != nil {
			t.err = err
			return
		}
		for _, e := range ents {
			n := e.Name()
			if files[n] != nil || !strings.HasPrefix(n, "pages-") || !strings.HasSuffix(n, ".img") || !e.Type().IsRegular() {
				continue
			}
			f, err := os.Open(filepath.Join(t.dir, n))
			if err != nil {
				t.err = err
				return
			}
			files[n] = &tailed{f: f, s: format.NewSummer()}
		}
		progress := false
		for _, tf := range files {
			for {
				k, err := tf.f.Read(buf)
				tf.s.Write(buf[:k])
				if k > 0 {
					progress = true
				}
				if errors.Is(err, io.EOF) || k == 0 {
					break
				}
				if err != nil {
					t.err = err
					return
				}
			}
		}
		if ended {
			// The dump is over and every file was read to its end.
			for n, tf := range files {
				t.sums[n] = tf.s.Sum()
			}
			return
		}
		if !progress {
			select {
			case <-t.ended:
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
}

// end tells the hasher that the dump ended: it reads what is left of
// each file and stops. It does not wait.
func (t *tailHasher) end() {
	select {
	case <-t.ended:
	default:
		close(t.ended)
	}
}

// finish ends the hasher and returns the sums by file name; nil if
// anything failed.
func (t *tailHasher) finish() map[string]format.Sum {
	t.end()
	<-t.done
	if t.err != nil {
		return nil
	}
	return t.sums
}

// sum waits for the hasher (end must have been called) and returns the
// sum of file name.
func (t *tailHasher) sum(name string) (format.Sum, error) {
	<-t.done
	if t.err != nil {
		return format.Sum{}, fmt.Errorf("sum %s during the dump: %w", name, t.err)
	}
	s, ok := t.sums[name]
	if !ok {
		return format.Sum{}, fmt.Errorf("%s was not summed during the dump", name)
	}
	return s, nil
}

// stop abandons the hasher.
func (t *tailHasher) stop() {
	t.end()
	<-t.done
}
