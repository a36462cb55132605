package criuimg

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// readAllEntries runs a Reader over data and returns the offsets just
// past each entry (entry boundaries) and the final error (nil at io.EOF).
func readAllEntries(name string, data []byte, lim *Limits) (ends []int64, err error) {
	r := NewReader(name, bytes.NewReader(data), int64(len(data)), lim)
	for {
		_, err := r.Next()
		if err == io.EOF {
			return ends, nil
		}
		if err != nil {
			return ends, err
		}
		ends = append(ends, r.off)
	}
}

// decodeImage runs the typed reader for name's magic, if there is one.
func decodeImage(name string, data []byte) error {
	m, _ := ExpectedMagic(name)
	var err error
	switch m {
	case "INVENTORY":
		_, err = ReadInventory(data)
	case "PSTREE":
		_, err = ReadPstree(data)
	case "CORE":
		_, err = ReadCore(name, data)
	case "MM":
		_, err = ReadMm(name, data)
	case "IDS":
		_, err = ReadIDs(name, data)
	case "FILES":
		_, err = ReadFiles(data)
	case "FDINFO":
		_, err = ReadFdinfo(name, data)
	case "PAGEMAP":
		_, _, err = ReadPagemap(name, data)
	default:
		_, err = readAllEntries(name, data, nil)
	}
	return err
}

// TestTruncation cuts every committed metadata image at every byte: the
// Reader and the typed decoders must return a clean error (no panic, no
// hang), except at an entry boundary of a multi-entry image, where the cut
// image is still valid.
func TestTruncation(t *testing.T) {
	for _, dir := range realDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkTruncation(t, dir) })
	}
}

func checkTruncation(t *testing.T, dir string) {
	files := loadDir(t, dir)
	for _, name := range sortedNames(files) {
		m, kind := ExpectedMagic(name)
		if kind != KindProto {
			continue
		}
		data := files[name].Data
		ends, err := readAllEntries(name, data, nil)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		boundary := map[int]bool{}
		for _, e := range ends[:len(ends)-1] {
			boundary[int(e)] = true
		}
		single := m == "INVENTORY" || m == "CORE" || m == "MM" || m == "IDS"
		for n := 0; n < len(data); n++ {
			cut := data[:n]
			_, rerr := readAllEntries(name, cut, nil)
			derr := decodeImage(name, cut)
			hdr := 8
			if m == "INVENTORY" {
				hdr = 4
			}
			switch {
			case n == hdr:
				// Header only: an image with no entries. The Reader takes
				// it; the typed decoders of images that need an entry
				// (single-entry images, the pagemap's head) must not.
				if rerr != nil {
					t.Errorf("%s cut at %d (header only): Reader error %v", name, n, rerr)
				}
				if (single || m == "PAGEMAP") && !errors.Is(derr, ErrImage) {
					t.Errorf("%s cut at %d (header only): decode error %v, want ErrImage", name, n, derr)
				}
			case boundary[n] && !single:
				if rerr != nil || derr != nil {
					t.Errorf("%s cut at entry boundary %d: %v, %v, want no error", name, n, rerr, derr)
				}
			default:
				if m == "GHOST_FILE" && n >= hdr+4+int(le32at(data, hdr)) {
					// The contents of an unchunked ghost file run to the
					// end of the image, whatever its size.
					continue
				}
				if rerr == nil || derr == nil {
					t.Errorf("%s cut at %d of %d: %v, %v, want errors", name, n, len(data), rerr, derr)
					continue
				}
				if !errors.Is(rerr, ErrTruncated) {
					t.Errorf("%s cut at %d: Reader error %v, want ErrTruncated", name, n, rerr)
				}
				var fe *Error
				if !errors.As(derr, &fe) || fe.File != name {
					t.Errorf("%s cut at %d: decode error %v does not name the file", name, n, derr)
				}
			}
		}
		// A whole image set with this image cut must not panic either.
		for _, n := range []int{0, 3, 7, len(data) / 2, len(data) - 1} {
			if n < 0 || n > len(data) {
				continue
			}
			set := loadDir(t, dir)
			set[name] = Info{Size: int64(n), Data: data[:n]}
			if err := CheckImages(set, nil).Err(); err == nil && n < len(data) && !boundary[n] {
				if m != "GHOST_FILE" && !(n == 8 && !single && m != "PAGEMAP") {
					t.Errorf("CheckImages with %s cut at %d = nil, want problems", name, n)
				}
			}
		}
	}
}

func le32at(b []byte, off int) uint32 {
	return uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24
}

// enc builds protobuf messages for tests.
type enc []byte

func (e enc) varint(v uint64) enc {
	for v >= 0x80 {
		e = append(e, byte(v)|0x80)
		v >>= 7
	}
	return append(e, byte(v))
}

func (e enc) key(num, wt int) enc { return e.varint(uint64(num)<<3 | uint64(wt)) }

func (e enc) u(num int, v uint64) enc { return e.key(num, wireVarint).varint(v) }

func (e enc) bytes(num int, b []byte) enc {
	return append(e.key(num, wireBytes).varint(uint64(len(b))), b...)
}

// image frames entries (and raw payloads) behind the header of magic.
func image(magicName string, parts ...[]byte) []byte {
	var b []byte
	if magicName != "INVENTORY" {
		b = le32(MagicCommon)
	}
	b = append(b, le32(magicByName[magicName])...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// entry frames a message with its u32 size.
func entry(msg []byte) []byte { return append(le32(uint32(len(msg))), msg...) }

func TestHostileFraming(t *testing.T) {
	pipe := enc(nil).u(1, 7).u(2, 5)
	tests := []struct {
		name string
		data []byte
		lim  *Limits
		want error
	}{
		{"pstree.img", image("PSTREE", le32(0xffffffff)), nil, ErrTooLarge},
		{"pstree.img", image("PSTREE", le32(MaxEntrySize+1), make([]byte, 16)), nil, ErrTooLarge},
		{"pstree.img", image("PSTREE", le32(100), make([]byte, 99)), nil, ErrTruncated},
		{"pstree.img", image("PSTREE", le32(100), make([]byte, 100)), &Limits{MaxEntrySize: 99}, ErrTooLarge},
		{"pstree.img", image("PSTREE", entry(nil), entry(nil), entry(nil)), &Limits{MaxEntries: 2}, ErrTooLarge},
		{"pstree.img", image("PSTREE", []byte{1, 0}), nil, ErrTruncated},
		{"pstree.img", image("PSTREE")[:6], nil, ErrTruncated},
		{"pstree.img", image("CORE"), nil, ErrMagic},
		{"pages-1.img", make([]byte, 4096), nil, ErrImage},
		// Extra payloads larger than the image.
		{"pipes-data.img", image("PIPES_DATA", entry(pipe), []byte("1234")), nil, ErrTruncated},
		{"pipes-data.img", image("PIPES_DATA", entry(enc(nil).u(1, 7).u(2, 0xffffffff))), nil, ErrTruncated},
		{"fifo-data.img", image("FIFO_DATA", entry(enc(nil).u(2, 1<<63|5))), nil, ErrTruncated}, // uint32: truncated to 5,
		{"sk-queues.img", image("SK_QUEUES", entry(enc(nil).u(1, 1).u(2, 0xffffffff))), nil, ErrTruncated},
		{"tcp-stream-1.img", image("TCP_STREAM", entry(enc(nil).u(1, 0xffffffff).u(3, 0xffffffff))), nil, ErrTruncated},
		{"bpfmap-data.img", image("BPFMAP_DATA", entry(enc(nil).u(2, 0xffffffff).u(3, 0xffffffff))), nil, ErrTruncated},
		{"ipcns-sem-1.img", image("IPCNS_SEM", entry(enc(nil).u(2, 0xffffffff))), nil, ErrTruncated},
		{"ipcns-shm-1.img", image("IPCNS_SHM", entry(enc(nil).u(2, 1<<62))), nil, ErrTruncated},
		{"ipcns-msg-1.img", image("IPCNS_MSG", entry(enc(nil).u(3, 0xffffffff))), nil, ErrTruncated},
		{"ipcns-msg-1.img", image("IPCNS_MSG", entry(enc(nil).u(3, 1)), entry(enc(nil).u(1, 1).u(2, 0xffffffff))), nil, ErrTruncated},
		{"ghost-file-1.img", image("GHOST_FILE", entry(enc(nil).u(9, 1)), entry(enc(nil).u(1, 1<<64-1).u(2, 0))), nil, ErrTruncated},
		// Malformed messages behind an extra payload rule.
		{"pipes-data.img", image("PIPES_DATA", entry([]byte{0x10, 0xff})), nil, ErrProto},
		{"pipes-data.img", image("PIPES_DATA", entry([]byte{0x13})), nil, ErrProto},
	}
	for _, tt := range tests {
		_, err := readAllEntries(tt.name, tt.data, tt.lim)
		if !errors.Is(err, tt.want) {
			t.Errorf("read %s (% x...) = %v, want %v", tt.name, tt.data[:min(len(tt.data), 16)], err, tt.want)
		}
		var fe *Error
		if err != nil && (!errors.As(err, &fe) || fe.File != tt.name) {
			t.Errorf("read %s: error %v does not name the file", tt.name, err)
		}
	}
}

// TestUnknownName reads a real inventory under a name the package does not
// know: the Reader must find its 4-byte header and the same entry.
func TestUnknownName(t *testing.T) {
	data := loadDir(t, tinyDir)["inventory.img"].Data
	want, err := readAllEntries("inventory.img", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllEntries("other.img", data, nil)
	if err != nil || len(got) != len(want) || got[0] != want[0] {
		t.Errorf("read other.img = %v, %v, want %v", got, err, want)
	}
	r := NewReader("other.img", bytes.NewReader(data), int64(len(data)), nil)
	b, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if inv, err := DecodeInventory(b); err != nil || inv.ImgVersion != 2 {
		t.Errorf("DecodeInventory(entry of other.img) = %+v, %v", inv, err)
	}
}

// TestLargeEntry reads an entry larger than the reader's growth step, and
// one whose reader ends early although the declared size promised more.
func TestLargeEntry(t *testing.T) {
	msg := enc(nil).u(1, 1).u(2, 0).u(3, 1).u(4, 1).bytes(9, bytes.Repeat([]byte("x"), 3*entryChunk+5))
	data := image("PSTREE", entry(msg), entry(msg))
	r := NewReader("pstree.img", bytes.NewReader(data), int64(len(data)), nil)
	for range 2 {
		b, err := r.Next()
		if err != nil || !bytes.Equal(b, msg) {
			t.Fatalf("Next() = %d bytes, %v, want the %d-byte entry", len(b), err, len(msg))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next() at end = %v, want io.EOF", err)
	}
	// The stream ends early in the second entry, although the caller
	// declared the full size.
	r = NewReader("pstree.img", bytes.NewReader(data[:8+4+len(msg)+100]), int64(len(data)), nil)
	if _, err := r.Next(); err != nil {
		t.Fatalf("Next() = %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrTruncated) {
		t.Errorf("Next() on a short stream = %v, want ErrTruncated", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrTruncated) {
		t.Errorf("Next() after an error = %v, want the same error (sticky)", err)
	}
}

// TestExtraPayloads reads well-formed images of every kind with an extra
// payload and checks the skipped sizes.
func TestExtraPayloads(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		extra []int64 // extra payload after each entry
	}{
		{"pipes-data.img", image("PIPES_DATA", entry(enc(nil).u(1, 1).u(2, 3)), []byte("abc"), entry(enc(nil).u(1, 2).u(2, 0))), []int64{3, 0}},
		{"sk-queues.img", image("SK_QUEUES", entry(enc(nil).u(1, 1).u(2, 2)), []byte("ab")), []int64{2}},
		{"tcp-stream-a.img", image("TCP_STREAM", entry(enc(nil).u(1, 2).u(3, 3)), []byte("iiooo")), []int64{5}},
		{"bpfmap-data.img", image("BPFMAP_DATA", entry(enc(nil).u(1, 1).u(2, 4).u(3, 4)), make([]byte, 8)), []int64{8}},
		{"ipcns-sem-1.img", image("IPCNS_SEM", entry(enc(nil).u(2, 3)), make([]byte, 8)), []int64{8}},
		{"ipcns-sem-1.img", image("IPCNS_SEM", entry(enc(nil).u(2, 4)), make([]byte, 8)), []int64{8}},
		{"ipcns-shm-1.img", image("IPCNS_SHM", entry(enc(nil).u(2, 5)), make([]byte, 8)), []int64{8}},
		{"ipcns-shm-1.img", image("IPCNS_SHM", entry(enc(nil).u(2, 4096).u(3, 1))), []int64{0}},
		{"ipcns-msg-1.img", image("IPCNS_MSG", entry(enc(nil).u(3, 2)),
			entry(enc(nil).u(1, 1).u(2, 3)), make([]byte, 8),
			entry(enc(nil).u(1, 1).u(2, 8)), make([]byte, 8)), []int64{4 + 4 + 8 + 4 + 4 + 8}},
		{"ghost-file-1.img", image("GHOST_FILE", entry(enc(nil).u(9, 1)),
			entry(enc(nil).u(1, 3).u(2, 0)), []byte("abc"), entry(enc(nil).u(1, 2).u(2, 10)), []byte("de")), []int64{0, 3, 2}},
		{"ghost-file-1.img", image("GHOST_FILE", entry(enc(nil).u(3, 0o100644)), []byte("contents")), []int64{8}},
		{"ghost-file-1.img", image("GHOST_FILE", entry(enc(nil).u(3, 0o100644))), []int64{0}},
	}
	for _, tt := range tests {
		r := NewReader(tt.name, bytes.NewReader(tt.data), int64(len(tt.data)), nil)
		var got []int64
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read %s: %v", tt.name, err)
			}
			// The entry returned must be the one at Offset, even when
			// its payload held framed messages of its own (ipcns-msg).
			off := r.Offset()
			want := tt.data[off+4 : off+4+int64(le32at(tt.data, int(off)))]
			if !bytes.Equal(b, want) {
				t.Errorf("read %s: entry at %d = % x, want % x", tt.name, off, b, want)
			}
			got = append(got, r.ExtraSize())
		}
		if len(got) != len(tt.extra) {
			t.Errorf("read %s: extra sizes %v, want %v", tt.name, got, tt.extra)
			continue
		}
		for i := range got {
			if got[i] != tt.extra[i] {
				t.Errorf("read %s: extra sizes %v, want %v", tt.name, got, tt.extra)
				break
			}
		}
	}
}

func TestWire(t *testing.T) {
	long := bytes.Repeat([]byte{0xff}, 10)
	// A valid pstree_entry followed by unknown fields of wire types 1, 5,
	// 2 and 0, the last with the largest field number.
	unknownFields := enc(nil).u(1, 1).u(2, 1).u(3, 1).u(4, 1).key(100, wireFixed64)
	unknownFields = append(unknownFields, make([]byte, 8)...)
	unknownFields = unknownFields.key(101, wireFixed32)
	unknownFields = append(unknownFields, make([]byte, 4)...)
	unknownFields = unknownFields.bytes(102, []byte("x")).u(MaxFieldNumber, 3)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"varint overflow 10th byte", append(enc(nil).key(1, 0), append(bytes.Repeat([]byte{0xff}, 9), 0x02)...), ErrProto},
		{"varint 11 bytes", append(enc(nil).key(1, 0), append(long, 0x01)...), ErrProto},
		{"varint truncated", append(enc(nil).key(1, 0), 0x80), ErrProto},
		{"key truncated", []byte{0x80}, ErrProto},
		{"field number 0", enc(nil).u(0, 1), ErrProto},
		{"field number too big", enc(nil).varint(uint64(MaxFieldNumber+1) << 3), ErrProto},
		{"start group", enc(nil).key(7, 3), ErrProto},
		{"end group", enc(nil).key(7, 4), ErrProto},
		{"wire type 6", enc(nil).key(7, 6), ErrProto},
		{"wire type 7", enc(nil).key(7, 7), ErrProto},
		{"length past end", append(enc(nil).key(7, 2).varint(5), 1, 2), ErrProto},
		{"length 2^63", enc(nil).key(7, 2).varint(1 << 63), ErrProto},
		{"length 2^64-1", enc(nil).key(7, 2).varint(1<<64 - 1), ErrProto},
		{"fixed64 short", append(enc(nil).key(7, 1), 1, 2, 3), ErrProto},
		{"fixed32 short", append(enc(nil).key(7, 5), 1, 2, 3), ErrProto},
		{"pid as bytes", enc(nil).bytes(1, []byte{1}).u(2, 1).u(3, 1).u(4, 1), ErrProto},
		{"missing sid", enc(nil).u(1, 1).u(2, 1).u(3, 1), ErrProto},
		{"packed threads truncated", enc(nil).u(1, 1).u(2, 1).u(3, 1).u(4, 1).bytes(5, []byte{0x81}), ErrProto},
		{"ok max varint", enc(nil).u(1, 1<<64-1).u(2, 1).u(3, 1).u(4, 1), nil},
		{"ok unknown fields of every wire type", unknownFields, nil},
	}
	for _, tt := range tests {
		_, err := DecodePstreeEntry(tt.msg)
		if !errors.Is(err, tt.want) { // errors.Is(nil, nil) is true
			t.Errorf("%s: DecodePstreeEntry(% x) = %v, want %v", tt.name, tt.msg, err, tt.want)
		}
	}
}

// TestDeepLongFields feeds messages with long fields, deep nesting inside
// unknown fields, and huge repeated fields.
func TestDeepLongFields(t *testing.T) {
	base := enc(nil).u(1, 1).u(2, 0).u(3, 1).u(4, 1)

	// A long unknown field is skipped without copying.
	msg := enc(append([]byte{}, base...)).bytes(77, make([]byte, 8<<20))
	if _, err := DecodePstreeEntry(msg); err != nil {
		t.Errorf("DecodePstreeEntry(8 MiB unknown field) = %v", err)
	}

	// Deep nesting inside an unknown field is never descended into.
	deep := []byte{}
	for range 10000 {
		deep = enc(nil).bytes(3, deep)
	}
	msg = enc(append([]byte{}, base...)).bytes(99, deep)
	if _, err := DecodePstreeEntry(msg); err != nil {
		t.Errorf("DecodePstreeEntry(deep unknown field) = %v", err)
	}
	// ... and a known nested field holding garbage is an error, not a panic.
	if _, err := DecodeCoreEntry(enc(nil).u(1, 1).bytes(3, deep)); err == nil {
		t.Errorf("DecodeCoreEntry(deep tc) = nil, want an error")
	}

	// Packed threads: more than MaxRepeated values is ErrTooLarge; the
	// slice is sized from the data, not from a declared count.
	packed := bytes.Repeat([]byte{1}, MaxRepeated+1)
	msg = enc(append([]byte{}, base...)).bytes(5, packed)
	if _, err := DecodePstreeEntry(msg); !errors.Is(err, ErrTooLarge) {
		t.Errorf("DecodePstreeEntry(%d packed threads) = %v, want ErrTooLarge", MaxRepeated+1, err)
	}
	msg = enc(append([]byte{}, base...)).bytes(5, packed[:1000])
	for range 1000 {
		msg = msg.u(5, 2) // mixed packed and unpacked
	}
	e, err := DecodePstreeEntry(msg)
	if err != nil || len(e.Threads) != 2000 {
		t.Errorf("DecodePstreeEntry(mixed threads) = %d threads, %v, want 2000", len(e.Threads), err)
	}

	// A long string is kept as is.
	comm := strings.Repeat("c", 1<<20)
	tc := enc(nil).u(1, 1).u(2, 0).u(3, 0).u(4, 0).u(5, 0).bytes(6, []byte(comm))
	c, err := DecodeCoreEntry(enc(nil).u(1, 1).bytes(3, tc))
	if err != nil || c.TC.Comm != comm {
		t.Errorf("DecodeCoreEntry(1 MiB comm) = %v", err)
	}

	// Old pagemap entries: in_parent and no nr_pages.
	pe, err := DecodePagemapEntry(enc(nil).u(1, 0x1000).u(2, 3).u(3, 1))
	if err != nil || pe.NrPages != 3 || pe.Flags != PEParent {
		t.Errorf("DecodePagemapEntry(old in_parent) = %+v, %v", pe, err)
	}
	pe, err = DecodePagemapEntry(enc(nil).u(1, 0x1000).u(2, 3))
	if err != nil || pe.NrPages != 3 || pe.Flags != PEPresent {
		t.Errorf("DecodePagemapEntry(old present) = %+v, %v", pe, err)
	}
	pe, err = DecodePagemapEntry(enc(nil).u(1, 0x1000).u(2, 0).u(4, uint64(PELazy)).u(5, 1<<40))
	if err != nil || pe.NrPages != 1<<40 || pe.Flags != PELazy {
		t.Errorf("DecodePagemapEntry(new lazy) = %+v, %v", pe, err)
	}
}
