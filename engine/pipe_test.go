package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/format/seal"
)

// pipeTarget is an import reading a pipe, as `ckpt restore -i -` does
// from its stdin.
type pipeTarget struct {
	pw   *os.File // the stream's writing end
	done chan struct{}
	err  error // the import's, once done is closed
}

// wait returns the import's error once it ended.
func (p *pipeTarget) wait() error {
	<-p.done
	return p.err
}

// confirm is an ExportOptions.Confirm: it closes the stream and waits
// for the import at its other end.
func (p *pipeTarget) confirm() error {
	p.pw.Close()
	return p.wait()
}

// pipeImport imports on dst what is written to a real pipe, read
// through in if set; the import closes its end of the pipe as it ends.
func pipeImport(t *testing.T, ctx context.Context, dst *Engine, in func(io.Reader) io.Reader, o *ImportOptions) *pipeTarget {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close() })
	p := &pipeTarget{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var r io.Reader = pr
		if in != nil {
			r = in(pr)
		}
		_, p.err = dst.ImportStream(ctx, r, "stdin", o)
		pr.Close() // the writer sees EPIPE if the import stopped early
	}()
	return p
}

// stagingLeft lists the staging directories left in e's staging bases.
func stagingLeft(e *Engine) []string {
	var left []string
	for _, b := range e.stagingBases() {
		ents, _ := os.ReadDir(b)
		for _, d := range ents {
			left = append(left, filepath.Join(b, d.Name()))
		}
	}
	return left
}

