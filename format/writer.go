package format

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// Source yields a member's content. Open is called twice: once to measure
// and digest the content before the manifest is written, once to copy it
// into the archive (only the second when [Writer.SetSum] gave the sum, or
// when a [NewFileWriter] knows every size).
// Both reads must give the same bytes; the writer checks (CRC-32C of both
// reads, or against the sum) and fails with ErrSourceChanged otherwise.
type Source interface {
	Open() (io.ReadCloser, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func() (io.ReadCloser, error)

// Open calls f.
func (f SourceFunc) Open() (io.ReadCloser, error) { return f() }

// BytesSource returns a Source of b.
func BytesSource(b []byte) Source { return bytesSource(b) }

// FileSource returns a Source reading the regular file at name. It refuses
// a symlink or a non-regular file.
func FileSource(name string) Source { return fileSource(name) }

// StreamSource returns a Source whose content gen writes, e.g. an inner tar
// generated on the fly: nothing is written to disk, gen runs once per Open
// and must be deterministic.
func StreamSource(gen func(w io.Writer) error) Source {
	return SourceFunc(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(gen(pw)) }()
		return pr, nil
	})
}

// WriterOptions configure a Writer. The zero value, or nil, means zstd at
// its default level with up to 4 goroutines.
type WriterOptions struct {
	// Compression is the outer compression; empty means Zstd.
	Compression Compression
	// Level is the compression level in the codec's own scale (zstd 1–22,
	// gzip 1–9); 0 means the codec's default.
	Level int
	// Concurrency is how many goroutines digest members and compress
	// frames of the archive's body; 0 means min(4, GOMAXPROCS). Output does
	// not depend on it. Memory grows with it: two 8 MiB buffers per
	// goroutine and a few more.
	Concurrency int
}

// Writer writes a v1 archive. Members are added with Add (or AddBytes,
// AddFile, AddDir) and written, manifest first, by Close: a manifest-first
// archive needs every member's digest before the first byte is written, so
// Close reads each Source twice (see Source), unless SetSum gave the
// member's sum, or unless the Writer is a NewFileWriter's, which can write
// the manifest last, over a placeholder. Nothing is staged on disk. In a compressed archive the
// manifest has a frame of its own and the rest is cut in frames of 8 MiB
// of tar stream, compressed in parallel (WriterOptions.Concurrency).
//
// A Writer enforces the reader's rules on every call, so a successful Close
// produces an archive that Reader and Verify accept. Errors are sticky.
type Writer struct {
	w       io.Writer
	at      io.WriterAt // NewFileWriter's file
	opts    WriterOptions
	codec   *codec // opts.Compression's
	header  Manifest
	entries []*entry
	byName  map[string]*entry
	names   *nameSet
	closed  bool
	result  *Manifest
	digest  Digest
	// err is the first error; once set, every method returns it
	// (the same rule as archive/tar's Writer.err).
	err error
}

type entry struct {
	name   string
	src    Source
	sum    Sum
	summed bool // sum is known (SetSum or the digest pass)
	// later gives the sum of a member whose size alone is known before
	// Close (SetSumFunc); nil once called.
	later func() (Sum, error)
}

// NewWriter returns a Writer that writes an archive to w, with the
// container, host and option fields of header (its Version and Members are
// ignored; a zero Created means now).
func NewWriter(w io.Writer, header Manifest, opts *WriterOptions) *Writer {
	zw := &Writer{w: w, header: header, names: newNameSet(), byName: map[string]*entry{}}
	if opts != nil {
		zw.opts = *opts
	}
	if zw.opts.Compression == "" {
		zw.opts.Compression = Zstd
	}
	if zw.opts.Concurrency <= 0 {
		zw.opts.Concurrency = defaultConcurrency()
	}
	if _, err := ParseCompression(string(zw.opts.Compression)); err != nil {
		zw.err = err
	}
	zw.codec = codecOf(zw.opts.Compression)
	zw.header.Options.Compression = string(zw.opts.Compression)
	return zw
}

