// Package tartest builds tar streams byte by byte for format's tests,
// including ones archive/tar's Writer refuses to write (sparse headers,
// absurd or negative sizes, devices, names with NUL), and parses the txtar
// files that describe test cases. It is a test helper, not API.
package tartest

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// BlockSize is the tar block size.
const BlockSize = 512

// MTime is the modification time of every entry: 2026-11-23 12:00:00 UTC,
// the creation time of the test manifests, as format's Writer would write.
const MTime = 1795435200

// Entry is one tar entry as written, header field by header field.
type Entry struct {
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
	// ModTime is the modification time in Unix seconds; 0 means MTime.
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

// Header returns the header block(s) of e: the PAX header and its records
// when there are any, then e's own header.
func Header(e Entry) []byte {
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
		out.Write(block(Entry{Name: "PaxHeaders/" + truncate(e.Name, 80), Type: 'x', Size: int64(recs.Len()), SetSize: true}))
		out.Write(pad(recs.Bytes()))
	}
	out.Write(block(e))
	return out.Bytes()
}

// Tar returns the tar stream of entries followed by the two end blocks.
func Tar(entries ...Entry) []byte {
	b := TarNoEnd(entries...)
	return append(b, make([]byte, 2*BlockSize)...)
}

// TarNoEnd returns the tar stream of entries without the end blocks.
func TarNoEnd(entries ...Entry) []byte {
	var out bytes.Buffer
	for _, e := range entries {
		out.Write(Header(e))
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
func block(e Entry) []byte {
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
		mtime = MTime
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

// Txtar is a parsed txtar archive (the golang.org/x/tools/txtar format:
// a comment, then files introduced by "-- name --" lines).
type Txtar struct {
	Comment []byte
	Files   []File
}

// File is one file of a Txtar.
type File struct {
	Name string
	Data []byte
}

// ParseTxtar parses data in the txtar format.
func ParseTxtar(data []byte) *Txtar {
	a := new(Txtar)
	var name string
	a.Comment, name, data = findFileMarker(data)
	for name != "" {
		f := File{Name: name}
		f.Data, name, data = findFileMarker(data)
		a.Files = append(a.Files, f)
	}
	return a
}

var newlineMarker = []byte("\n-- ")

func findFileMarker(data []byte) (before []byte, name string, after []byte) {
	var i int
	for {
		if name, after = isMarker(data[i:]); name != "" {
			return data[:i], name, after
		}
		j := bytes.Index(data[i:], newlineMarker)
		if j < 0 {
			return fixNL(data), "", nil
		}
		i += j + 1
	}
}

func isMarker(data []byte) (name string, after []byte) {
	if !bytes.HasPrefix(data, []byte("-- ")) {
		return "", nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data, after = data[:i], data[i+1:]
	}
	if !(bytes.HasSuffix(data, []byte(" --")) && len(data) >= 6) {
		return "", nil
	}
	return strings.TrimSpace(string(data[3 : len(data)-3])), after
}

func fixNL(data []byte) []byte {
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return data
	}
	return append(bytes.Clone(data), '\n')
}

// Keys parses a txtar comment of "key=value" lines (blank lines and lines
// starting with # are skipped). A key may repeat; its values are kept in
// order. Every key must be in allowed: readTest's rule that an unknown key
// is an error, not a silently ignored typo.
func Keys(comment []byte, allowed ...string) (map[string][]string, error) {
	ok := map[string]bool{}
	for _, k := range allowed {
		ok[k] = true
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(comment), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !found {
			return nil, fmt.Errorf("line %q is not key=value", line)
		}
		if !ok[k] {
			names := append([]string(nil), allowed...)
			sort.Strings(names)
			return nil, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(names, ", "))
		}
		keys[k] = append(keys[k], v)
	}
	return keys, nil
}

// Fields splits a txtar file name into space-separated fields; a field,
// or the value after a field's first '=', may be a Go-quoted string, which
// is unquoted (so names can hold NUL, invalid UTF-8 or spaces).
func Fields(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out, nil
		}
		prefix := ""
		if i := strings.IndexAny(s, "= \""); i >= 0 && s[i] == '=' {
			prefix, s = s[:i+1], s[i+1:]
		}
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("field %q: %v", s, err)
			}
			u, _ := strconv.Unquote(q)
			out = append(out, prefix+u)
			s = s[len(q):]
			continue
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		out = append(out, prefix+s[:i])
		s = s[i:]
	}
}
