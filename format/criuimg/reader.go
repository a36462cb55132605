package criuimg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Limits of the reader. Each can be lowered per [Reader] with [Limits].
const (
	// MaxEntrySize is the largest protobuf message one entry may hold:
	// 16 MiB. CRIU's largest entries (mm entries of processes with tens of
	// thousands of VMAs) stay well below it.
	MaxEntrySize = 16 << 20
	// MaxEntries is the largest number of entries one image may hold:
	// 4 Mi, enough for the pagemap of a heavily fragmented multi-GiB
	// process. A Reader never keeps entries, so this bounds time, not memory.
	MaxEntries = 4 << 20
)

// Limits lowers the reader's limits. The zero value (or a nil *Limits)
// means the package defaults.
type Limits struct {
	// MaxEntrySize caps the size of one entry's protobuf message; 0 or a
	// value over [MaxEntrySize] means [MaxEntrySize].
	MaxEntrySize int64
	// MaxEntries caps the number of entries in one image; 0 or a value over
	// [MaxEntries] means [MaxEntries].
	MaxEntries int
}

// resolve returns lim with defaults filled in.
func (lim *Limits) resolve() Limits {
	out := Limits{MaxEntrySize: MaxEntrySize, MaxEntries: MaxEntries}
	if lim != nil {
		if lim.MaxEntrySize > 0 && lim.MaxEntrySize < out.MaxEntrySize {
			out.MaxEntrySize = lim.MaxEntrySize
		}
		if lim.MaxEntries > 0 && lim.MaxEntries < out.MaxEntries {
			out.MaxEntries = lim.MaxEntries
		}
	}
	return out
}

// Reader reads the entries of one CRIU image: the header, then a sequence
// of u32 little-endian sizes each followed by a protobuf message of that
// size, and for some images an extra payload after an entry (pipe and FIFO
// data, socket queues, TCP queues, BPF map data, IPC objects, ghost file
// contents), which the Reader skips after checking that it fits.
//
// The Reader trusts nothing in the image: every size is checked against
// the bytes left in the file (as declared to [NewReader]) and against the
// [Limits] before anything is read or allocated, and it never reads past
// the declared size.
type Reader struct {
	name string
	r    io.Reader
	size int64
	lim  Limits

	off      int64 // bytes consumed from r
	entryOff int64 // offset of the last entry's size field
	started  bool  // header read
	info     MagicInfo
	n        int    // entries returned
	buf      []byte // entry buffer, reused
	msgBuf   []byte // buffer for the messages of an ipcns-msg entry
	extra    int64  // extra payload size of the last entry
	chunks   bool   // ghost file stored in chunks: entries after the first are chunks

	// err is sticky: once set, every call returns it.
	err error
}

// NewReader returns a Reader of the image called name (its base name, such
// as "pstree.img", which selects the expected magic and the extra payload
// rules) whose content r yields and whose size is size bytes. A nil lim
// means the default limits.
func NewReader(name string, r io.Reader, size int64, lim *Limits) *Reader {
	return &Reader{name: name, r: r, size: size, lim: lim.resolve()}
}

// Name returns the image name given to [NewReader].
func (r *Reader) Name() string { return r.name }

// Magic reads the image header (if [Reader.Next] has not already) and
// returns it. For raw images it reads nothing.
func (r *Reader) Magic() (MagicInfo, error) {
	if err := r.header(); err != nil {
		return MagicInfo{}, err
	}
	return r.info, nil
}

// Offset returns the byte offset of the last entry returned by
// [Reader.Next] (of its size field).
func (r *Reader) Offset() int64 { return r.entryOff }

// ExtraSize returns the size of the extra payload that followed the last
// entry and was skipped.
func (r *Reader) ExtraSize() int64 { return r.extra }

// Count returns the number of entries returned so far.
func (r *Reader) Count() int { return r.n }

func (r *Reader) fail(off int64, err error) error {
	r.err = fileError(r.name, off, err)
	return r.err
}

