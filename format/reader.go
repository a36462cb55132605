package format

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReaderOptions configure a Reader. The zero value, or nil, means the
// package limits and the default decoder concurrency.
type ReaderOptions struct {
	// MaxMemberSize lowers MaxMemberSize for this reader when positive.
	MaxMemberSize int64
	// MaxTotalSize lowers MaxTotalSize (the sum of member sizes, i.e. the
	// decompressed size) when positive.
	MaxTotalSize int64
	// MaxMembers lowers MaxMembers when positive.
	MaxMembers int
	// Concurrency is how many goroutines decompress zstd; 0 means
	// min(4, GOMAXPROCS). 1 decodes synchronously and reads no further
	// ahead than needed, which is what ReadManifest uses.
	Concurrency int
	// RequireManifest refuses legacy archives with ErrNoManifest.
	RequireManifest bool
	// Skim makes a legacy archive cheap to list: the content of a member
	// that the caller leaves unread is passed over, not hashed (the
	// synthesized manifest lists it with its header size and no digest),
	// by seeking when the archive is uncompressed and the source given to
	// NewReader is an io.Seeker (an *os.File), by decompressing and
	// discarding it otherwise. A v1 archive is read as without it.
	Skim bool

	// collect makes checksum, missing and unlisted member problems
	// non-fatal: they are recorded for Verify and reading goes on.
	collect bool
}

func (o *ReaderOptions) resolve() ReaderOptions {
	var r ReaderOptions
	if o != nil {
		r = *o
	}
	if r.MaxMemberSize <= 0 || r.MaxMemberSize > MaxMemberSize {
		r.MaxMemberSize = MaxMemberSize
	}
	if r.MaxTotalSize <= 0 || r.MaxTotalSize > MaxTotalSize {
		r.MaxTotalSize = MaxTotalSize
	}
	if r.MaxMembers <= 0 || r.MaxMembers > MaxMembers {
		r.MaxMembers = MaxMembers
	}
	if r.Concurrency <= 0 {
		r.Concurrency = defaultConcurrency()
	}
	return r
}

// Header describes the member a Reader is positioned at.
type Header struct {
	// Name is the member's name (without a trailing slash for directories).
	Name string
	// Kind is KindOf(Name).
	Kind Kind
	// Size is the member's length; 0 for directories and links.
	Size int64
	// Digest is the manifest's digest of the member; empty in legacy mode,
	// where the Reader computes it while the member is read (see Manifest).
	Digest Digest
	// Typeflag is tar.TypeReg, or in legacy archives also tar.TypeDir, or
	// tar.TypeSymlink for ParentLinkName.
	Typeflag byte
	// Linkname is the symlink target (ParentLinkTarget) for a symlink.
	Linkname string
	// Part numbers the entries of a member stored in parts (a streamed
	// archive's pages image, see PartSize): 0 for its first entry, which
	// creates it, k for the entry that continues it with more content.
	Part int
	// ModTime is the tar header's modification time: the manifest's
	// creation time in a v1 archive; in a legacy archive, unverified, when
	// the engine wrote the member (podman writes config.dump right before
	// CRIU dumps).
	ModTime time.Time
}

// Reader reads an archive sequentially, like archive/tar's Reader: Next
// advances to the next member, Read reads its content through a verifying
// reader. Read returns io.EOF at the member's end only after its size and
// digest matched the manifest; otherwise it returns an error wrapping
// ErrChecksum. Next returns io.EOF after the last member once the archive's
// end is checked: no member missing, proper end blocks, nothing but zero
// padding after them.
//
// The caller must call Close to release the decompressor.
type Reader struct {
	opts   ReaderOptions
	src    *countingReader
	dec    io.ReadCloser
	zc     *zeroCounter
	tr     *tar.Reader
	comp   Compression
	legacy bool

	man       *Manifest
	manDigest Digest
	next      int         // v1: index in man.Members of the next expected member
	pending   *tar.Header // legacy: the first header, already read
	seeker    io.Seeker   // Skim: the uncompressed source, read directly
	skipLeft  int64       // Skim: content and padding of the current member in the source, curN of it read
	names     *nameSet
	count     int
	total     int64
	dataEnd   int64 // decompressed offset where the last member's data ended

	stream *streamRead // v2 (streamed): what the index must list

	impliedDirs map[string]bool // v1: parent directories of listed members
	dirsSeen    map[string]bool // v1: directory entries read

	cur      *Header
	curWant  *Member // v1: the manifest entry of cur
	curHash  hash.Hash
	curN     int64
	curDone  bool
	problems []error // collect mode

	// err is the first fatal error; every later call returns it (the rule
	// of archive/tar's Reader.err).
	err error
}

