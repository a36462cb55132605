package tarbuild

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// BlockSize is the tar block size.
const BlockSize = 512

// RawMTime is the modification time of every Raw entry: 2026-11-23
// 12:00:00 UTC, the creation time of format's test manifests, as its
// Writer would write.
const RawMTime = 1795435200

// Raw is one tar entry as written, header field by header field, for the
// streams archive/tar's Writer refuses to write (sparse headers, absurd or
// negative sizes, devices, names with NUL): RawTar writes it.
type Raw struct {
	// Name is the entry name. Names longer than 100 bytes get a PAX path
	// record unless PAX already sets one.
	Name string
	// Type is the typeflag; 0 means '0' (regular file).
	Type byte
	// Linkname is the link target.
	Linkname string
	// Mode is the permission bits; 0 means 0600.
	Mode int64
	// Uid and Uname are the owner (Gid is Uid); zero means 0 and none.
	Uid   int64
	Uname string
	// ModTime is the modification time in Unix seconds; 0 means RawMTime.
	ModTime int64
	// Size is the header's size field when SetSize is true; otherwise
	// len(Content). It is encoded in base-256 when it does not fit octal.
	Size    int64
	SetSize bool
	// Content is written after the header and padded to a block, whatever
	// the size field says.
	Content []byte
	// PAX holds PAX records "key=value", written in this order in an 'x'
	// header before the entry.
	PAX []string
	// GNU writes the GNU magic ("ustar  \x00") instead of USTAR's.
	GNU bool
	// Fix edits the 512-byte header before its checksum is computed.
	Fix func(h []byte)
}

// RawHeader returns the header block(s) of e: the PAX header and its
// records when there are any, then e's own header.
func RawHeader(e Raw) []byte {
	var out bytes.Buffer
	pax := e.PAX
	if len(e.Name) > 100 && !hasKey(pax, "path") {
		pax = append([]string{"path=" + e.Name}, pax...)
	}
	if len(pax) > 0 {
		var recs bytes.Buffer
		for _, kv := range pax {
			recs.WriteString(paxRecord(kv))
		}
		out.Write(block(Raw{Name: "PaxHeaders/" + truncate(e.Name, 80), Type: 'x', Size: int64(recs.Len()), SetSize: true}))
		out.Write(pad(recs.Bytes()))
	}
	out.Write(block(e))
	return out.Bytes()
}

// RawTar returns the tar stream of entries followed by the two end blocks.
func RawTar(entries ...Raw) []byte {
	b := RawTarNoEnd(entries...)
	return append(b, make([]byte, 2*BlockSize)...)
}

// RawTarNoEnd returns the tar stream of entries without the end blocks.
func RawTarNoEnd(entries ...Raw) []byte {
	var out bytes.Buffer
	for _, e := range entries {
		out.Write(RawHeader(e))
		out.Write(pad(e.Content))
	}
	return out.Bytes()
}

func hasKey(recs []string, key string) bool {
	for _, kv := range recs {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// paxRecord formats "key=value" as a PAX record "%d key=value\n" whose
// length counts itself.
func paxRecord(kv string) string {
	n := len(kv) + 3 // space, newline, at least one digit
	for {
		s := strconv.Itoa(n) + " " + kv + "\n"
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

func pad(b []byte) []byte {
	if r := len(b) % BlockSize; r != 0 {
		return append(bytes.Clone(b), make([]byte, BlockSize-r)...)
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// block encodes e's own 512-byte header.
func block(e Raw) []byte {
	h := make([]byte, BlockSize)
	copy(h[0:100], e.Name)
	mode := e.Mode
	if mode == 0 {
		mode = 0o600
	}
	octal(h[100:108], mode)
	octal(h[108:116], e.Uid)
	octal(h[116:124], e.Uid)
	size := int64(len(e.Content))
	if e.SetSize {
		size = e.Size
	}
	numeric(h[124:136], size)
	mtime := e.ModTime
	if mtime == 0 {
		mtime = RawMTime
	}
	octal(h[136:148], mtime)
	typ := e.Type
	if typ == 0 {
		typ = '0'
	}
	h[156] = typ
	copy(h[157:257], e.Linkname)
	if e.GNU {
		copy(h[257:265], "ustar  \x00")
	} else {
		copy(h[257:265], "ustar\x0000")
	}
	copy(h[265:297], e.Uname)
	if e.Fix != nil {
		e.Fix(h)
	}
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// octal writes x as a NUL-terminated octal field.
func octal(b []byte, x int64) {
	s := strconv.FormatInt(x, 8)
	s = strings.Repeat("0", len(b)-1-len(s)) + s
	copy(b, s)
	b[len(b)-1] = 0
}

// numeric writes x in octal when it fits, else in base-256 (GNU), which
// also encodes negative numbers.
func numeric(b []byte, x int64) {
	if x >= 0 && x < 1<<(3*(len(b)-1)) {
		octal(b, x)
		return
	}
	for i := len(b) - 1; i > 0; i-- {
		b[i] = byte(x)
		x >>= 8
	}
	b[0] = 0x80
	if x < 0 {
		b[0] = 0xff
	}
}

// Zstd compresses b into one zstd stream.
func Zstd(b []byte, opts ...zstd.EOption) []byte {
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out, opts...)
	if err != nil {
		panic(err)
	}
	if _, err := zw.Write(b); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

// Gzip compresses b into one gzip member.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}
