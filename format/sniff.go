package format

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"unicode/utf8"
)

// Looks is what a file looks like to [Sniff]: a phrase with its article,
// for "it looks like %s".
type Looks string

// What Sniff tells files apart by.
const (
	// LooksUnknown: nothing Sniff knows (binary data, an unreadable
	// stream, or a tar whose bounded prefix tells nothing).
	LooksUnknown Looks = ""
	// LooksEmpty: a file of zero bytes.
	LooksEmpty Looks = "an empty file"
	// LooksText: valid UTF-8 without NUL or other control bytes but white
	// space, and not a tar.
	LooksText Looks = "a text file"
	// LooksCheckpoint: a tar (compressed or not) with a checkpoint
	// archive's members (the manifest, config.dump, spec.dump, CRIU
	// images, ...): it may still be corrupt.
	LooksCheckpoint Looks = "a checkpoint archive"
	// LooksRootfs: a tar of a root filesystem (bin/, etc/, usr/, ...).
	LooksRootfs Looks = "a root filesystem tar"
	// LooksOCIArchive: an OCI image layout in a tar (oci-layout,
	// index.json, blobs/), as `podman save --format oci-archive` writes.
	LooksOCIArchive Looks = "an OCI image archive (oci-archive)"
	// LooksDockerArchive: a Docker image archive (manifest.json and layer
	// tars), as `podman save` and `docker save` write.
	LooksDockerArchive Looks = "a Docker image archive (docker-archive)"
	// LooksTar: a whole tar with none of the above's members.
	LooksTar Looks = "a tar archive"
	// LooksOtherCompression: xz or bzip2, which Sniff does not decode.
	LooksOtherCompression Looks = "a file compressed with xz or bzip2"
	// LooksSealed: a sealed (encrypted) checkpoint archive, which begins
	// with SealedMagic (docs/FORMAT.md §11; package format/seal), or with
	// SealedPrefix and another envelope version.
	LooksSealed Looks = "a sealed checkpoint archive"
)

// SealedMagic is the first line of a sealed archive, the one clear line
// before its age header.
const SealedMagic = SealedPrefix + "v1\n"

// SealedPrefix begins the first line of a sealed archive of any envelope
// version: a reader names one of a version it does not read as such,
// not as a broken archive.
const SealedPrefix = "ckpt-sealed-archive/"

// ImageArchive reports whether l is an image archive (OCI or Docker).
func (l Looks) ImageArchive() bool { return l == LooksOCIArchive || l == LooksDockerArchive }

// NotCheckpoint returns an error wrapping [ErrNotCheckpoint] that says
// what the file looks like, or nil if l is LooksCheckpoint or
// LooksUnknown (nothing better to say than the reader's error).
func (l Looks) NotCheckpoint() error {
	if l == LooksCheckpoint || l == LooksUnknown {
		return nil
	}
	if l == LooksSealed {
		return errorf(ErrNotCheckpoint, "it is %s: give its key with --decrypt-key", l)
	}
	return errorf(ErrNotCheckpoint, "it looks like %s", l)
}

// Bounds of Sniff's work: it reads at most SniffHeaders tar headers and,
// of a compressed file, at most SniffBytes of decompressed stream.
const (
	SniffHeaders = 4096
	SniffBytes   = 32 << 20
	// sniffTextBytes is how much of a file the text test looks at.
	sniffTextBytes = 4096
)

// rootfsDirs are top-level directories of a root filesystem; two of them
// make a tar a root filesystem tar.
var rootfsDirs = map[string]bool{
	"bin": true, "sbin": true, "etc": true, "usr": true, "lib": true, "lib64": true, "var": true,
	"dev": true, "proc": true, "sys": true, "root": true, "home": true, "tmp": true, "opt": true, "run": true,
}