// NewReader detects the compression of r, reads the first member and, if
// it is the manifest, parses and validates it. For a legacy archive (first
// member not the manifest) it returns a Reader whose Legacy reports true,
// unless opts.RequireManifest is set.
func NewReader(r io.Reader, opts *ReaderOptions) (*Reader, error) {
	zr := &Reader{opts: opts.resolve(), names: newNameSet()}
	zr.src = &countingReader{r: r}
	br := bufio.NewReaderSize(zr.src, 4096)
	c, err := detect(br)
	if err != nil {
		return nil, &Error{Op: "read", Err: err}
	}
	zr.comp = c.name
	dec, err := c.newReader(br, zr.opts.Concurrency)
	if err != nil {
		return nil, &Error{Op: "read", Err: err}
	}
	if zr.opts.Skim && c == noneCodec {
		// Reading the source directly, without detect's buffer, is what
		// lets the position be moved past a member's content.
		if s, ok := r.(io.Seeker); ok {
			if _, err := s.Seek(-int64(br.Buffered()), io.SeekCurrent); err == nil {
				zr.src.n -= int64(br.Buffered())
				zr.seeker, dec = s, io.NopCloser(zr.src)
			}
		}
	}
	zr.dec = dec
	zr.zc = &zeroCounter{r: dec}
	zr.tr = tar.NewReader(zr.zc)
	hdr, err := zr.nextTar()
	if err != nil {
		zr.Close()
		if errors.Is(err, io.EOF) {
			err = errorf(ErrFormat, "empty archive")
		}
		return nil, &Error{Op: "read", Err: err}
	}
	if hdr.Name != ManifestName {
		if zr.opts.RequireManifest {
			zr.Close()
			return nil, &Error{Op: "read", Err: errorf(ErrNoManifest, "first member is %q, not %s", truncate(hdr.Name, 100), ManifestName)}
		}
		zr.legacy = true
		zr.pending = hdr
		zr.man = &Manifest{Version: 0, Engine: Engine{Name: "unknown"}}
		if !hdr.ModTime.IsZero() {
			zr.man.Created = hdr.ModTime.UTC()
		}
		return zr, nil
	}
	if err := zr.readManifest(hdr); err != nil {
		zr.Close()
		return nil, &Error{Op: "read", Member: ManifestName, Err: err}
	}
	return zr, nil
}

