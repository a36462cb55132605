package criuimg

import (
	"encoding/binary"
	"fmt"
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// MaxFieldNumber is the largest protobuf field number the decoder accepts
// (the protobuf limit, 2^29-1).
const MaxFieldNumber = 1<<29 - 1

// decoder reads one protobuf message from b. It never allocates: byte and
// string fields are sub-slices of b, and repeated fields are counted or
// appended by the typed decoders one value at a time. Every read checks the
// remaining length first.
type decoder struct {
	b   []byte
	off int
}

// done reports whether the whole message has been read.
func (d *decoder) done() bool { return d.off >= len(d.b) }

// varint reads a base-128 varint of at most 10 bytes whose value fits in
// 64 bits.
func (d *decoder) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if d.off >= len(d.b) {
			return 0, fmt.Errorf("read varint: %w", ErrProto)
		}
		c := d.b[d.off]
		d.off++
		if i == 9 && c > 1 {
			return 0, fmt.Errorf("read varint: overflow: %w", ErrProto)
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("read varint: too long: %w", ErrProto)
}

// key reads a field key and checks its field number and wire type.
func (d *decoder) key() (num int, wt int, err error) {
	k, err := d.varint()
	if err != nil {
		return 0, 0, err
	}
	wt = int(k & 7)
	n := k >> 3
	if n == 0 || n > MaxFieldNumber {
		return 0, 0, fmt.Errorf("read field key: field number %d: %w", n, ErrProto)
	}
	switch wt {
	case wireVarint, wireFixed64, wireBytes, wireFixed32:
	default:
		return 0, 0, fmt.Errorf("read field %d: wire type %d: %w", n, wt, ErrProto)
	}
	return int(n), wt, nil
}

// fixed64 reads 8 little-endian bytes.
func (d *decoder) fixed64() (uint64, error) {
	if len(d.b)-d.off < 8 {
		return 0, fmt.Errorf("read fixed64: %w", ErrProto)
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

// fixed32 reads 4 little-endian bytes.
func (d *decoder) fixed32() (uint32, error) {
	if len(d.b)-d.off < 4 {
		return 0, fmt.Errorf("read fixed32: %w", ErrProto)
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

// bytes reads a length-delimited field and returns a sub-slice of the
// message; the length is checked against the bytes left.
func (d *decoder) bytes() ([]byte, error) {
	n, err := d.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, fmt.Errorf("read length-delimited field of %d bytes: %w", n, ErrProto)
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b, nil
}

// skip skips a field value of wire type wt.
func (d *decoder) skip(wt int) error {
	var err error
	switch wt {
	case wireVarint:
		_, err = d.varint()
	case wireFixed64:
		_, err = d.fixed64()
	case wireFixed32:
		_, err = d.fixed32()
	case wireBytes:
		_, err = d.bytes()
	default:
		err = fmt.Errorf("skip field: wire type %d: %w", wt, ErrProto)
	}
	return err
}

// uvarint reads the value of a varint-typed field (int32, uint32, int64,
// uint64, sint*, bool, enum); any other wire type is an error.
func (d *decoder) uvarint(num, wt int) (uint64, error) {
	if wt != wireVarint {
		return 0, fmt.Errorf("read field %d: wire type %d, want varint: %w", num, wt, ErrProto)
	}
	return d.varint()
}

// u32 reads a uint32 (or enum) field; protobuf truncates wider varints.
func (d *decoder) u32(num, wt int) (uint32, error) {
	v, err := d.uvarint(num, wt)
	return uint32(v), err
}

// i32 reads an int32 field (sign-extended varint, truncated to 32 bits).
func (d *decoder) i32(num, wt int) (int32, error) {
	v, err := d.uvarint(num, wt)
	return int32(v), err
}

// u64 reads a uint64 field.
func (d *decoder) u64(num, wt int) (uint64, error) {
	return d.uvarint(num, wt)
}

// sint64 reads a zigzag-encoded sint64 field.
func (d *decoder) sint64(num, wt int) (int64, error) {
	v, err := d.uvarint(num, wt)
	return int64(v>>1) ^ -int64(v&1), err
}

// sint32 reads a zigzag-encoded sint32 field.
func (d *decoder) sint32(num, wt int) (int32, error) {
	v, err := d.uvarint(num, wt)
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1), err
}

// boolean reads a bool field.
func (d *decoder) boolean(num, wt int) (bool, error) {
	v, err := d.uvarint(num, wt)
	return v != 0, err
}

// message reads a length-delimited embedded message or string.
func (d *decoder) message(num, wt int) ([]byte, error) {
	if wt != wireBytes {
		return nil, fmt.Errorf("read field %d: wire type %d, want length-delimited: %w", num, wt, ErrProto)
	}
	return d.bytes()
}

// repeatedU32 appends the values of a repeated uint32 field, packed (wire
// type 2) or not, to dst. A packed run is scanned once to count its
// varints, so dst grows by no more than the data holds.
func (d *decoder) repeatedU32(dst []uint32, num, wt int, max int) ([]uint32, error) {
	if wt == wireVarint {
		if len(dst) >= max {
			return dst, fmt.Errorf("read field %d: more than %d values: %w", num, max, ErrTooLarge)
		}
		v, err := d.varint()
		return append(dst, uint32(v)), err
	}
	b, err := d.message(num, wt)
	if err != nil {
		return dst, err
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	if n > max-len(dst) {
		return dst, fmt.Errorf("read field %d: more than %d values: %w", num, max, ErrTooLarge)
	}
	dst = growU32(dst, n)
	p := decoder{b: b}
	for !p.done() {
		v, err := p.varint()
		if err != nil {
			return dst, err
		}
		dst = append(dst, uint32(v))
	}
	return dst, nil
}

// growU32 makes room for n more elements, n bounded by the caller.
func growU32(s []uint32, n int) []uint32 {
	if cap(s)-len(s) >= n {
		return s
	}
	t := make([]uint32, len(s), len(s)+n)
	copy(t, s)
	return t
}

// countRepeated returns how many values a repeated uint64 field
// occurrence holds, packed or not, and skips it.
func (d *decoder) countRepeated(num, wt int) (int, error) {
	if wt != wireBytes {
		return 1, d.skip(wt)
	}
	b, err := d.bytes()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	if len(b) > 0 && b[len(b)-1] >= 0x80 {
		return 0, fmt.Errorf("read field %d: packed varints: %w", num, ErrProto)
	}
	return n, nil
}

// required tracks the required fields of a message, by field number
// (all below 64 in CRIU's messages).
type required uint64

func (r *required) set(num int) {
	if num < 64 {
		*r |= 1 << uint(num)
	}
}

// check returns an error naming the first of the fields in nums that was
// not seen.
func (r required) check(msg string, nums ...int) error {
	for _, n := range nums {
		if r&(1<<uint(n)) == 0 {
			return fmt.Errorf("decode %s: missing required field %d: %w", msg, n, ErrProto)
		}
	}
	return nil
}