// Add adds the member name with content from src. name must pass CheckName
// and be a v1 member name (KindOf(name) != KindOther), and must not repeat
// or collide with an earlier name.
func (w *Writer) Add(name string, src Source) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriteAfterClose
	}
	if err := CheckName(name); err != nil {
		return &Error{Op: "write", Member: name, Err: err}
	}
	if name == ManifestName || KindOf(name) == KindOther {
		return &Error{Op: "write", Member: name, Err: errorf(ErrFormat, "not a v1 member name")}
	}
	if len(w.entries) >= MaxMembers-1 {
		return &Error{Op: "write", Member: name, Err: errorf(ErrTooLarge, "more than %d members", MaxMembers)}
	}
	if err := w.names.add(name, false); err != nil {
		return &Error{Op: "write", Member: name, Err: err}
	}
	e := &entry{name: name, src: src}
	w.entries = append(w.entries, e)
	w.byName[name] = e
	return nil
}

// SetSum gives the sum of the content of the member name, added before,
// so that Close takes its size and digest from sum instead of reading the
// member's Source a first time. Close still reads the Source once to write
// it, checks its size and CRC-32C against sum, and fails with
// ErrSourceChanged if they differ; the output is then incomplete and must
// be discarded.
func (w *Writer) SetSum(name string, sum Sum) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriteAfterClose
	}
	if sum.digest == "" || sum.size < 0 {
		return &Error{Op: "write", Member: name, Err: errors.New("sum not made by a Summer")}
	}
	if sum.size > MaxMemberSize {
		return &Error{Op: "write", Member: name, Err: errorf(ErrTooLarge, "member larger than %d bytes", int64(MaxMemberSize))}
	}
	e := w.byName[name]
	if e == nil {
		return &Error{Op: "write", Member: name, Err: errors.New("set sum of a member not added")}
	}
	e.sum, e.summed = sum, true
	return nil
}

// SetSumFunc is SetSum for a sum that another goroutine is still
// computing, e.g. of a file that another program has just finished
// writing: size is the content's length, known now; sum is called once,
// when Close needs the digest: a NewFileWriter's single pass calls it
// after copying the member (so the copy and the end of the summing
// overlap), the two-pass writer before writing the manifest. Close checks
// the size and CRC-32C of what it copied against the sum, as for SetSum,
// and fails with sum's error if it has one.
func (w *Writer) SetSumFunc(name string, size int64, sum func() (Sum, error)) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriteAfterClose
	}
	if size < 0 || sum == nil {
		return &Error{Op: "write", Member: name, Err: errors.New("SetSumFunc needs a size and a function")}
	}
	if size > MaxMemberSize {
		return &Error{Op: "write", Member: name, Err: errorf(ErrTooLarge, "member larger than %d bytes", int64(MaxMemberSize))}
	}
	e := w.byName[name]
	if e == nil {
		return &Error{Op: "write", Member: name, Err: errors.New("set sum of a member not added")}
	}
	e.sum, e.summed, e.later = Sum{size: size}, false, sum
	return nil
}

// resolve calls e's sum function, if any.
func (e *entry) resolve() error {
	if e.later == nil {
		return nil
	}
	s, err := e.later()
	e.later = nil
	if err != nil {
		return &Error{Op: "write", Member: e.name, Err: err}
	}
	if s.digest == "" || s.size != e.sum.size {
		return &Error{Op: "write", Member: e.name, Err: errorf(ErrSourceChanged, "sum of %d bytes for a member of %d", s.size, e.sum.size)}
	}
	e.sum, e.summed = s, true
	return nil
}

// AddBytes adds the member name with content b.
func (w *Writer) AddBytes(name string, b []byte) error { return w.Add(name, BytesSource(b)) }

