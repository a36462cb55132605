// Package tarbuild builds tar streams for hostile test archives, in the
// spirit of containerd's pkg/archive/tartest: entries are headers plus
// bodies, written as given (names, sizes and link targets are not
// validated), and a header may declare more content than it carries.
// Raw entries go further, header field by header field, for the streams
// archive/tar's Writer refuses to write; Zstd and Gzip compress them, and
// ParseTxtar, Keys and Fields read the txtar files format's test cases are
// written in. It is a test helper of rootfs, volumes, format, criuimg and
// the engine, not API.
package tarbuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
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

// Member returns the content of the member name of the tar archive at
// path (a corpus in testdata); a missing member or a read error fails t.
func Member(t testing.TB, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s in %s: %v", name, path, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// GzipHas reports whether the gzip-compressed tar stream b (a CRIU tmpfs
// image) has an entry called name.
func GzipHas(t testing.TB, b []byte, name string) bool {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if h.Name == name {
			return true
		}
	}
}

// GzipAppend returns the gzip-compressed tar stream b with an entry of
// header h (and no content) appended.
func GzipAppend(t testing.TB, b []byte, h *tar.Header) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	for {
		eh, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(eh); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
