// Package tarbuild builds tar streams for hostile test archives, in the
// spirit of containerd's pkg/archive/tartest: entries are headers plus
// bodies, written as given (names, sizes and link targets are not
// validated), and a header may declare more content than it carries.
// It is a test helper of rootfs and volumes, not API.
package tarbuild

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"
)

// Entry is one tar entry: a header and its body.
type Entry struct {
	Header tar.Header
	Body   string
	// Truncate stops the stream right after this entry's header and
	// body, without padding or trailer, to fake a huge or short entry.
	Truncate bool
}

// ModTime is the modification time of every entry the constructors make.
var ModTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// Dir returns a directory entry.
func Dir(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: ModTime}}
}

// File returns a regular file entry holding body.
func File(name, body string, mode int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: ModTime}, Body: body}
}

// Symlink returns a symbolic link entry (mode 0777).
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: ModTime}}
}

// Link returns a hard link entry.
func Link(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: ModTime}}
}

// Dev returns a device or FIFO entry of type typ (tar.TypeChar,
// tar.TypeBlock or tar.TypeFifo), mode 0644.
func Dev(typ byte, name string, major, minor int64) Entry {
	return Entry{Header: tar.Header{Typeflag: typ, Name: name, Mode: 0o644, Devmajor: major, Devminor: minor, ModTime: ModTime}}
}

// Huge returns a regular file entry that declares size bytes, carries a
// few and ends the stream.
func Huge(name string, size int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: ModTime}, Body: "tiny", Truncate: true}
}

// WithXattrs returns e with the extended attributes kv (name, value,
// name, value, ...) as PAX records.
func WithXattrs(e Entry, kv ...string) Entry {
	e.Header.PAXRecords = make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		e.Header.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
	}
	e.Header.Format = tar.FormatPAX
	return e
}

// Build writes the entries as a tar stream and returns it; a write error
// fails t.
func Build(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("WriteHeader(%q) = %v", h.Name, err)
		}
		if e.Truncate {
			// WriteHeader has already put the header block in buf.
			buf.WriteString(e.Body)
			return buf.Bytes()
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			t.Fatalf("Write(%q) = %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return buf.Bytes()
}
