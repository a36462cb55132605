package rootfs

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"
)

// A tiny tar builder for hostile test archives, in the spirit of
// containerd's pkg/archive/tartest: entries are headers plus bodies, and a
// header may declare more content than it carries.

type tarEntry struct {
	hdr  tar.Header
	body string
	// truncate stops the archive right after this entry's header and
	// body, without padding or trailer, to fake a huge or short entry.
	truncate bool
}

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func tDir(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: testTime}}
}

func tFile(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func tSymlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func tLink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: testTime}}
}

func tDev(typ byte, name string, major, minor int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o644, Devmajor: major, Devminor: minor, ModTime: testTime}}
}

// tHuge declares size bytes and carries a few, then ends the stream.
func tHuge(name string, size int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: testTime}, body: "tiny", truncate: true}
}

func withXattrs(e tarEntry, kv ...string) tarEntry {
	e.hdr.PAXRecords = make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		e.hdr.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
	}
	e.hdr.Format = tar.FormatPAX
	return e
}

// buildTar writes the entries as a tar stream. It does not validate
// anything: names, sizes and link targets go in as given.
func buildTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("WriteHeader(%q) = %v", h.Name, err)
		}
		if e.truncate {
			// WriteHeader has already put the header block in buf.
			buf.WriteString(e.body)
			return buf.Bytes()
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("Write(%q) = %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return buf.Bytes()
}