func (r *Reader) header() error {
	if r.err != nil {
		return r.err
	}
	if r.started {
		return nil
	}
	r.started = true
	if r.size < 0 {
		return r.fail(-1, fmt.Errorf("check size %d: %w", r.size, ErrImage))
	}
	want, kind := ExpectedMagic(r.name)
	if kind == KindRaw {
		return nil
	}
	n := int64(8)
	if want == "INVENTORY" {
		n = 4
	}
	if r.size < n {
		n = r.size
	}
	var head [8]byte
	if err := r.readFull(head[:n]); err != nil {
		return r.fail(0, fmt.Errorf("read magic: %w", err))
	}
	info, err := Magic(r.name, head[:n])
	if err != nil {
		return r.fail(0, err)
	}
	if int64(info.HeaderSize) < n {
		// An unknown name whose magic turned out to be INVENTORY: the
		// last 4 bytes read are the first entry's size. Push them back.
		r.r = io.MultiReader(bytes.NewReader(append([]byte(nil), head[info.HeaderSize:n]...)), r.r)
		r.off = int64(info.HeaderSize)
	}
	r.info = info
	return nil
}

// readFull reads len(b) bytes, counting them; a short read is ErrTruncated.
func (r *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return err
	}
	return nil
}

// discard skips n bytes, which the caller checked against the size left.
func (r *Reader) discard(n int64) error {
	m, err := io.CopyN(io.Discard, r.r, n)
	r.off += m
	if err != nil {
		if errors.Is(err, io.EOF) {
			return ErrTruncated
		}
		return err
	}
	return nil
}

// Next returns the protobuf message of the next entry. The slice is valid
// until the next call. At the end of the image Next returns io.EOF; every
// other error is an *[Error] naming the image and is sticky. Raw images have
// no entries: Next returns an error wrapping [ErrImage].
func (r *Reader) Next() ([]byte, error) {
	if err := r.header(); err != nil {
		return nil, err
	}
	if r.info.Raw() {
		return nil, r.fail(-1, fmt.Errorf("read entries of raw image: %w", ErrImage))
	}
	r.extra = 0
	if r.off == r.size {
		return nil, io.EOF
	}
	r.entryOff = r.off
	if r.n >= r.lim.MaxEntries {
		return nil, r.fail(r.off, fmt.Errorf("read entry: more than %d entries: %w", r.lim.MaxEntries, ErrTooLarge))
	}
	b, err := r.entry(&r.buf, r.lim.MaxEntrySize)
	if err != nil {
		return nil, r.fail(r.entryOff, err)
	}
	r.n++
	if err := r.skipExtra(b); err != nil {
		return nil, r.fail(r.entryOff, err)
	}
	return b, nil
}

// entryChunk is the step in which entry grows its buffer: an entry's
// declared size is checked against the declared image size, but the
// underlying reader may still end early, so memory follows the data read.
const entryChunk = 1 << 20

// entry reads a u32 size and a message of that size, at most max bytes,
// into *buf.
func (r *Reader) entry(buf *[]byte, max int64) ([]byte, error) {
	left := r.size - r.off
	if left < 4 {
		return nil, fmt.Errorf("read entry size: %d bytes left: %w", left, ErrTruncated)
	}
	var sz [4]byte
	if err := r.readFull(sz[:]); err != nil {
		return nil, fmt.Errorf("read entry size: %w", err)
	}
	n := int64(uint32(sz[0]) | uint32(sz[1])<<8 | uint32(sz[2])<<16 | uint32(sz[3])<<24)
	if n > max {
		return nil, fmt.Errorf("read entry: size %d over limit %d: %w", n, max, ErrTooLarge)
	}
	if n > left-4 {
		return nil, fmt.Errorf("read entry: size %d, %d bytes left: %w", n, left-4, ErrTruncated)
	}
	b := (*buf)[:0]
	for int64(len(b)) < n {
		step := min(n-int64(len(b)), entryChunk)
		b = slices.Grow(b, int(step))
		m := len(b)
		b = b[:m+int(step)]
		if err := r.readFull(b[m:]); err != nil {
			*buf = b[:0]
			return nil, fmt.Errorf("read entry: %w", err)
		}
	}
	*buf = b
	return b, nil
}

// roundUp rounds x up to a multiple of the power of two y; x is at most
// 2^34 here, so it cannot overflow.
func roundUp(x, y uint64) uint64 { return (x + y - 1) &^ (y - 1) }