func (r *Reader) readManifest(hdr *tar.Header) error {
	if err := r.checkHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return errorf(ErrFormat, "manifest is not a regular file")
	}
	if hdr.Size > MaxManifestSize {
		return errorf(ErrTooLarge, "manifest of %d bytes (limit %d)", hdr.Size, MaxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(r.tr, MaxManifestSize+1))
	if err != nil {
		return r.dataErr(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return err
	}
	if int64(len(m.Members)) >= int64(r.opts.MaxMembers) {
		return errorf(ErrTooLarge, "%d members (limit %d)", len(m.Members), r.opts.MaxMembers)
	}
	for _, e := range m.Members {
		if e.Size > r.opts.MaxMemberSize {
			return errorf(ErrTooLarge, "member %q of %d bytes (limit %d)", e.Name, e.Size, r.opts.MaxMemberSize)
		}
	}
	if t := m.TotalSize(); t > r.opts.MaxTotalSize {
		return errorf(ErrTooLarge, "members add up to %d bytes (limit %d)", t, r.opts.MaxTotalSize)
	}
	r.man, r.manDigest = m, DigestBytes(b)
	if m.Version == StreamVersion {
		r.stream = &streamRead{}
	}
	if err := r.checkNormalized(hdr, 0o600); err != nil {
		return err
	}
	r.dataEnd = r.zc.n
	return nil
}

// ReadManifest reads only the manifest of the archive in r: it decodes the
// first member and nothing more. A legacy archive gives ErrNoManifest.
func ReadManifest(r io.Reader) (*Manifest, Digest, error) {
	zr, err := NewReader(r, &ReaderOptions{Concurrency: 1, RequireManifest: true})
	if err != nil {
		return nil, "", err
	}
	defer zr.Close()
	return zr.man, zr.manDigest, nil
}

// Legacy reports whether the archive has no manifest (podman, CRI-O,
// containerd): its contents cannot be verified against digests.
func (r *Reader) Legacy() bool { return r.legacy }

// Compression returns the archive's detected compression.
func (r *Reader) Compression() Compression { return r.comp }

// Manifest returns the archive's manifest. For a legacy archive it is
// synthesized from the members read so far (Version 0, digests computed
// while reading) and complete once Next has returned io.EOF.
func (r *Reader) Manifest() *Manifest { return r.man }

// ManifestDigest returns the digest of the manifest member as stored; empty
// for legacy archives.
func (r *Reader) ManifestDigest() Digest { return r.manDigest }

// BytesRead returns how many bytes the Reader has consumed from its source.
func (r *Reader) BytesRead() int64 { return r.src.n }

// Close releases the decompressor. It does not close the source.
func (r *Reader) Close() error {
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	return nil
}

// problemsSeen returns the problems recorded in collect mode.
func (r *Reader) problemsSeen() []error { return r.problems }

func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// problem records a non-fatal problem in collect mode, or fails.
func (r *Reader) problem(err error) error {
	if r.opts.collect {
		r.problems = append(r.problems, err)
		return nil
	}
	return r.fail(err)
}

// Next advances to the next member and returns its header. The previous
// member's unread content is read and verified first.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.finishCurrent(); err != nil {
		return nil, err
	}
	for {
		var hdr *tar.Header
		var err error
		if r.pending != nil {
			hdr, r.pending = r.pending, nil
		} else {
			hdr, err = r.nextTar()
		}
		if errors.Is(err, io.EOF) {
			if err := r.finish(); err != nil {
				return nil, r.fail(err)
			}
			r.err = io.EOF
			return nil, io.EOF
		}
		if err != nil {
			return nil, r.fail(&Error{Op: "read", Err: err})
		}
		h, skip, err := r.begin(hdr)
		if err != nil {
			return nil, r.fail(&Error{Op: "read", Member: hdr.Name, Err: err})
		}
		if skip {
			continue
		}
		return h, nil
	}
}

