package format

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// StreamVersion is the format version of a streamed archive
// (docs/FORMAT.md §10): its manifest comes first without members, and an
// index after the last member lists them with their sizes and digests.
const StreamVersion = 2

// IndexName is the last member of a streamed archive: the index.
const IndexName = "ckpt.index.json"

// PartSize is the most a [StreamWriter] puts in one tar entry of a member
// whose size it learns only at its end (a pages image CRIU is still
// writing): such a member is stored as consecutive entries of the same
// name, its parts.
const PartSize = 8 << 20

// Index is the last member of a streamed archive: the digest of its
// manifest member as stored, and every other member in archive order.
type Index struct {
	Version  int      `json:"version"`
	Manifest Digest   `json:"manifest"`
	Members  []Member `json:"members"`
}

// MayHaveParts reports whether the member name may be stored in several
// parts in a streamed archive: only CRIU's pages images, the one kind of
// member whose size is known only once CRIU has written it.
func MayHaveParts(name string) bool {
	k := KindOf(name)
	if k != KindImage && k != KindPreImage {
		return false
	}
	base := path.Base(name)
	return strings.HasPrefix(base, "pages-") && strings.HasSuffix(base, ".img")
}

// StreamWriter writes a streamed (version 2) archive to a stream in one
// pass: the manifest first, without members, then each member as it is
// added, digested as it is written, and at Close the index. Nothing is
// read twice and nothing is written before the current position, so w may
// be a pipe. Members may come in any order; a name may be added once.
// Errors are sticky.
type StreamWriter struct {
	w      io.Writer
	codec  *codec
	opts   WriterOptions
	body   io.WriteCloser // the frames of the members
	tw     *tar.Writer
	mtime  time.Time
	man    Manifest
	digest Digest // of the manifest member
	names  *nameSet
	dirs   map[string]bool
	index  []Member
	bufs   [][]byte // AddStream's
	closed bool
	err    error
}

// NewStreamWriter writes the manifest of a streamed archive to w, with
// the container, host and option fields of header (its Version and
// Members are ignored; a zero Created means now), and returns the writer
// of its members. gzip is refused: a streamed archive is zstd or plain.
func NewStreamWriter(w io.Writer, header Manifest, opts *WriterOptions) (*StreamWriter, error) {
	s := &StreamWriter{w: w, names: newNameSet(), dirs: map[string]bool{}}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Compression == "" {
		s.opts.Compression = Zstd
	}
	if s.opts.Compression == Gzip {
		return nil, fmt.Errorf("%w: a streamed archive is zstd or uncompressed, not gzip", ErrFormat)
	}
	if s.opts.Concurrency <= 0 {
		s.opts.Concurrency = defaultConcurrency()
	}
	if _, err := ParseCompression(string(s.opts.Compression)); err != nil {
		return nil, err
	}
	c := codecOf(s.opts.Compression)
	s.codec = c
	m := header
	m.Version, m.Members = StreamVersion, nil
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.Created = m.Created.UTC().Truncate(time.Second)
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	head, err := manifestFrame(c, s.opts.Level, mb, m.Created)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(head); err != nil {
		return nil, &Error{Op: "write", Member: ManifestName, Err: err}
	}
	s.man, s.digest, s.mtime = m, DigestBytes(mb), m.Created
	s.body = nopWriteCloser{w}
	if c.newWriter != nil {
		s.body = newFrameWriter(w, c, s.opts.Level, s.opts.Concurrency)
	}
	s.tw = tar.NewWriter(s.body)
	return s, nil
}

// begin checks name before its first entry and writes its parent
// directories' entries.
func (s *StreamWriter) begin(name string) error {
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return ErrWriteAfterClose
	}
	if err := CheckName(name); err != nil {
		return err
	}
	if name == ManifestName || name == IndexName || KindOf(name) == KindOther {
		return fmt.Errorf("%w: %q is not a member name", ErrFormat, name)
	}
	if err := s.names.add(name, false); err != nil {
		return err
	}
	if len(s.index) >= MaxMembers-1 {
		return errorf(ErrTooLarge, "more than %d members", MaxMembers)
	}
	return writeDirs(s.tw, path.Dir(name), s.dirs, s.mtime)
}

// fail records the first error.
func (s *StreamWriter) fail(name string, err error) error {
	if s.err == nil {
		s.err = &Error{Op: "write", Member: name, Err: err}
	}
	return s.err
}