// skipExtra skips the payload CRIU writes after entry msg in images of
// r.info.Name (criu's image writers; crit's decode-extra.go).
func (r *Reader) skipExtra(msg []byte) error {
	var n uint64
	switch r.info.Name {
	case "PIPES_DATA", "FIFO_DATA": // pipe_data_entry.bytes
		v, err := fieldU64(msg, 2)
		if err != nil {
			return err
		}
		n = v & 0xffffffff
	case "SK_QUEUES": // sk_packet_entry.length
		v, err := fieldU64(msg, 2)
		if err != nil {
			return err
		}
		n = v & 0xffffffff
	case "TCP_STREAM": // inq_len + outq_len
		in, err := fieldU64(msg, 1)
		if err != nil {
			return err
		}
		out, err := fieldU64(msg, 3)
		if err != nil {
			return err
		}
		n = in&0xffffffff + out&0xffffffff
	case "BPFMAP_DATA": // keys_bytes + values_bytes
		k, err := fieldU64(msg, 2)
		if err != nil {
			return err
		}
		v, err := fieldU64(msg, 3)
		if err != nil {
			return err
		}
		n = k&0xffffffff + v&0xffffffff
	case "IPCNS_SEM": // u16 per semaphore, padded to 8 bytes
		v, err := fieldU64(msg, 2)
		if err != nil {
			return err
		}
		n = roundUp(2*(v&0xffffffff), 8)
	case "IPCNS_SHM": // segment contents padded to 4 bytes, unless in pagemaps
		in, err := fieldU64(msg, 3)
		if err != nil {
			return err
		}
		if in != 0 {
			return nil
		}
		v, err := fieldU64(msg, 2)
		if err != nil {
			return err
		}
		if v > uint64(r.size) {
			return fmt.Errorf("skip shm segment of %d bytes: %w", v, ErrTruncated)
		}
		n = roundUp(v, 4)
	case "IPCNS_MSG":
		return r.skipMessages(msg)
	case "GHOST_FILE":
		if r.n == 1 {
			v, err := fieldU64(msg, 9)
			if err != nil {
				return err
			}
			r.chunks = v != 0
			if !r.chunks { // the rest of the file is the contents
				n = uint64(r.size - r.off)
			}
		} else if r.chunks { // ghost_chunk_entry.len
			v, err := fieldU64(msg, 1)
			if err != nil {
				return err
			}
			n = v
		} else {
			return fmt.Errorf("read ghost file: entry after contents: %w", ErrImage)
		}
	default:
		return nil
	}
	return r.skipN(n, "extra payload")
}

// skipN skips n payload bytes after checking them against the size left.
func (r *Reader) skipN(n uint64, what string) error {
	left := uint64(r.size - r.off)
	if n > left {
		return fmt.Errorf("skip %s of %d bytes, %d left: %w", what, n, left, ErrTruncated)
	}
	r.extra += int64(n)
	if err := r.discard(int64(n)); err != nil {
		return fmt.Errorf("skip %s: %w", what, err)
	}
	return nil
}

// skipMessages skips the messages of an ipc_msg_entry: qnum times a u32
// size, an ipc_msg and its text padded to 8 bytes. Each round consumes at
// least 4 bytes, so a huge qnum ends at the end of the file.
func (r *Reader) skipMessages(msg []byte) error {
	q, err := fieldU64(msg, 3)
	if err != nil {
		return err
	}
	q &= 0xffffffff
	for i := uint64(0); i < q; i++ {
		if r.off == r.size {
			// crit stops at the end of the file; CRIU writes qnum messages.
			return fmt.Errorf("read message %d of %d: %w", i, q, ErrTruncated)
		}
		m, err := r.entry(&r.msgBuf, r.lim.MaxEntrySize)
		if err != nil {
			return fmt.Errorf("read message %d: %w", i, err)
		}
		sz, err := fieldU64(m, 2)
		if err != nil {
			return err
		}
		r.extra += int64(len(m)) + 4
		if err := r.skipN(roundUp(sz&0xffffffff, 8), "message text"); err != nil {
			return err
		}
	}
	return nil
}

// fieldU64 returns the last value of varint field num in msg, 0 if absent.
func fieldU64(msg []byte, num int) (uint64, error) {
	d := decoder{b: msg}
	var v uint64
	for !d.done() {
		n, wt, err := d.key()
		if err != nil {
			return 0, err
		}
		if n != num {
			if err := d.skip(wt); err != nil {
				return 0, err
			}
			continue
		}
		if v, err = d.uvarint(n, wt); err != nil {
			return 0, err
		}
	}
	return v, nil
}