// AddFile adds the member name with the content of the regular file at
// file.
func (w *Writer) AddFile(name, file string) error {
	if w.err == nil && !w.closed {
		fi, err := os.Lstat(file)
		if err != nil {
			return &Error{Op: "write", Member: name, Err: err}
		}
		if !fi.Mode().IsRegular() {
			return &Error{Op: "write", Member: name, Err: fmt.Errorf("%s is not a regular file", file)}
		}
	}
	return w.Add(name, FileSource(file))
}

// AddDir adds every regular file directly in dir as prefix/<file name>
// (prefix is CheckpointDir or PreCheckpointDir for CRIU images). A symlink
// called "parent" (CRIU's link to parent images) is skipped: the manifest's
// Parent records it. Any other symlink, subdirectory or special file is an
// error.
func (w *Writer) AddDir(prefix, dir string) error {
	if w.err != nil {
		return w.err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("add %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.Name() == "parent" && e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("add %s: %s is not a regular file", dir, e.Name())
		}
		if err := w.AddFile(prefix+"/"+e.Name(), dir+"/"+e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// Close digests every member, writes the manifest and the members, and
// ends the compression. It does not close the underlying writer. On error
// the output is incomplete and must be discarded.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrWriteAfterClose
	}
	w.closed = true
	w.err = w.write()
	return w.err
}

// Manifest returns the manifest written and the digest of its bytes as
// stored (what a child checkpoint's Parent.Manifest refers to). It is nil
// before a successful Close.
func (w *Writer) Manifest() (*Manifest, Digest) { return w.result, w.digest }

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (w *Writer) write() error {
	slices.SortFunc(w.entries, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	m := w.header
	m.Version = Version
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.Created = m.Created.UTC().Truncate(time.Second)
	w.byName = nil
	if w.at != nil && w.codec.singlePass() {
		if ok, err := w.sizeAll(); err != nil {
			return err
		} else if ok {
			return w.writeSingle(m)
		}
		for _, e := range w.entries {
			if !e.summed && e.later == nil {
				e.sum = Sum{}
			}
		}
	}
	// The two passes need every digest before the manifest.
	for _, e := range w.entries {
		if err := e.resolve(); err != nil {
			return err
		}
	}
	if err := w.digestAll(); err != nil {
		return err
	}
	mb, err := w.manifestBytes(&m, func(e *entry) Digest { return e.sum.digest })
	if err != nil {
		return err
	}
	// The manifest gets a compression frame of its own.
	head, err := manifestFrame(w.codec, w.opts.Level, mb, m.Created)
	if err != nil {
		return err
	}
	if _, err := w.w.Write(head); err != nil {
		return err
	}
	sw := &switchWriter{}
	if err := w.writeBody(tar.NewWriter(sw), sw, m.Created); err != nil {
		return err
	}
	w.result, w.digest = &m, DigestBytes(mb)
	return nil
}

// manifestBytes fills m's members from the entries, their sizes and the
// digests digest gives, and returns the manifest's JSON, checking the
// total and manifest size limits.
func (w *Writer) manifestBytes(m *Manifest, digest func(e *entry) Digest) ([]byte, error) {
	m.Members = make([]Member, len(w.entries))
	var total int64
	for i, e := range w.entries {
		m.Members[i] = Member{Name: e.name, Kind: KindOf(e.name), Size: e.sum.size, Digest: digest(e)}
		if MaxTotalSize-total < e.sum.size {
			return nil, &Error{Op: "write", Member: e.name, Err: errorf(ErrTooLarge, "members add up to more than %d bytes", int64(MaxTotalSize))}
		}
		total += e.sum.size
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, &Error{Op: "write", Member: ManifestName, Err: err}
	}
	if len(mb) > MaxManifestSize {
		return nil, &Error{Op: "write", Member: ManifestName, Err: errorf(ErrTooLarge, "manifest of %d bytes (limit %d)", len(mb), MaxManifestSize)}
	}
	return mb, nil
}

// digestAll reads every source without a sum once to learn its size,
// digest and CRC.
func (w *Writer) digestAll() error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan *entry)
	)
	for range min(w.opts.Concurrency, max(1, len(w.entries))) {
		wg.Go(func() {
			for e := range next {
				if err := e.measure(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, e := range w.entries {
		if !e.summed {
			next <- e
		}
	}
	close(next)
	wg.Wait()
	return firstErr
}

func (e *entry) measure() (err error) {
	rc, err := e.src.Open()
	if err != nil {
		return &Error{Op: "write", Member: e.name, Err: err}
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = &Error{Op: "write", Member: e.name, Err: cerr}
		}
	}()
	// The reads and the CRC here, sha256 in a goroutine of its own.
	sha := sha256.New()
	var crc uint32
	p := newPipeline(pipelineBuffers, func(b []byte) error {
		sha.Write(b)
		return nil
	})
	n, err := p.pump(rc, MaxMemberSize+1, func(b []byte) { crc = crc32.Update(crc, crcTable, b) })
	if err != nil {
		return &Error{Op: "write", Member: e.name, Err: err}
	}
	if n > MaxMemberSize {
		return &Error{Op: "write", Member: e.name, Err: errorf(ErrTooLarge, "member larger than %d bytes", int64(MaxMemberSize))}
	}
	e.sum, e.summed = Sum{size: n, digest: digestOf(sha), crc: crc}, true
	return nil
}

// writeBody writes the members into tw, switching sw, tw's output, to the
// body's frames: cut every frameSize of tar stream and compressed in
// parallel (WriterOptions.Concurrency).
func (w *Writer) writeBody(tw *tar.Writer, sw *switchWriter, mtime time.Time) error {
	var enc io.WriteCloser = nopWriteCloser{w.w}
	if w.codec.newWriter != nil {
		enc = newFrameWriter(w.w, w.codec, w.opts.Level, w.opts.Concurrency)
	}
	sw.w = enc
	dirs := map[string]bool{}
	for _, e := range w.entries {
		// Each parent directory gets an entry before its first member:
		// checkpointctl looks for the checkpoint/ entry.
		err := writeDirs(tw, path.Dir(e.name), dirs, mtime)
		if err == nil {
			err = w.copyEntry(tw, sw, e, mtime)
		}
		if err != nil {
			enc.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		enc.Close()
		return err
	}
	return enc.Close()
}

// copyEntry writes member e into tw, reading its Source once: the reads
// here, the copy into the tar stream in a goroutine of its own (the frames
// are compressed in others). With e's sum known it checks the size and
// CRC-32C against it; otherwise (a NewFileWriter's single pass, the size
// known) it computes the digest in another goroutine and sets the sum. A
// file with its sum known, in zstd frames, goes to copyFramed instead.
func (w *Writer) copyEntry(tw *tar.Writer, sw *switchWriter, e *entry, mtime time.Time) (err error) {
	rc, err := e.src.Open()
	if err != nil {
		return &Error{Op: "write", Member: e.name, Err: err}
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = &Error{Op: "write", Member: e.name, Err: cerr}
		}
	}()
	fw, framed := sw.w.(*frameWriter)
	f, isFile := rc.(*os.File)
	if framed && isFile && w.codec.writeStored != nil && (e.summed || e.later != nil) {
		return w.copyFramed(tw, sw, fw, e, f, mtime)
	}
	if err := tw.WriteHeader(header(e.name, e.sum.size, mtime)); err != nil {
		return err
	}
	var stages []func([]byte) error
	sha := sha256.New()
	checked := e.summed || e.later != nil // a sum to check the copy against
	if !checked {
		stages = append(stages, func(b []byte) error {
			sha.Write(b)
			return nil
		})
	}
	// Only a second read has a CRC to compare.
	var dst io.Writer = tw
	cw := &crcWriter{w: tw}
	if checked {
		dst = cw
	}
	stages = append(stages, func(b []byte) error {
		_, err := dst.Write(b)
		return err
	})
	n, err := newPipeline(pipelineBuffers, stages...).pump(rc, e.sum.size+1, nil)
	switch {
	case errors.Is(err, tar.ErrWriteTooLong) || err == nil && n != e.sum.size:
		return &Error{Op: "write", Member: e.name, Err: errorf(ErrSourceChanged, "size changed from %d", e.sum.size)}
	case err != nil:
		return &Error{Op: "write", Member: e.name, Err: err}
	}
	if err := e.resolve(); err != nil {
		return err
	}
	if e.summed && cw.crc != e.sum.crc {
		return &Error{Op: "write", Member: e.name, Err: errorf(ErrSourceChanged, "content changed between reads")}
	}
	if !e.summed {
		e.sum, e.summed = Sum{size: n, digest: digestOf(sha)}, true
	}
	return nil
}

// copyFramed is copyEntry for a member read from file f whose sum is
// known (a CRC-32C to check the copy against), into zstd frames: the
// bytes up to the first frame boundary and after the last are read
// straight into the frame being filled (frameWriter.fillFrom), each whole
// frame in between into a frame buffer of its own, or it comes compressed
// from a lookahead (lookahead.go) started once the in-order pass has
// handed over its first frames (lookaheadFrom). tw writes
// no part of the member: its header is written by a tar.Writer of its own
// (the same bytes), the content and padding here.
func (w *Writer) copyFramed(tw *tar.Writer, sw *switchWriter, fw *frameWriter, e *entry, f *os.File, mtime time.Time) error {
	// The previous member's padding, then this header.
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := tar.NewWriter(sw).WriteHeader(header(e.name, e.sum.size, mtime)); err != nil {
		return err
	}
	size := e.sum.size
	first := min(size, (frameSize-fw.taken%frameSize)%frameSize)
	c := &framedCopy{w: w, fw: fw, e: e, f: f, first: first, frames: (size - first) / frameSize}
	if err := c.copyRange(0, first); err != nil {
		return err
	}
	if err := c.copyFrames(); err != nil {
		return err
	}
	tail := first + c.frames*frameSize
	if err := c.copyRange(tail, size-tail); err != nil {
		return err
	}
	if n, _ := f.ReadAt(make([]byte, 1), size); n != 0 {
		return c.changed()
	}
	if pad := (blockSize - size%blockSize) % blockSize; pad > 0 {
		if _, err := sw.Write(make([]byte, pad)); err != nil {
			return err
		}
	}
	if err := e.resolve(); err != nil {
		return err
	}
	if c.crc != e.sum.crc {
		return c.fail(errorf(ErrSourceChanged, "content changed between reads"))
	}
	return nil
}

// framedCopy is one copyFramed under way: member e's content, from f,
// going into fw's frames, and the CRC-32C of what went so far.
type framedCopy struct {
	w      *Writer
	fw     *frameWriter
	e      *entry
	f      *os.File
	first  int64 // bytes before the first frame boundary
	frames int64 // whole frames after first
	crc    uint32
	la     *lookahead // nil until the in-order pass reaches lookaheadFrom
}

// framedNext is frame k of a framedCopy: from the lookahead (r), or read
// into a frame buffer (j) in a goroutine while the frame before it is
// handed over.
type framedNext struct {
	r    *lookaheadFrame
	j    *frameJob
	crc  uint32
	err  error
	done chan struct{} // closed when j is read (err set)
}

func (c *framedCopy) fail(err error) error { return &Error{Op: "write", Member: c.e.name, Err: err} }

func (c *framedCopy) changed() error {
	return c.fail(errorf(ErrSourceChanged, "size changed from %d", c.e.sum.size))
}

// copyRange reads n bytes of f at off straight into the frame being
// filled.
func (c *framedCopy) copyRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	crc, err := c.fw.fillFrom(c.f, off, n)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return c.changed()
	case err != nil:
		return c.fail(err)
	}
	c.crc = crc32Combine(c.crc, crc, n)
	return nil
}

// copyFrames hands over the whole frames in order, each one's read going
// on while the one before it is handed over.
func (c *framedCopy) copyFrames() error {
	defer func() {
		if c.la != nil {
			c.la.stop()
		}
	}()
	// A read still going on returns before this does: the frame buffers
	// are freed when the frameWriter closes.
	var cur, nxt *framedNext
	defer func() {
		for _, n := range []*framedNext{cur, nxt} {
			if n != nil && n.j != nil {
				<-n.done
			}
		}
	}()
	for k := range c.frames {
		var err error
		if k == lookaheadFrom && c.frames >= lookaheadMin {
			c.la = startLookahead(c.f, c.first, int(c.frames), int(k), c.w.codec, c.w.opts.Level)
		}
		if cur == nil {
			if cur, err = c.prepare(k); err != nil {
				return err
			}
		}
		// The next frame's buffer first (which may write out the
		// oldest frame) and its read, while this one's goes on.
		nxt = nil
		if k+1 < c.frames {
			if nxt, err = c.prepare(k + 1); err != nil {
				return err
			}
		}
		if cur.j != nil {
			if <-cur.done; cur.err != nil {
				return cur.err
			}
		}
		if cur.r != nil {
			err = c.fw.insert(cur.r.out)
			lookaheadInserts.Add(1)
		} else {
			err = c.fw.commitJob(cur.j)
		}
		if err != nil {
			return err
		}
		c.crc = crc32Combine(c.crc, cur.crc, frameSize)
		cur = nxt
	}
	if c.la != nil {
		c.la.stop()
	}
	return nil
}

// prepare returns frame k: the lookahead's if it has it, else a frame
// buffer whose read it starts.
func (c *framedCopy) prepare(k int64) (*framedNext, error) {
	if c.la != nil {
		if r := c.la.take(int(k)); r != nil {
			return &framedNext{r: r, crc: r.crc}, nil
		}
	}
	j, err := c.fw.newJob()
	if err != nil {
		return nil, err
	}
	n := &framedNext{j: j, done: make(chan struct{})}
	go func() {
		got, err := c.f.ReadAt(j.in, c.first+k*frameSize)
		switch {
		case got == len(j.in):
			n.crc, err = crc32.Update(0, crcTable, j.in), nil
		case err == nil || errors.Is(err, io.EOF):
			err = c.changed()
		default:
			err = c.fail(err)
		}
		n.err = err
		close(n.done)
	}()
	return n, nil
}

// blockSize is tar's block size.
const blockSize = 512

// crcWriter writes to w and keeps the CRC-32C of what it wrote.
type crcWriter struct {
	w   io.Writer
	crc uint32
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, crcTable, p[:n])
	return n, err
}

