//go:build linux

package incremental

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ckpt/ckpt/format/criuimg"
)

// synthesize writes a parent and a final image set of tasks tasks holding
// size bytes of private memory in all, in entries of 512 pages (2 MiB),
// of pseudo-random contents; dirty pages in a thousand of the final set
// differ from the parent's.
func synthesize(b *testing.B, parent, final string, tasks int, size int64, dirty int) {
	b.Helper()
	const entryPages = 512
	perTask := size / ps / int64(tasks) / entryPages
	src := rand.NewChaCha8([32]byte{1})
	rng := rand.New(src)
	page := make([]byte, ps)
	for k := range tasks {
		pid, id := uint32(k+1), uint32(k+1)
		var es []pmEntry
		for i := range perTask {
			es = append(es, pmEntry{vaddr: 0x7f00_0000_0000 + uint64(i)*(entryPages+16)*ps, nrPages: entryPages, flags: criuimg.PEPresent | criuimg.PELazy})
		}
		for _, dir := range []string{parent, final} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("pagemap-%d.img", pid)), encodePagemap(nil, id, es), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		pf, err := os.Create(filepath.Join(parent, fmt.Sprintf("pages-%d.img", id)))
		if err != nil {
			b.Fatal(err)
		}
		ff, err := os.Create(filepath.Join(final, fmt.Sprintf("pages-%d.img", id)))
		if err != nil {
			b.Fatal(err)
		}
		pw, fw := bufio.NewWriterSize(pf, 1<<20), bufio.NewWriterSize(ff, 1<<20)
		for range perTask * entryPages {
			src.Read(page)
			pw.Write(page)
			if rng.IntN(1000) < dirty {
				page[100]++
			}
			fw.Write(page)
		}
		for _, c := range []struct {
			w *bufio.Writer
			f *os.File
		}{{pw, pf}, {fw, ff}} {
			if err := c.w.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := c.f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDedup deduplicates a synthesized 1 GiB final image set (1% of
// its pages changed) against its parent; the throughput is bytes of the
// final set scanned per second, maxrss-MiB the process's peak resident
// memory.
//
//	go test -run '^$' -bench Dedup -benchtime 3x ./incremental
func BenchmarkDedup(b *testing.B) {
	for _, bc := range []struct {
		tasks       int
		parallelism int
	}{{1, 1}, {4, 1}, {4, 4}} {
		b.Run(fmt.Sprintf("1GiB/tasks=%d/parallel=%d", bc.tasks, bc.parallelism), func(b *testing.B) {
			const size = 1 << 30
			base := scratchDir(b)
			parent, tmpl := filepath.Join(base, "p"), filepath.Join(base, "tmpl")
			synthesize(b, parent, tmpl, bc.tasks, size, 10)
			b.SetBytes(size)
			b.ResetTimer()
			var st *Stats
			for i := range b.N {
				b.StopTimer()
				final := filepath.Join(base, fmt.Sprint("f", i))
				linkCopy(b, tmpl, final)
				b.StartTimer()
				var err error
				st, err = dedup(context.Background(), parent, final, &Options{PageSize: ps, NoSync: true, Parallelism: bc.parallelism}, false)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(final)
				b.StartTimer()
			}
			b.StopTimer()
			if st.PagesParent == 0 || st.PagesWritten == 0 {
				b.Fatalf("stats %+v", *st)
			}
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
				b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
			}
			b.ReportMetric(float64(st.BytesAfter)/float64(st.BytesBefore)*100, "%kept")
		})
	}
}
