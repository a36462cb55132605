package format

import (
	"encoding/json"
	"errors"
	"io"
	"path"
	"path/filepath"
	"strings"
)

// whiteoutPrefix starts the names overlayfs and OCI layers use for
// deletions; a deleted path never names one.
const whiteoutPrefix = ".wh."

// CheckDeletedPath checks one path of a deleted.files document as the
// engine removes it from the container's root: "/etc/motd" as podman
// writes it, or "etc/motd"; with the leading slash removed it must be
// local and clean (no "." or ".." element), not the root itself, without
// NUL, at most [MaxPathLength] bytes, with no element over
// [MaxPathElement] bytes or starting with ".wh.". Errors wrap
// ErrInsecurePath or ErrTooLarge.
func CheckDeletedPath(p string) error {
	rel := strings.TrimPrefix(p, "/")
	switch {
	case len(p) > MaxPathLength:
		return errorf(ErrTooLarge, "deleted path of %d bytes (limit %d)", len(p), MaxPathLength)
	case strings.IndexByte(p, 0) >= 0:
		return errorf(ErrInsecurePath, "deleted path %q has a NUL byte", truncate(p, 100))
	case rel == "" || rel == ".":
		return errorf(ErrInsecurePath, "deleted path %q names the root", p)
	case !filepath.IsLocal(rel) || path.Clean(rel) != rel:
		return errorf(ErrInsecurePath, "deleted path %q is not local and clean", truncate(p, 100))
	}
	for e := range strings.SplitSeq(rel, "/") {
		if len(e) > MaxPathElement {
			return errorf(ErrTooLarge, "deleted path %q has an element of %d bytes (limit %d)", truncate(p, 100), len(e), MaxPathElement)
		}
		if strings.HasPrefix(e, whiteoutPrefix) {
			return errorf(ErrInsecurePath, "deleted path %q names a whiteout", truncate(p, 100))
		}
	}
	return nil
}

// ReadDeletedFiles reads a deleted.files document from r: a JSON array of
// paths (or null), at most [MaxDeletedFilesSize] bytes and
// [MaxDeletedFiles] paths, each accepted by [CheckDeletedPath], and nothing
// after the array but white space. It returns the paths as written. Verify,
// Extract and the engine's rootfs.ReadDeleted all read the document through
// it, so what one accepts the others accept.
func ReadDeletedFiles(r io.Reader) ([]string, error) {
	var out []string
	err := scanDeleted(r, func(p string) { out = append(out, p) })
	return out, err
}

// scanDeleted reads a deleted.files document from r, calling fn with each
// path; it keeps neither the document nor the paths, so checking one
// costs a few KiB whatever its size.
func scanDeleted(r io.Reader, fn func(string)) error {
	lr := &io.LimitedReader{R: r, N: MaxDeletedFilesSize + 1}
	err := scanDeletedJSON(json.NewDecoder(lr), fn)
	if lr.N == 0 {
		return errorf(ErrTooLarge, "deleted.files is over %d bytes", MaxDeletedFilesSize)
	}
	return err
}

func scanDeletedJSON(dec *json.Decoder, fn func(string)) error {
	tok, err := dec.Token()
	if err != nil {
		return tokenError(err)
	}
	if tok != nil { // null: no paths
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return errorf(ErrFormat, "deleted.files is not a JSON array of paths")
		}
		n := 0
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return tokenError(err)
			}
			p, ok := tok.(string)
			if !ok {
				return errorf(ErrFormat, "deleted.files: entry %d is not a string", n+1)
			}
			if n++; n > MaxDeletedFiles {
				return errorf(ErrTooLarge, "deleted.files lists more than %d paths", MaxDeletedFiles)
			}
			if err := CheckDeletedPath(p); err != nil {
				return err
			}
			fn(p)
		}
		if _, err := dec.Token(); err != nil { // the closing bracket
			return tokenError(err)
		}
	}
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil || isSyntax(err):
		return errorf(ErrFormat, "deleted.files: data after the JSON array")
	default:
		return err
	}
}

// tokenError classifies an error of the JSON decoder: bad or truncated
// JSON is ErrFormat; an error of the reader (a digest mismatch) is passed
// on as it is.
func tokenError(err error) error {
	if isSyntax(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(ErrFormat, "deleted.files: %v", err)
	}
	return err
}

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}