// AddSized adds member name of exactly size bytes read from r, in one
// entry.
func (s *StreamWriter) AddSized(name string, size int64, r io.Reader) error {
	if err := s.begin(name); err != nil {
		return err
	}
	h := sha256.New()
	if err := s.tw.WriteHeader(header(name, size, s.mtime)); err != nil {
		return s.fail(name, err)
	}
	n, err := io.Copy(s.tw, io.TeeReader(io.LimitReader(r, size), h))
	if err == nil && n != size {
		err = fmt.Errorf("%w: %d bytes, %d announced", ErrSourceChanged, n, size)
	}
	if err != nil {
		return s.fail(name, err)
	}
	s.index = append(s.index, Member{Name: name, Kind: KindOf(name), Size: size, Digest: digestOf(h)})
	return nil
}

// AddBytes adds member name with content b.
func (s *StreamWriter) AddBytes(name string, b []byte) error {
	return s.AddSized(name, int64(len(b)), bytes.NewReader(b))
}

// AddFile adds member name with the content of the regular file file.
func (s *StreamWriter) AddFile(name, file string) error {
	size, err := fileSource(file).Size()
	if err != nil {
		return s.fail(name, err)
	}
	f, err := openRegular(file)
	if err != nil {
		return s.fail(name, err)
	}
	defer f.Close()
	return s.AddSized(name, size, f)
}

// AddStream adds member name with everything r gives until io.EOF, its
// size unknown until then: in parts of PartSize bytes, the last one
// shorter, each an entry of its own (MayHaveParts names only), or in one
// entry if it ends within PartSize. A part is digested and written while
// the next is read (two buffers of PartSize).
func (s *StreamWriter) AddStream(name string, r io.Reader) error {
	if err := s.begin(name); err != nil {
		return err
	}
	if s.bufs == nil {
		s.bufs = [][]byte{make([]byte, PartSize), make([]byte, PartSize)}
	}
	free, full := make(chan []byte, 2), make(chan []byte, 1)
	free <- s.bufs[0]
	free <- s.bufs[1]
	h := sha256.New()
	var total int64
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range full {
			if werr == nil {
				werr = s.writePart(name, b, h)
				total += int64(len(b))
			}
			free <- b[:cap(b)]
		}
	}()
	rerr := s.readParts(name, r, free, full)
	close(full)
	<-done
	switch {
	case rerr != nil:
		return s.fail(name, rerr)
	case werr != nil:
		return s.fail(name, werr)
	}
	s.index = append(s.index, Member{Name: name, Kind: KindOf(name), Size: total, Digest: digestOf(h)})
	return nil
}

// readParts reads r into the buffers free gives and sends each part to
// full: at least one, the last shorter than PartSize.
func (s *StreamWriter) readParts(name string, r io.Reader, free <-chan []byte, full chan<- []byte) error {
	for part := 0; ; part++ {
		b := <-free
		n, err := io.ReadFull(r, b)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		switch {
		case err != nil && !last:
			return err
		case part > 0 && n == 0:
			return nil
		case part > 0 && !MayHaveParts(name):
			return errorf(ErrTooLarge, "over %d bytes: only pages images may be streamed in parts", PartSize)
		}
		full <- b[:n]
		if last {
			return nil
		}
	}
}

// writePart writes one entry of member name, summing it into h in a
// goroutine of its own meanwhile: SHA-256 of a part costs about as much
// as handing it to the compressors, and the two need not wait for each
// other.
func (s *StreamWriter) writePart(name string, b []byte, h hash.Hash) error {
	summed := make(chan struct{})
	go func() {
		h.Write(b)
		close(summed)
	}()
	defer func() { <-summed }()
	if err := s.tw.WriteHeader(header(name, int64(len(b)), s.mtime)); err != nil {
		return err
	}
	_, err := s.tw.Write(b)
	return err
}

// Close writes the index, in a compression frame of its own with the end
// blocks, and returns the archive's members in archive order. It does not
// close the underlying writer.
func (s *StreamWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	if s.err != nil {
		s.body.Close()
		return s.err
	}
	if err := s.tw.Flush(); err != nil {
		s.body.Close()
		return s.fail(IndexName, err)
	}
	if err := s.body.Close(); err != nil {
		return s.fail(IndexName, err)
	}
	ib, err := json.MarshalIndent(Index{Version: StreamVersion, Manifest: s.digest, Members: s.index}, "", "  ")
	if err != nil {
		return s.fail(IndexName, err)
	}
	frame, err := memberFrame(s.codec, s.opts.Level, IndexName, append(ib, '\n'), s.mtime, true)
	if err != nil {
		return s.fail(IndexName, err)
	}
	if _, err := s.w.Write(frame); err != nil {
		return s.fail(IndexName, err)
	}
	return nil
}