// nextTar reads the next tar header, checking that the archive ends with
// its two zero blocks rather than at a truncation point.
func (r *Reader) nextTar() (*tar.Header, error) {
	if err := r.skipContent(); err != nil {
		return nil, err
	}
	// Drain what is left of the previous entry (a member collect mode
	// skipped) before marking: its content is not end-of-archive padding.
	if _, err := io.Copy(io.Discard, r.tr); err != nil {
		return nil, r.dataErr(err)
	}
	start := r.zc.n
	r.zc.mark()
	hdr, err := r.tr.Next()
	if errors.Is(err, io.EOF) {
		// archive/tar also returns io.EOF when the stream simply stops at a
		// header boundary: require the end blocks (1024 zero bytes after the
		// last member's padding).
		if r.zc.nonZeroSinceMark || r.zc.n-start < 1024 {
			return nil, errorf(ErrFormat, "archive is truncated (no end-of-archive blocks)")
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, r.dataErr(err)
	}
	return hdr, nil
}

// skipContent moves a Skim reader with a seekable source past what is
// left of the current member's content and padding, and starts a tar
// reader at the next header (archive/tar keeps no state across headers
// but the current entry's remaining bytes).
func (r *Reader) skipContent() error {
	if r.seeker == nil || r.skipLeft == 0 {
		return nil
	}
	n := r.skipLeft - r.curN
	if _, err := r.seeker.Seek(n, io.SeekCurrent); err != nil {
		return &sourceError{err}
	}
	r.src.n += n
	r.zc.n += n
	r.skipLeft = 0
	r.tr = tar.NewReader(r.zc)
	return nil
}

// dataErr classifies an error from the tar reader.
func (r *Reader) dataErr(err error) error {
	var se *sourceError
	switch {
	case errors.As(err, &se), errors.Is(err, ErrCompression):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(ErrFormat, "archive is truncated")
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath):
		return errorf(ErrFormat, "%v", err)
	}
	return errorf(ErrFormat, "%v", err)
}

// checkHeader applies the rules every tar header must follow, in both
// modes.
func (r *Reader) checkHeader(hdr *tar.Header) error {
	r.count++
	if r.count > r.opts.MaxMembers {
		return errorf(ErrTooLarge, "more than %d members", r.opts.MaxMembers)
	}
	if hdr.Typeflag == tar.TypeGNUSparse {
		return errorf(ErrFormat, "sparse entries are not allowed")
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return errorf(ErrFormat, "sparse entries are not allowed")
		}
	}
	if hdr.Size < 0 || hdr.Size > r.opts.MaxMemberSize {
		return errorf(ErrTooLarge, "member of %d bytes (limit %d)", hdr.Size, r.opts.MaxMemberSize)
	}
	if r.opts.MaxTotalSize-r.total < hdr.Size {
		return errorf(ErrTooLarge, "members add up to more than %d bytes", r.opts.MaxTotalSize)
	}
	r.total += hdr.Size
	name := hdr.Name
	if r.legacy {
		// Hand-made archives (`tar -C dir .`) prefix every name with "./".
		name = strings.TrimPrefix(name, "./")
	}
	isDir := hdr.Typeflag == tar.TypeDir
	if isDir {
		name = strings.TrimSuffix(name, "/")
	}
	if err := CheckName(name); err != nil {
		return err
	}
	hdr.Name = name
	if r.stream != nil && !isDir && r.stream.continues(name) {
		return nil // a further part of the member before
	}
	return r.names.add(name, isDir)
}

// checkNormalized checks that a v1 member's tar header is normalized as
// the Writer writes it: mode 0600 (0700 for directories), owner 0:0
// without names, modification time equal to the manifest's creation time,
// no access or change time, no link name or device numbers, a USTAR or
// PAX header (not GNU), and PAX records only where USTAR cannot hold the
// name or the size (checkPAX).
func (r *Reader) checkNormalized(hdr *tar.Header, mode int64) error {
	if err := checkPAX(hdr); err != nil {
		return err
	}
	switch {
	case hdr.Mode != mode:
		return errorf(ErrFormat, "tar header mode %#o, want %#o", hdr.Mode, mode)
	case hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "":
		return errorf(ErrFormat, "tar header owner %d:%d (%q:%q), want 0:0 without names", hdr.Uid, hdr.Gid, truncate(hdr.Uname, 40), truncate(hdr.Gname, 40))
	case !hdr.ModTime.Equal(r.man.Created):
		return errorf(ErrFormat, "tar header time %s, want the manifest's creation time %s", hdr.ModTime.UTC().Format(time.RFC3339Nano), r.man.Created.Format(time.RFC3339))
	case !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero():
		return errorf(ErrFormat, "tar header has an access or change time: not in a v1 archive")
	case hdr.Linkname != "" || hdr.Devmajor != 0 || hdr.Devminor != 0:
		return errorf(ErrFormat, "tar header of a file has a link name or device numbers")
	case hdr.Format&tar.FormatGNU != 0:
		return errorf(ErrFormat, "GNU tar header: a v1 archive has USTAR headers (PAX where a name or size needs it)")
	}
	return nil
}