// writeDirs writes entries for dir and its parents not written yet, top
// down.
func writeDirs(tw *tar.Writer, dir string, done map[string]bool, mtime time.Time) error {
	if dir == "." || done[dir] {
		return nil
	}
	if err := writeDirs(tw, path.Dir(dir), done, mtime); err != nil {
		return err
	}
	done[dir] = true
	name := dir + "/"
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o700, ModTime: mtime, Format: formatFor(name, 0)})
}

// header returns the normalized tar header of a member.
func header(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o600,
		ModTime:  mtime,
		Format:   formatFor(name, size),
	}
}

// maxUSTARSize is the largest size a USTAR header holds (11 octal
// digits); a larger member gets a PAX "size" record.
const maxUSTARSize = 1<<33 - 1

// formatFor picks USTAR when the name and size fit it and PAX otherwise,
// so the choice depends on them alone.
func formatFor(name string, size int64) tar.Format {
	if size > maxUSTARSize {
		return tar.FormatPAX
	}
	if len(name) <= 100 {
		return tar.FormatUSTAR
	}
	if i := strings.LastIndexByte(name[:min(len(name), 156)], '/'); i > 0 && len(name)-i-1 <= 100 {
		return tar.FormatUSTAR
	}
	return tar.FormatPAX
}

// switchWriter lets the tar stream move from one compression frame to the
// next.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }
