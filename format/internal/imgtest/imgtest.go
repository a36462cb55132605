// Package imgtest edits real CRIU images for the tests of format and its
// users: it splits an image into entries, encodes the messages the tests
// change (mounts, tasks, pagemap entries) and rewrites fields of others.
// Its input is trusted test data; it is a test helper, not API.
package imgtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ckpt/ckpt/format/criuimg"
)

// Entries returns the protobuf messages of the image called name.
func Entries(name string, data []byte) ([][]byte, error) {
	r := criuimg.NewReader(name, bytes.NewReader(data), int64(len(data)), nil)
	var out [][]byte
	for {
		b, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, bytes.Clone(b))
	}
}

// Rewrite returns the image with data's header (its magic) and msgs as
// entries; images with extra payloads after their entries are not
// supported.
func Rewrite(name string, data []byte, msgs [][]byte) []byte {
	n := 8
	if name == "inventory.img" {
		n = 4
	}
	out := bytes.Clone(data[:n])
	for _, m := range msgs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	return out
}

// Enc builds a protobuf message.
type Enc []byte

// Varint appends a varint.
func (e Enc) Varint(v uint64) Enc {
	for v >= 0x80 {
		e = append(e, byte(v)|0x80)
		v >>= 7
	}
	return append(e, byte(v))
}

// U appends varint field num.
func (e Enc) U(num int, v uint64) Enc { return e.Varint(uint64(num) << 3).Varint(v) }

// Bytes appends length-delimited field num.
func (e Enc) Bytes(num int, b []byte) Enc {
	return append(e.Varint(uint64(num)<<3|2).Varint(uint64(len(b))), b...)
}

// Mnt encodes an mnt_entry.
func Mnt(m criuimg.MntEntry) []byte {
	e := Enc(nil).U(1, uint64(m.Fstype)).U(2, uint64(m.MntID)).U(3, uint64(m.RootDev)).U(4, uint64(m.ParentMntID)).
		U(5, uint64(m.Flags)).Bytes(6, []byte(m.Root)).Bytes(7, []byte(m.Mountpoint)).Bytes(8, []byte(m.Source)).
		Bytes(9, []byte(m.Options))
	if m.SharedID != 0 {
		e = e.U(10, uint64(m.SharedID))
	}
	if m.MasterID != 0 {
		e = e.U(11, uint64(m.MasterID))
	}
	if m.WithPlugin {
		e = e.U(12, 1)
	}
	if m.ExtMount {
		e = e.U(13, 1)
	}
	if m.HasFsname {
		e = e.Bytes(14, []byte(m.Fsname))
	}
	if m.HasSbFlags {
		e = e.U(17, uint64(m.SbFlags))
	}
	if m.HasExtKey {
		e = e.Bytes(18, []byte(m.ExtKey))
	}
	return e
}

// Pstree encodes a pstree_entry.
func Pstree(p criuimg.PstreeEntry) []byte {
	e := Enc(nil).U(1, uint64(p.PID)).U(2, uint64(p.PPID)).U(3, uint64(p.PGID)).U(4, uint64(p.SID))
	for _, th := range p.Threads {
		e = e.U(5, uint64(th))
	}
	return e
}

// PagemapEntry encodes a pagemap_entry.
func PagemapEntry(p criuimg.PagemapEntry) []byte {
	return Enc(nil).U(1, p.Vaddr).U(2, 0).U(4, uint64(p.Flags)).U(5, p.NrPages)
}

// field is one field of a message as stored.
type field struct {
	num, wt int
	raw     []byte // key and value
	val     []byte // the value of a length-delimited field
}

// fields splits a message into its fields.
func fields(msg []byte) ([]field, error) {
	var out []field
	for off := 0; off < len(msg); {
		start := off
		k, n := binary.Uvarint(msg[off:])
		if n <= 0 {
			return nil, fmt.Errorf("bad key at %d", off)
		}
		off += n
		f := field{num: int(k >> 3), wt: int(k & 7)}
		switch f.wt {
		case 0:
			_, n = binary.Uvarint(msg[off:])
			if n <= 0 {
				return nil, fmt.Errorf("bad varint at %d", off)
			}
			off += n
		case 1:
			off += 8
		case 5:
			off += 4
		case 2:
			l, n := binary.Uvarint(msg[off:])
			if n <= 0 || uint64(len(msg)-off-n) < l {
				return nil, fmt.Errorf("bad length at %d", off)
			}
			off += n
			f.val = msg[off : off+int(l)]
			off += int(l)
		default:
			return nil, fmt.Errorf("wire type %d", f.wt)
		}
		if off > len(msg) {
			return nil, fmt.Errorf("field %d runs past the message", f.num)
		}
		f.raw = msg[start:off]
		out = append(out, f)
	}
	return out, nil
}

// Field returns the value of length-delimited field num of msg.
func Field(msg []byte, num int) ([]byte, error) {
	fs, err := fields(msg)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.num == num && f.wt == 2 {
			return f.val, nil
		}
	}
	return nil, fmt.Errorf("no field %d", num)
}

// SetBytes returns msg with length-delimited field num set to val.
func SetBytes(msg []byte, num int, val []byte) ([]byte, error) {
	fs, err := fields(msg)
	if err != nil {
		return nil, err
	}
	var out Enc
	for _, f := range fs {
		if f.num == num {
			continue
		}
		out = append(out, f.raw...)
	}
	return out.Bytes(num, val), nil
}

// SetVarint returns msg with varint field num set to v.
func SetVarint(msg []byte, num int, v uint64) ([]byte, error) {
	fs, err := fields(msg)
	if err != nil {
		return nil, err
	}
	var out Enc
	for _, f := range fs {
		if f.num == num {
			continue
		}
		out = append(out, f.raw...)
	}
	return out.U(num, v), nil
}