// checkPAX allows in a v1 header only the PAX records the Writer writes:
// "path" for a name USTAR cannot hold, "size" for a size of 8 GiB or more,
// each equal to the header's value. Anything else (extended attributes,
// times, comments, charsets) carries bytes no digest covers.
func checkPAX(hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		switch {
		case k == "path" && formatFor(v, 0) == tar.FormatPAX && strings.TrimSuffix(v, "/") == hdr.Name:
		case k == "size" && hdr.Size > maxUSTARSize && v == strconv.FormatInt(hdr.Size, 10):
		default:
			return errorf(ErrFormat, "PAX record %q is not allowed in a v1 archive", truncate(k, 40))
		}
	}
	return nil
}

// checkDirEntry checks a v1 directory entry: the parent directory of a
// listed member, normalized (mode 0700), at most once, before anything
// inside it.
func (r *Reader) checkDirEntry(hdr *tar.Header) error {
	if r.stream != nil {
		return r.checkStreamedDir(hdr)
	}
	if r.impliedDirs == nil {
		r.impliedDirs = map[string]bool{}
		for _, e := range r.man.Members {
			for d := path.Dir(e.Name); d != "."; d = path.Dir(d) {
				r.impliedDirs[d] = true
			}
		}
		r.dirsSeen = map[string]bool{}
	}
	switch {
	case !r.impliedDirs[hdr.Name]:
		return errorf(ErrFormat, "directory entry %q is not the parent of a listed member", hdr.Name)
	case r.dirsSeen[hdr.Name]:
		return errorf(ErrFormat, "duplicate directory entry %q", hdr.Name)
	case r.next > 0 && strings.HasPrefix(r.man.Members[r.next-1].Name, hdr.Name+"/"):
		return errorf(ErrFormat, "directory entry %q comes after its contents", hdr.Name)
	}
	r.dirsSeen[hdr.Name] = true
	return r.checkNormalized(hdr, 0o700)
}