// Sniff tells what the file r of size bytes looks like, to name a file
// that is not a checkpoint archive for what it is. It reads the file's
// first bytes and then its tar headers, never the members' contents: an
// image archive's index.json or manifest.json comes after its layers, so
// an uncompressed tar's members are skipped by seeking over them. Work
// and memory are bounded (SniffHeaders, SniffBytes, the zstd decoder's
// limits); a file that tells nothing within them is LooksUnknown. The
// error reports trouble reading r, not what its contents are.
func Sniff(r io.ReaderAt, size int64) (Looks, error) {
	if size <= 0 {
		return LooksEmpty, nil
	}
	head := make([]byte, min(size, sniffTextBytes))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return LooksUnknown, err
	}
	if bytes.HasPrefix(head, xzMagic) || bytes.HasPrefix(head, bzip2Magic) {
		return LooksOtherCompression, nil
	}
	if bytes.HasPrefix(head, []byte(SealedPrefix)) {
		return LooksSealed, nil
	}
	br := bufio.NewReader(io.NewSectionReader(r, 0, size))
	c, err := detect(br)
	if err != nil {
		return LooksUnknown, nil
	}
	var tr *tar.Reader
	cut := func() bool { return false }
	if len(c.magic) == 0 {
		// Uncompressed: tar skips the members by seeking on a Seeker.
		tr = tar.NewReader(io.NewSectionReader(r, 0, size))
	} else {
		dec, err := c.newReader(br, 1)
		if err != nil {
			return LooksUnknown, nil
		}
		defer dec.Close()
		lr := &io.LimitedReader{R: dec, N: SniffBytes}
		tr = tar.NewReader(lr)
		cut = func() bool { return lr.N == 0 }
	}
	looks := sniffTar(tr, cut)
	if looks == LooksUnknown && len(c.magic) == 0 && isText(head) {
		return LooksText, nil
	}
	return looks, nil
}

// SniffFile is [Sniff] of the file at name.
func SniffFile(name string) (Looks, error) {
	f, err := os.Open(name)
	if err != nil {
		return LooksUnknown, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return LooksUnknown, err
	}
	if !fi.Mode().IsRegular() {
		return LooksUnknown, fmt.Errorf("%s is not a regular file", name)
	}
	return Sniff(f, fi.Size())
}

// sniffTar reads tr's headers, within the bounds, and says what the tar
// looks like; cut reports whether tr's stream was cut at SniffBytes.
func sniffTar(tr *tar.Reader, cut func() bool) Looks {
	top := map[string]bool{} // top-level names
	layers, whole := false, false
	for i := 0; i < SniffHeaders; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			whole = i > 0 && !cut()
			break
		}
		if err != nil {
			break
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue
		}
		switch KindOf(name) {
		case KindManifest, KindConfig, KindSpec, KindImage, KindPreImage, KindStats, KindCPUInfo,
			KindRootfsDiff, KindDeletedFiles, KindNetworkStatus, KindDevShm:
			return LooksCheckpoint
		}
		first, rest, _ := strings.Cut(name, "/")
		top[first] = true
		if top["oci-layout"] && top["index.json"] {
			return LooksOCIArchive
		}
		// docker-archive: <digest>.tar layers, or <id>/layer.tar.
		if rest == "" && strings.HasSuffix(first, ".tar") || rest == "layer.tar" {
			layers = true
		}
	}
	n := 0
	for d := range rootfsDirs {
		if top[d] {
			n++
		}
	}
	switch {
	case top["manifest.json"] && (layers || top["repositories"]):
		return LooksDockerArchive
	case top["oci-layout"]:
		return LooksOCIArchive
	case n >= 2:
		return LooksRootfs
	case whole:
		return LooksTar
	}
	return LooksUnknown
}

// isText reports whether b, a file's beginning, looks like text: valid
// UTF-8 (but for a rune cut at the end) without control bytes other than
// white space.
func isText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			return len(b) < utf8.UTFMax && !utf8.FullRune(b)
		}
		if r < 0x20 && !strings.ContainsRune("\t\n\r\f\v", r) || r == 0x7f {
			return false
		}
		b = b[n:]
	}
	return true
}