// Manifest returns the manifest (with its members, sorted by name, once
// Close succeeded) and the digest of the manifest member as stored.
func (s *StreamWriter) Manifest() (*Manifest, Digest) {
	m := s.man
	m.Members = sortedMembers(s.index)
	return &m, s.digest
}

// sortedMembers returns a copy of ms sorted by name, as a manifest lists
// them.
func sortedMembers(ms []Member) []Member {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// streamRead is what a Reader keeps of a streamed archive until its index:
// the members seen, in order, with their sizes and digests.
type streamRead struct {
	seen    []Member
	hash    hash.Hash // of the last member seen
	parts   int       // entries of the last member seen
	indexed bool
}

// continues reports whether an entry named name is a further part of the
// last member.
func (s *streamRead) continues(name string) bool {
	return !s.indexed && len(s.seen) > 0 && s.seen[len(s.seen)-1].Name == name && MayHaveParts(name)
}

// endLast sets the last member's digest.
func (s *streamRead) endLast() {
	if len(s.seen) > 0 && s.hash != nil {
		s.seen[len(s.seen)-1].Digest = digestOf(s.hash)
		s.hash = nil
	}
}

// beginStreamed positions a Reader of a streamed archive at the entry hdr
// (h describes it): a member, a further part of the last one, or the
// index, which it reads and checks.
func (r *Reader) beginStreamed(hdr *tar.Header, h *Header) (*Header, bool, error) {
	s := r.stream
	switch {
	case s.indexed:
		return nil, false, errorf(ErrFormat, "entry %q after the index", truncate(hdr.Name, 100))
	case hdr.Name == IndexName:
		return nil, true, r.readIndex(hdr)
	case hdr.Name == ManifestName || h.Kind == KindOther:
		return nil, false, errorf(ErrFormat, "%q is not a member name", truncate(hdr.Name, 100))
	}
	if s.continues(hdr.Name) {
		h.Part = s.parts
		s.parts++
	} else {
		s.endLast()
		s.seen = append(s.seen, Member{Name: hdr.Name, Kind: h.Kind})
		s.hash, s.parts = sha256.New(), 1
	}
	r.cur, r.curWant, r.curHash, r.curN, r.curDone = h, nil, s.hash, 0, false
	return h, false, nil
}

// checkStreamedDir checks a directory entry of a streamed archive: one of
// the member directories, normalized, at most once.
func (r *Reader) checkStreamedDir(hdr *tar.Header) error {
	switch hdr.Name {
	case CheckpointDir, PreCheckpointDir, VolumesDir:
	default:
		return errorf(ErrFormat, "directory entry %q is not a member directory", truncate(hdr.Name, 100))
	}
	if r.dirsSeen == nil {
		r.dirsSeen = map[string]bool{}
	}
	if r.dirsSeen[hdr.Name] {
		return errorf(ErrFormat, "duplicate directory entry %q", hdr.Name)
	}
	r.dirsSeen[hdr.Name] = true
	return r.checkNormalized(hdr, 0o700)
}

// readIndex reads the index of a streamed archive and checks that it
// lists exactly the members read, in their order, with the sizes and
// digests they had, and the manifest read first. Then the manifest's
// members are the index's, sorted by name.
func (r *Reader) readIndex(hdr *tar.Header) error {
	s := r.stream
	s.endLast()
	s.indexed = true
	if hdr.Size > MaxManifestSize {
		return errorf(ErrTooLarge, "index of %d bytes (limit %d)", hdr.Size, MaxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(r.tr, MaxManifestSize+1))
	if err != nil {
		return r.dataErr(err)
	}
	r.dataEnd = r.zc.n
	idx, err := parseIndex(b, r.man)
	if err != nil {
		return err
	}
	if idx.Manifest != r.manDigest {
		return errorf(ErrChecksum, "the index is of manifest %s, the archive's is %s", idx.Manifest, r.manDigest)
	}
	listed := map[string]*Member{}
	for i := range idx.Members {
		listed[idx.Members[i].Name] = &idx.Members[i]
	}
	for i, got := range s.seen {
		want := listed[got.Name]
		var perr error
		switch {
		case want == nil:
			perr = errorf(ErrFormat, "member %q is not listed in the index", got.Name)
		case i >= len(idx.Members) || idx.Members[i].Name != got.Name:
			perr = errorf(ErrFormat, "member %q is out of index order", got.Name)
		case got.Size != want.Size || got.Digest != want.Digest:
			perr = errorf(ErrChecksum, "content of %d bytes has digest %s, the index says %d bytes, %s", got.Size, got.Digest, want.Size, want.Digest)
		}
		if perr != nil {
			if err := r.problem(&Error{Op: "read", Member: got.Name, Err: perr}); err != nil {
				return err
			}
		}
		delete(listed, got.Name)
	}
	for _, m := range idx.Members {
		if listed[m.Name] != nil {
			if err := r.problem(&Error{Op: "read", Member: m.Name, Err: errorf(ErrFormat, "member listed in the index is missing")}); err != nil {
				return err
			}
		}
	}
	r.man.Members = sortedMembers(idx.Members)
	return nil
}

// parseIndex decodes an index strictly and checks its members as a
// manifest's (names, types, sizes, digests, limits), m giving the rest.
func parseIndex(b []byte, m *Manifest) (*Index, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	idx := new(Index)
	if err := dec.Decode(idx); err != nil {
		return nil, errorf(ErrManifest, "index: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errorf(ErrManifest, "index: trailing data")
	}
	if idx.Version != StreamVersion {
		return nil, errorf(ErrManifest, "index version %d, want %d", idx.Version, StreamVersion)
	}
	check := *m
	check.Version, check.Members = Version, sortedMembers(idx.Members)
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return idx, nil
}

// Add adds member name with the content of src, read once: in one entry
// if src knows its size (BytesSource, FileSource), else as AddStream.
func (s *StreamWriter) Add(name string, src Source) error {
	if sz, ok := src.(Sizer); ok {
		n, err := sz.Size()
		if err != nil {
			return s.fail(name, err)
		}
		rc, err := src.Open()
		if err != nil {
			return s.fail(name, err)
		}
		defer rc.Close()
		return s.AddSized(name, n, rc)
	}
	rc, err := src.Open()
	if err != nil {
		return s.fail(name, err)
	}
	defer rc.Close()
	return s.AddStream(name, rc)
}

// indexWindow is how much of a streamed archive's end ReadIndexAt reads:
// the index's frame must lie within it.
const indexWindow = 512 << 10

// ReadIndexAt reads the members of the streamed archive in r (size bytes
// long) whose manifest m was read first, with digest d (ReadManifest), from
// the index at its end, reading at most indexWindow bytes there: the
// index's frame is the last, the only one that decodes to the index's tar
// entry and the end blocks and that names the manifest d. It returns m
// with the index's members, sorted by name, unverified: only reading
// every member checks them (Verify). ErrFormat means no such frame within
// the window; then only a full read finds the index.
func ReadIndexAt(r io.ReaderAt, size int64, m *Manifest, d Digest) (*Manifest, error) {
	if m.Version != StreamVersion {
		return m, nil
	}
	n := min(size, indexWindow)
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head := make([]byte, 4)
	if _, err := r.ReadAt(head, 0); err != nil {
		return nil, err
	}
	c := codecOf(None)
	if z := codecOf(Zstd); bytes.HasPrefix(head, z.magic) {
		c = z
	}
	step, last := 1, len(tail)-4
	if c.newWriter == nil {
		// A plain tar: the index's header is block-aligned from the end,
		// before its content and the end blocks.
		step, last = 512, len(tail)-1024-512
	}
	magic := c.magic
	for at := last; at >= 0; at-- {
		if step > 1 && (len(tail)-at)%step != 0 || !bytes.HasPrefix(tail[at:], magic) {
			continue
		}
		if idx, err := indexFrom(c, tail[at:], m, d); err == nil {
			out := *m
			out.Members = sortedMembers(idx.Members)
			return &out, nil
		}
	}
	return nil, errorf(ErrFormat, "no index within the last %d bytes of the streamed archive", n)
}

// indexFrom decodes b, which must hold exactly the index's frame.
func indexFrom(c *codec, b []byte, m *Manifest, d Digest) (*Index, error) {
	var rd io.Reader = bytes.NewReader(b)
	if c.newReader != nil {
		dec, err := c.newReader(bufio.NewReader(rd), 1)
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		rd = dec
	}
	tr := tar.NewReader(rd)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != IndexName || hdr.Size > MaxManifestSize {
		return nil, errorf(ErrFormat, "not the index")
	}
	ib, err := io.ReadAll(tr)
	if err != nil {
		return nil, err
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		return nil, errorf(ErrFormat, "not the last entry")
	}
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return nil, err
	}
	idx, err := parseIndex(ib, m)
	if err != nil {
		return nil, err
	}
	if idx.Manifest != d {
		return nil, errorf(ErrFormat, "the index of another manifest")
	}
	return idx, nil
}