// begin checks hdr and positions the reader at its content. skip reports a
// member that collect mode recorded as a problem and passed over, or a
// directory entry with nothing to read.
func (r *Reader) begin(hdr *tar.Header) (h *Header, skip bool, err error) {
	if r.legacy && hdr.Typeflag == tar.TypeDir && (hdr.Name == "./" || hdr.Name == ".") {
		// `tar -C dir .` archives start with the directory itself.
		r.count++
		return nil, true, nil
	}
	if err := r.checkHeader(hdr); err != nil {
		return nil, false, err
	}
	h = &Header{Name: hdr.Name, Kind: KindOf(hdr.Name), Size: hdr.Size, Typeflag: hdr.Typeflag, ModTime: hdr.ModTime.UTC()}
	switch hdr.Typeflag {
	case tar.TypeReg: // archive/tar reports TypeRegA as TypeReg (or TypeDir)
		h.Typeflag = tar.TypeReg
	case tar.TypeDir:
		if !r.legacy {
			// Implied directories carry nothing; they are there for tools
			// that expect them (checkpointctl needs checkpoint/).
			return nil, true, r.checkDirEntry(hdr)
		}
		h.Size = 0
		return h, false, nil
	case tar.TypeSymlink:
		if !r.legacy || hdr.Name != ParentLinkName || hdr.Linkname != ParentLinkTarget {
			return nil, false, errorf(ErrFormat, "symlink to %q is not allowed (only %s -> %s in legacy archives)", truncate(hdr.Linkname, 100), ParentLinkName, ParentLinkTarget)
		}
		h.Size, h.Linkname = 0, hdr.Linkname
		return h, false, nil
	default:
		return nil, false, errorf(ErrFormat, "entry type %q is not allowed: only regular files", hdr.Typeflag)
	}
	if r.legacy {
		// A manifest further down means a v1 archive reordered to be read
		// as an unverified legacy one; no legacy writer uses the name.
		if hdr.Name == ManifestName {
			return nil, false, errorf(ErrFormat, "%s is not the first member", ManifestName)
		}
		r.cur, r.curWant, r.curHash, r.curN, r.curDone = h, nil, sha256.New(), 0, false
		r.skipLeft = hdr.Size + (-hdr.Size)&(blockSize-1)
		return h, false, nil
	}
	if err := r.checkNormalized(hdr, 0o600); err != nil {
		return nil, false, err
	}
	if r.stream != nil {
		return r.beginStreamed(hdr, h)
	}
	// v1: members come in manifest order; anything else is unlisted,
	// repeated, or means earlier members are missing.
	idx := r.man.index(hdr.Name)
	var want *Member
	if idx >= 0 {
		want = &r.man.Members[idx]
	}
	switch {
	case idx < 0:
		if err := r.problem(&Error{Op: "read", Member: hdr.Name, Err: errorf(ErrFormat, "member %q is not listed in the manifest", hdr.Name)}); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	case idx < r.next:
		return nil, false, errorf(ErrFormat, "member %q is out of manifest order", hdr.Name)
	case idx > r.next:
		for _, e := range r.man.Members[r.next:idx] {
			if err := r.problem(&Error{Op: "read", Member: e.Name, Err: errorf(ErrFormat, "member listed in the manifest is missing")}); err != nil {
				return nil, false, err
			}
		}
	}
	r.next = idx + 1
	h.Digest = want.Digest
	if hdr.Size != want.Size {
		if err := r.problem(&Error{Op: "read", Member: hdr.Name, Err: errorf(ErrChecksum, "size %d, manifest says %d", hdr.Size, want.Size)}); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	r.cur, r.curWant, r.curHash, r.curN, r.curDone = h, want, sha256.New(), 0, false
	return h, false, nil
}

// Read reads the current member's content. At its end it checks size and
// digest: io.EOF means both matched.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil || r.curDone || r.cur.Typeflag != tar.TypeReg {
		return 0, io.EOF
	}
	n, err := r.tr.Read(p)
	r.curHash.Write(p[:n])
	r.curN += int64(n)
	if err == nil {
		return n, nil
	}
	return n, r.endMember(err)
}

// endMember handles the error that ended the current member's data: at
// io.EOF it checks size and digest and returns io.EOF if both match.
func (r *Reader) endMember(err error) error {
	if !errors.Is(err, io.EOF) {
		return r.fail(&Error{Op: "read", Member: r.cur.Name, Err: r.dataErr(err)})
	}
	r.curDone = true
	r.dataEnd = r.zc.n
	if r.stream != nil {
		// Checked against the index, at the end (beginStreamed).
		r.stream.seen[len(r.stream.seen)-1].Size += r.curN
		return io.EOF
	}
	got := digestOf(r.curHash)
	if r.legacy {
		r.man.Members = append(r.man.Members, Member{Name: r.cur.Name, Kind: r.cur.Kind, Size: r.curN, Digest: got})
		return io.EOF
	}
	if r.curN != r.curWant.Size || got != r.curWant.Digest {
		cerr := &Error{Op: "read", Member: r.cur.Name, Err: errorf(ErrChecksum, "content has digest %s, manifest says %s", got, r.curWant.Digest)}
		if r.opts.collect {
			r.problems = append(r.problems, cerr)
			return cerr
		}
		return r.fail(cerr)
	}
	return io.EOF
}

