package fileio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestDirectWriter writes archives of several sizes through a
// DirectWriter, in uneven pieces, patches their start with WriteAt (the
// manifest over its reservation: flushed already, or still in the
// buffer), and checks the file holds exactly what was written.
func TestDirectWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 4095, 4096, 100_000, directBufSize, directBufSize + 1, 3*directBufSize + 12345, 11*directBufSize + 777} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		name := filepath.Join(dir, "archive")
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		var progress int64
		d, err := NewDirectWriter(context.Background(), f, func(n int64) { progress = n })
		if err != nil {
			testutil.Missing(t, "O_DIRECT in %s: %v", dir, err)
		}
		for p := want; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(3<<20))
			if k, err := d.Write(p[:n]); err != nil || k != n {
				t.Fatalf("size %d: Write = %d, %v", size, k, err)
			}
			p = p[n:]
		}
		if size > 0 {
			// The head, as NewFileWriter patches it, and a range across
			// the last flushed byte when there is one.
			patch := bytes.Repeat([]byte{'M'}, min(size, 3000))
			copy(want, patch)
			if _, err := d.WriteAt(patch, 0); err != nil {
				t.Fatalf("size %d: WriteAt(0) = %v", size, err)
			}
			if d.off > 10 && int64(size) > d.off+10 {
				cross := []byte("across the boundary")
				copy(want[d.off-10:], cross)
				if _, err := d.WriteAt(cross, d.off-10); err != nil {
					t.Fatalf("size %d: WriteAt across = %v", size, err)
				}
			}
		}
		if _, err := d.WriteAt([]byte("x"), int64(size)); err == nil {
			t.Errorf("size %d: WriteAt beyond the end succeeded", size)
		}
		if err := d.Finish(); err != nil {
			t.Fatalf("size %d: Finish = %v", size, err)
		}
		d.Release()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("size %d: file of %d bytes differs from the %d written", size, len(got), len(want))
		}
		if progress != int64(size) && size > 0 {
			t.Errorf("size %d: progress reported %d", size, progress)
		}
	}
}

// TestDirectWriterCancel: a canceled context stops the writes.
func TestDirectWriterCancel(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := NewDirectWriter(ctx, f, nil)
	if err != nil {
		testutil.Missing(t, "O_DIRECT: %v", err)
	}
	defer d.Release()
	if _, err := d.Write(make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := d.Write([]byte("more")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write after cancel = %v, want context.Canceled", err)
	}
}

// TestDirectReader reads files of several sizes with O_DIRECT, in uneven
// pieces, and gets their content; closing early stops the read-ahead.
func TestDirectReader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{0, 1, 4096, 5000, directBufSize, directBufSize + 4096, 3*directBufSize + 777, 5 * directBufSize} {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		name := filepath.Join(dir, "archive")
		if err := os.WriteFile(name, want, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := newDirectReader(f)
		if err != nil {
			testutil.Missing(t, "O_DIRECT in %s: %v", dir, err)
		}
		var got []byte
		buf := make([]byte, 1<<20)
		for {
			n, err := d.Read(buf[:1+rng.IntN(len(buf))])
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("size %d: Read = %v", size, err)
			}
		}
		d.close()
		f.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("size %d: read %d bytes, not what was written", size, len(got))
		}
	}
	// Closed after one read: the read-ahead stops.
	f, err := os.Open(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := newDirectReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	d.close()
}

// TestNewSequentialReader: a file in the page cache is read through it;
// one that is not, with O_DIRECT.
func TestNewSequentialReader(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "archive")
	content := bytes.Repeat([]byte("0123456789abcdef"), 2*directBufSize/16)
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Just written: cached.
	if r, done := NewSequentialReader(f, int64(len(content))); r != io.Reader(f) {
		done()
		t.Errorf("a cached archive is read with O_DIRECT (%.0f%% cached)", 100*cachedFraction(f, int64(len(content))))
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	r, done := NewSequentialReader(f, int64(len(content)))
	defer done()
	if _, ok := r.(*directReader); !ok {
		t.Errorf("an archive not cached (%.0f%%) is read through the page cache", 100*cachedFraction(f, int64(len(content))))
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("read %d bytes, %v", len(got), err)
	}
}

// TestDirectWriterENOSPC: a full file system fails the write with ENOSPC,
// at the latest in Finish.
func TestDirectWriterENOSPC(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		testutil.Missing(t, "mount a tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	f, err := os.Create(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := NewDirectWriter(context.Background(), f, nil)
	if err != nil {
		testutil.Missing(t, "O_DIRECT on tmpfs: %v", err)
	}
	defer d.Release()
	var werr error
	for i := 0; i < 4 && werr == nil; i++ {
		_, werr = d.Write(make([]byte, directBufSize))
	}
	if werr == nil {
		werr = d.Finish()
	}
	if !errors.Is(werr, unix.ENOSPC) {
		t.Errorf("writing 16 MiB to a 2 MiB tmpfs: %v, want ENOSPC", werr)
	}
}
