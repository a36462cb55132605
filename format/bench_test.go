package format_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ckpt/ckpt/format"
)

var benchSize = flag.Int64("benchsize", 1<<30, "total member size of the Writer and Reader benchmarks, in bytes")

// genReader yields n deterministic bytes: 64 KiB blocks alternating
// pseudo-random bytes (like memory pages of heap data, incompressible)
// and log-like text (compressible), so throughput reflects both. The
// random blocks are cut from a 32 MiB pool made once, so the generator
// costs a copy, not a PRNG call per word; the pool is larger than any
// compression window, so its repeats do not compress.
type genReader struct {
	off  int64 // position in benchPool of the next random block
	n    int64
	left []byte
	i    int
}

var benchText = bytes.Repeat([]byte("2026-11-23T12:00:00Z counter: tick 42 worker=3 state=running bytes=65536 path=/var/lib/counter/state.json\n"), 64<<10/100)[:64<<10]

var (
	benchPoolOnce sync.Once
	benchPool     []byte
)

func initBenchPool() {
	benchPoolOnce.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		benchPool = make([]byte, 32<<20)
		for j := 0; j < len(benchPool); j += 8 {
			binary.LittleEndian.PutUint64(benchPool[j:], rng.Uint64())
		}
	})
}

func newGen(seed uint64, n int64) *genReader {
	initBenchPool()
	blocks := uint64(len(benchPool) / (64 << 10))
	return &genReader{off: int64(seed*7919%blocks) * 64 << 10, n: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if len(g.left) == 0 {
		if g.i%2 == 0 {
			g.left = benchPool[g.off : g.off+64<<10]
			g.off = (g.off + 64<<10) % int64(len(benchPool))
		} else {
			g.left = benchText
		}
		g.i++
	}
	n := copy(p, g.left)
	n = int(min(int64(n), g.n))
	g.left = g.left[n:]
	g.n -= int64(n)
	return n, nil
}

// benchMembers returns a member set of about total bytes: CRIU pages,
// a rootfs diff and a volume, each generated on the fly, never stored.
func benchMembers(total int64) map[string]format.Source {
	gen := func(seed uint64, n int64) format.Source {
		return format.StreamSource(func(w io.Writer) error {
			_, err := io.Copy(w, newGen(seed, n))
			return err
		})
	}
	return map[string]format.Source{
		format.ConfigName:             format.BytesSource([]byte(`{"name":"bench"}`)),
		format.SpecName:               format.BytesSource([]byte(`{"ociVersion":"1.2.0"}`)),
		"checkpoint/pages-1.img":      gen(1, total*5/8),
		"checkpoint/pages-2.img":      gen(2, total/8),
		format.RootfsDiffName:         gen(3, total/8),
		"volumes/data.tar":            gen(4, total-total*5/8-total/8-total/8),
		"checkpoint/descriptors.json": format.BytesSource([]byte(`[]`)),
	}
}

func writeBench(w io.Writer, c format.Compression, total int64) (*format.Manifest, error) {
	return writeBenchSums(w, c, total, nil)
}

// benchSums returns the sums of benchMembers(total), as an engine that saw
// the bytes while they were written would have them.
func benchSums(total int64) (map[string]format.Sum, error) {
	sums := map[string]format.Sum{}
	for name, src := range benchMembers(total) {
		rc, err := src.Open()
		if err != nil {
			return nil, err
		}
		s := format.NewSummer()
		_, err = io.Copy(s, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		sums[name] = s.Sum()
	}
	return sums, nil
}

// writeBenchSums writes benchMembers(total), giving the Writer the sums in
// sums (SetSum).
func writeBenchSums(w io.Writer, c format.Compression, total int64, sums map[string]format.Sum) (*format.Manifest, error) {
	zw := format.NewWriter(w, format.Manifest{Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Engine: format.Engine{Name: "bench"}}, &format.WriterOptions{Compression: c})
	for name, src := range benchMembers(total) {
		if err := zw.Add(name, src); err != nil {
			return nil, err
		}
		if s, ok := sums[name]; ok {
			if err := zw.SetSum(name, s); err != nil {
				return nil, err
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	m, _ := zw.Manifest()
	return m, nil
}

// countingWriter counts what it discards.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWriter writes a -benchsize member set (1 GiB by default),
// reading each generated source twice as the Writer does, or once when
// the sums are given (zstd-setsum: SetSum, sums made before the timer
// starts); MB/s counts member bytes.
func BenchmarkWriter(b *testing.B) {
	for _, c := range append(compressions, "zstd-setsum") {
		b.Run(string(c), func(b *testing.B) {
			initBenchPool()
			var sums map[string]format.Sum
			if c == "zstd-setsum" {
				c = format.Zstd
				var err error
				if sums, err = benchSums(*benchSize); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(*benchSize)
			var out int64
			b.ResetTimer()
			for b.Loop() {
				var cw countingWriter
				if _, err := writeBenchSums(&cw, c, *benchSize, sums); err != nil {
					b.Fatal(err)
				}
				out = cw.n
			}
			b.ReportMetric(float64(out), "archive-bytes")
		})
	}
}

// benchArchive writes the benchmark archive to a file once.
func benchArchive(b *testing.B, c format.Compression) string {
	b.Helper()
	file := filepath.Join(b.TempDir(), "bench."+string(c)+".ckpt")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := writeBench(f, c, *benchSize); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return file
}

// BenchmarkReader reads and verifies every member of a -benchsize
// archive from a file; MB/s counts member bytes.
func BenchmarkReader(b *testing.B) {
	for _, c := range compressions {
		b.Run(string(c), func(b *testing.B) {
			file := benchArchive(b, c)
			b.SetBytes(*benchSize)
			b.ResetTimer()
			for b.Loop() {
				f, err := os.Open(file)
				if err != nil {
					b.Fatal(err)
				}
				if err := readArchive(f, nil); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkReadManifest reads only the manifest of a -benchsize archive
// and reports how many bytes of the file it touched.
func BenchmarkReadManifest(b *testing.B) {
	for _, c := range compressions {
		b.Run(string(c), func(b *testing.B) {
			file := benchArchive(b, c)
			fi, err := os.Stat(file)
			if err != nil {
				b.Fatal(err)
			}
			var touched int64
			b.ResetTimer()
			for b.Loop() {
				f, err := os.Open(file)
				if err != nil {
					b.Fatal(err)
				}
				cr := &countingReader{r: f}
				if _, _, err := format.ReadManifest(cr); err != nil {
					b.Fatal(err)
				}
				touched = cr.n
				f.Close()
			}
			b.ReportMetric(float64(touched), "bytes-touched")
			b.ReportMetric(float64(fi.Size()), "archive-bytes")
		})
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReadManifestTouchesLittle checks the requirement on a
// 4 MiB member set (the benchmark measures 1 GiB): ReadManifest reads less
// than 1 MiB of the source, whatever the compression, because the manifest
// fills a compression frame of its own.
func TestReadManifestTouchesLittle(t *testing.T) {
	const size = 4 << 20
	for _, c := range compressions {
		t.Run(string(c), func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := writeBench(&buf, c, size); err != nil {
				t.Fatal(err)
			}
			cr := &countingReader{r: bytes.NewReader(buf.Bytes())}
			m, _, err := format.ReadManifest(cr)
			if err != nil {
				t.Fatalf("ReadManifest() = %v", err)
			}
			if m.TotalSize() != size+int64(len(`{"name":"bench"}`)+len(`{"ociVersion":"1.2.0"}`)+len(`[]`)) {
				t.Errorf("manifest lists %d bytes", m.TotalSize())
			}
			if cr.n >= 1<<20 {
				t.Errorf("ReadManifest() read %d of %d bytes, want < 1 MiB", cr.n, buf.Len())
			}
			t.Logf("%s: ReadManifest read %d of %d bytes", c, cr.n, buf.Len())
		})
	}
}

// BenchmarkExtract extracts a -benchsize archive from a file into a fresh
// directory (in the test's temporary directory: use TMPDIR=/dev/shm to
// take the disk out of the figure); MB/s counts member bytes.
// extractArchive writes an archive for BenchmarkExtract: Extract checks
// the CRIU images, so they are the real ones of testdata/ckpt's counter
// (small), and the bulk of -benchsize is the container layer and a
// volume, which Extract writes as they are. It returns the file and its
// members' total size.
func extractArchive(b *testing.B, c format.Compression) (string, int64) {
	b.Helper()
	f, err := os.Open("../testdata/ckpt/counter.tar.zst")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := format.NewReader(f, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer zr.Close()
	members := map[string]format.Source{}
	var total int64
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if h.Kind == format.KindRootfsDiff || h.Kind == format.KindVolume {
			continue
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			b.Fatal(err)
		}
		members[h.Name], total = format.BytesSource(data), total+int64(len(data))
	}
	bulk := max(*benchSize-total, 2)
	gen := func(seed uint64, n int64) format.Source {
		return format.StreamSource(func(w io.Writer) error {
			_, err := io.Copy(w, newGen(seed, n))
			return err
		})
	}
	members[format.RootfsDiffName], members["volumes/data.tar"] = gen(3, bulk/2), gen(4, bulk-bulk/2)
	file := filepath.Join(b.TempDir(), "extract."+string(c)+".ckpt")
	out, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	zw := format.NewWriter(out, format.Manifest{Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Engine: format.Engine{Name: "bench"}}, &format.WriterOptions{Compression: c})
	for name, src := range members {
		if err := zw.Add(name, src); err != nil {
			b.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return file, total + bulk
}

func BenchmarkExtract(b *testing.B) {
	for _, c := range compressions {
		b.Run(string(c), func(b *testing.B) {
			file, size := extractArchive(b, c)
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				dir, err := os.MkdirTemp(b.TempDir(), "x")
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Open(file)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := format.Extract(context.Background(), f, dir, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				f.Close()
				os.RemoveAll(dir)
				b.StartTimer()
			}
		})
	}
}