// WriteTo writes the rest of the current member's content to w, checking
// size and digest at its end like Read; it returns nil when both matched.
// It reads in large buffers; while the next is decompressed, one goroutine
// hashes a buffer and another writes the one before (io.Copy uses it).
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cur == nil || r.curDone || r.cur.Typeflag != tar.TypeReg {
		return 0, nil
	}
	h := r.curHash
	var written int64
	p := newPipeline(pipelineBuffers, func(b []byte) error {
		h.Write(b)
		return nil
	}, func(b []byte) error {
		n, err := w.Write(b)
		written += int64(n)
		if err != nil {
			return &writeError{err}
		}
		return nil
	})
	for {
		b := p.buffer()
		n, err := readFull(r.tr, b)
		r.curN += int64(n)
		if p.send(b[:n]) && err == nil {
			continue
		}
		// Once the pipeline is closed, every byte read is hashed.
		if werr := p.close(); werr != nil {
			// The destination failed. Reading can go on (Next does):
			// what was read is hashed and counted, just not written.
			return written, werr.(*writeError).err
		}
		// err != nil: send fails only after fn did.
		if err := r.endMember(err); !errors.Is(err, io.EOF) {
			return written, err
		}
		return written, nil
	}
}

// writeError marks an error of WriteTo's destination.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// finishCurrent reads and verifies what is left of the current member.
func (r *Reader) finishCurrent() error {
	if r.cur == nil || r.curDone || r.cur.Typeflag != tar.TypeReg {
		return nil
	}
	if r.opts.Skim && r.legacy {
		// Passed over unhashed: nextTar seeks past it or drains it.
		r.curDone = true
		r.man.Members = append(r.man.Members, Member{Name: r.cur.Name, Kind: r.cur.Kind, Size: r.cur.Size})
		return nil
	}
	_, err := io.Copy(io.Discard, r)
	if err != nil && r.err == nil && r.opts.collect && errors.Is(err, ErrChecksum) {
		return nil
	}
	if r.err != nil {
		return r.err
	}
	return err
}

// finish checks the archive's end: every listed member seen, nothing but
// zero padding after the end blocks.
func (r *Reader) finish() error {
	if r.legacy {
		slices.SortFunc(r.man.Members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	}
	if r.stream != nil && !r.stream.indexed {
		return &Error{Op: "read", Member: IndexName, Err: errorf(ErrFormat, "no index: the archive ends without %s (cut while it was streamed?)", IndexName)}
	}
	if !r.legacy && r.stream == nil && r.next < len(r.man.Members) {
		var missing []string
		for _, e := range r.man.Members[r.next:] {
			missing = append(missing, e.Name)
		}
		err := &Error{Op: "read", Member: missing[0], Err: errorf(ErrFormat, "%d member(s) listed in the manifest are missing: %s", len(missing), truncate(strings.Join(missing, ", "), 400))}
		if perr := r.problem(err); perr != nil {
			return perr
		}
	}
	// Only zero padding may follow the end blocks; reading to the end also
	// makes the decompressor check its checksums and trailing frames.
	buf := make([]byte, 32<<10)
	var pad int64
	for {
		n, err := r.zc.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return &Error{Op: "read", Err: errorf(ErrFormat, "trailing data after the end of the archive")}
			}
		}
		pad += int64(n)
		if pad > MaxTrailingPadding {
			return &Error{Op: "read", Err: errorf(ErrFormat, "more than %d bytes of padding after the end of the archive", MaxTrailingPadding)}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &Error{Op: "read", Err: r.dataErr(err)}
		}
	}
}

// zeroCounter counts decompressed bytes and notes whether any byte since
// the last mark was non-zero, to tell end blocks from a truncation.
type zeroCounter struct {
	r                io.Reader
	n                int64
	scanning         bool
	nonZeroSinceMark bool
}

func (z *zeroCounter) mark() { z.scanning, z.nonZeroSinceMark = true, false }

func (z *zeroCounter) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	z.n += int64(n)
	if z.scanning && !z.nonZeroSinceMark {
		for _, b := range p[:n] {
			if b != 0 {
				z.nonZeroSinceMark = true
				break
			}
		}
	}
	return n, err
}