// TestPipeMigrate migrates a counter with a volume and 24 MiB of
// ballast between two engine roots through a pipe, with no file on
// either side: a streamed export into ImportStream, confirmed by the
// import (ExportOptions.Confirm). The source stops only after the target
// restored; the counter goes on there without a gap. Then a v1 archive
// and a sealed-looking stream that is none (a root filesystem tar) go
// through ImportStream too.
func TestPipeMigrate(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-write-files", "-interval", "50ms", "-file", "/data/counter", "-ballast-mb", "24"}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "mig", Command: cmd, Volumes: []string{"pvol:/data"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "mig", "counter 5", func(l string) bool { return lastCounter(l) >= 5 })
	p := pipeImport(t, ctx, dst, nil, nil)
	var confirmed bool
	xr, err := src.Export(ctx, "mig", "-", &ExportOptions{Output: p.pw, Confirm: func() error {
		err := p.confirm()
		confirmed = err == nil
		if c, _ := src.Inspect(ctx, "mig"); c == nil || c.Status != StatusRunning {
			t.Errorf("the source at the target's confirmation: %+v, want running (frozen)", c)
		}
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !confirmed || xr.Container.Status != StatusExited {
		t.Fatalf("confirmed %v, source %s: want confirmed, then exited", confirmed, xr.Container.Status)
	}
	at := lastCounter(logsOf(t, src, "mig"))
	t.Logf("migrated at counter %d in %v (frozen %v), %d bytes; phases %v", at, xr.Total, xr.Frozen, xr.Size, xr.Phases)
	log := waitLog(t, dst, "mig", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
	checkContinues(t, log, at)
	c, err := dst.Inspect(ctx, "mig")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(c.Rootfs, "added.txt")); got != "added by counter\n" {
		t.Errorf("/added.txt = %q", got)
	}
	if left := stagingLeft(dst); len(left) != 0 {
		t.Errorf("staging left after the import: %v", left)
	}

	// A v1 archive (-R, a file) through the pipe, restored as a copy.
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.tar.zst")
	if _, err := dst.Export(ctx, "mig", v1, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(v1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ir, err := src.ImportStream(ctx, f, "stdin", &ImportOptions{Name: "back", IgnoreVolumes: true})
	if err != nil {
		t.Fatal(err)
	}
	if ir.Manifest.Version != format.Version {
		t.Errorf("v1 through the pipe: version %d", ir.Manifest.Version)
	}
	waitLog(t, src, "back", "the copy's counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })

	// A streamed archive whose CPU description this CPU fails, checked
	// while the pages arrive: refused, nothing made.
	v2 := filepath.Join(dir, "v2.tar")
	if _, err := dst.Export(ctx, "mig", v2, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}, Stream: true, Compression: format.None}); err != nil {
		t.Fatal(err)
	}
	foreign := rewriteStream(t, v2, format.CPUInfoName, []byte("\x00\x01garbage"))
	if _, err := importThroughPipe(ctx, src, foreign, &ImportOptions{Name: "cpu", IgnoreVolumes: true}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("ImportStream of a foreign CPU's stream = %v, want ErrIncompatible", err)
	}
	if left := stagingLeft(src); len(left) != 0 {
		t.Errorf("staging left after a refused stream: %v", left)
	}

	// Not an archive: named for what it is, nothing made.
	_, err = dst.ImportStream(ctx, strings.NewReader("hello\n"), "stdin", &ImportOptions{Name: "text"})
	if !errors.Is(err, format.ErrNotCheckpoint) {
		t.Errorf("ImportStream(text) = %v, want ErrNotCheckpoint", err)
	}
	if left := stagingLeft(dst); len(left) != 0 {
		t.Errorf("staging left after a refused stream: %v", left)
	}
}

// cutReader passes the stream on until n bytes, or until the data holds
// at, then ends it, as a pipe whose writer went away.
type cutReader struct {
	r    io.Reader
	n    int64
	at   []byte
	seen bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.seen || c.at == nil && c.n <= 0 {
		return 0, io.EOF
	}
	if c.at == nil && int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	if c.at != nil {
		if i := bytes.Index(p[:n], c.at); i >= 0 {
			c.seen, n = true, i
		}
	}
	c.n -= int64(n)
	return n, err
}

// TestPipeMigrateFaults breaks a confirmed pipe migration at points of
// the stream (the target sees it end there; the source its pipe break):
// in the manifest, mid-pages, at the index; the target refuses from the
// manifest (a name in use, before the pages); after the last byte its
// restore is interrupted or fails in CRIU; and a plain pipe (no
// confirmation) whose target refuses from the manifest. Each time the
// source's container runs on (thawed, its counter going on) and the
// target has no container, staging directory or storage container; then
// an unbroken migration succeeds.
func TestPipeMigrateFaults(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	cmd := []string{"/bin/counter", "-interval", "50ms", "-ballast-mb", "24"}
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "cut", Command: cmd}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Run(ctx, "workload", &RunOptions{Name: "taken", Command: []string{"/bin/counter", "-interval", "1s"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "cut", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	// The target's restore is interrupted as it begins; or CRIU fails
	// (the process' binary is removed from the new container's root).
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	atRestore := &ImportOptions{Phase: func(p string) {
		if p == "restore" {
			cancel()
		}
	}}
	noBinary := &ImportOptions{Phase: func(p string) {
		if p != "restore" {
			return
		}
		c, err := dst.Inspect(ctx, "cut")
		if err == nil {
			err = os.Remove(filepath.Join(c.Rootfs, "bin/counter"))
		}
		if err != nil {
			t.Errorf("remove the binary on the target: %v", err)
		}
	}}
	for _, tc := range []struct {
		name  string
		in    func(io.Reader) io.Reader
		ctx   context.Context
		o     *ImportOptions
		plain bool // no confirmation: a plain pipe
	}{
		{"manifest", func(r io.Reader) io.Reader { return &cutReader{r: r, n: 200} }, ctx, nil, false},
		{"pages", func(r io.Reader) io.Reader { return &cutReader{r: r, n: 6 << 20} }, ctx, nil, false},
		{"index", func(r io.Reader) io.Reader { return &cutReader{r: r, at: []byte(format.IndexName)} }, ctx, nil, false},
		{"name-in-use", nil, ctx, &ImportOptions{Name: "taken"}, false},
		{"restore-cancelled", nil, rctx, atRestore, false},
		{"criu-fails", nil, ctx, noBinary, false},
		// Without confirmation the target refuses from the manifest,
		// before the pages: the source's pipe breaks mid-stream.
		{"plain-name-in-use", nil, ctx, &ImportOptions{Name: "taken"}, true},
	} {
		before := lastCounter(logsOf(t, src, "cut"))
		p := pipeImport(t, tc.ctx, dst, tc.in, tc.o)
		xo := &ExportOptions{Output: p.pw, Compression: format.None, Confirm: p.confirm}
		if tc.plain {
			xo.Confirm = nil
		}
		_, err := src.Export(ctx, "cut", "-", xo)
		p.pw.Close()
		if err == nil {
			t.Fatalf("%s: the export succeeded", tc.name)
		}
		ierr := p.wait()
		if ierr == nil {
			t.Fatalf("%s: the import succeeded", tc.name)
		}
		t.Logf("%s: source: %v; target: %v", tc.name, err, ierr)
		checkStillRunning(t, src, "cut")
		if lastCounter(logsOf(t, src, "cut")) <= before {
			t.Errorf("%s: the source's counter did not go on", tc.name)
		}
		noLeftovers(t, dst, 1)
		if left := stagingLeft(dst); len(left) != 0 {
			t.Errorf("%s: staging left on the target: %v", tc.name, left)
		}
	}
	p := pipeImport(t, ctx, dst, nil, nil)
	if _, err := src.Export(ctx, "cut", "-", &ExportOptions{Output: p.pw, Confirm: p.confirm}); err != nil {
		t.Fatalf("the migration after the faults: %v", err)
	}
	noLeftovers(t, dst, 2)
}

// importThroughPipe imports the archive at path through a pipe, as
// `cat path | ckpt restore -i -`.
func importThroughPipe(ctx context.Context, e *Engine, path string, o *ImportOptions) (*ImportResult, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	go func() {
		f, err := os.Open(path)
		if err == nil {
			_, _ = io.Copy(pw, f)
			f.Close()
		}
		pw.Close()
	}()
	defer pr.Close()
	return e.ImportStream(ctx, pr, "stdin", o)
}

// TestPipeSealed migrates a counter through a pipe as a sealed streamed
// archive (`checkpoint -e - --encrypt-to KEY | restore -i - --decrypt-key
// KEY`), confirmed; a sealed v1 archive piped in without its key or with
// another is refused before any staging directory exists.
func TestPipeSealed(t *testing.T) {
	t.Parallel()
	src, dst := realEngine(t), realEngine(t)
	ctx := context.Background()
	priv, wrong, to := sealKeys(t)
	if _, err := src.Run(ctx, "workload", &RunOptions{Name: "sp", Command: []string{"/bin/counter", "-interval", "50ms"}}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, src, "sp", "counter 3", func(l string) bool { return lastCounter(l) >= 3 })
	v1 := filepath.Join(t.TempDir(), "sp.sealed")
	if _, err := src.Export(ctx, "sp", v1, &ExportOptions{CheckpointOptions: CheckpointOptions{LeaveRunning: true}, SealTo: to}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ids  []age.Identity
		want error
	}{
		{"no key", nil, seal.ErrNoKey},
		{"wrong key", identities(t, wrong), seal.ErrWrongKey},
	} {
		_, err := importThroughPipe(ctx, dst, v1, &ImportOptions{Identities: c.ids})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if _, serr := os.Stat(filepath.Join(dst.root(), "import")); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s: the import directory exists (%v): something was staged before the key was checked", c.name, serr)
		}
		noLeftovers(t, dst, 0)
	}

	p := pipeImport(t, ctx, dst, nil, &ImportOptions{Identities: identities(t, priv)})
	xr, err := src.Export(ctx, "sp", "-", &ExportOptions{Output: p.pw, SealTo: to, Confirm: p.confirm})
	if err != nil {
		t.Fatal(err)
	}
	if xr.Container.Status != StatusExited {
		t.Errorf("the source after a confirmed sealed migration: %s, want exited", xr.Container.Status)
	}
	at := lastCounter(logsOf(t, src, "sp"))
	waitLog(t, dst, "sp", "the counter to go on", func(l string) bool { return lastCounter(l) >= at+3 })
}

// rewriteStream writes a copy of the streamed archive at path, a valid
// one (its own index), with member name's content replaced by data.
func rewriteStream(t *testing.T, path, name string, data []byte) string {
	t.Helper()
	zr := openArchive(t, path)
	type member struct {
		name string
		data []byte
	}
	var members []member
	for {
		h, err := zr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == format.IndexName || h.Typeflag == tar.TypeDir {
			continue
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(members); n > 0 && members[n-1].name == h.Name {
			members[n-1].data = append(members[n-1].data, b...) // a part
			continue
		}
		members = append(members, member{h.Name, b})
	}
	out := filepath.Join(t.TempDir(), "rewritten.tar")
	of, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	sw, err := format.NewStreamWriter(of, *zr.Manifest(), &format.WriterOptions{Compression: format.None})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.name == name {
			m.data = data
		}
		if err := sw.AddBytes(m.name, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
