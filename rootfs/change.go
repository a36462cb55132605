package rootfs

import (
	"encoding/json"
	"errors"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/format"
)

// ChangeKind says how a path differs between the image and the container.
type ChangeKind int

// The change kinds.
const (
	// Added is a path the image does not have.
	Added ChangeKind = iota + 1
	// Modified is a path both have, with a different type, metadata,
	// extended attributes, link target or content.
	Modified
	// Deleted is a path the container no longer has. A deleted directory
	// is listed once; its descendants are implied.
	Deleted
)

// String returns "A", "C" or "D", as podman diff prints them.
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "A"
	case Modified:
		return "C"
	case Deleted:
		return "D"
	}
	return "?"
}

// Change is one difference between an image root and a container root.
type Change struct {
	// Path is slash-separated and relative to the root: "etc/hosts". The
	// root itself is ".". It is always local and clean.
	Path string
	// Kind says whether the path was added, modified or deleted.
	Kind ChangeKind
}

// WhiteoutPrefix starts the names overlay-style layers use for deletion
// markers. Apply refuses such names and WriteDiff does not write them, so a
// diff can never smuggle a deletion into an overlay upper directory.
const WhiteoutPrefix = ".wh."

// DeletedFiles returns the deleted paths of changes in podman's
// deleted.files style: sorted, each with a leading slash ("/etc/motd").
// It returns a non-nil empty slice when nothing was deleted.
func DeletedFiles(changes []Change) []string {
	out := []string{}
	for _, c := range changes {
		if c.Kind == Deleted {
			out = append(out, "/"+c.Path)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// WriteDeleted writes the deleted.files document for changes to w: a JSON
// array of DeletedFiles, indented as podman writes it. Podman and
// checkpointctl read it with json.Unmarshal into []string.
func WriteDeleted(w io.Writer, changes []Change) error {
	list := DeletedFiles(changes)
	for _, p := range list {
		if _, err := cleanDeleted(p); err != nil {
			return pathErr("write", p, err)
		}
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return pathErr("write", "", err)
	}
	_, err = w.Write(b)
	return pathErr("write", "", err)
}

// ReadDeleted reads a deleted.files document: a JSON array of paths, at
// most MaxDeletedFilesSize bytes and MaxDeletedFiles paths, each one
// format.CheckDeletedPath accepts, with nothing after the array. It reads
// through format.ReadDeletedFiles, the reader format.Verify and
// format.Extract check the member with, so an archive they accept is one
// ReadDeleted accepts. Apply checks the paths again against the root.
func ReadDeleted(r io.Reader) ([]string, error) {
	list, err := format.ReadDeletedFiles(r)
	if err != nil {
		return nil, pathErr("read", "deleted.files", fromFormat(err))
	}
	return list, nil
}

// fromFormat makes an error of package format match this package's
// sentinel too (errors.Is), keeping its message.
func fromFormat(err error) error {
	for _, s := range [][2]error{{format.ErrTooLarge, ErrTooLarge}, {format.ErrInsecurePath, ErrInsecurePath}, {format.ErrFormat, ErrFormat}} {
		if errors.Is(err, s[0]) {
			return &formatError{err: err, sentinel: s[1]}
		}
	}
	return err
}

// formatError is an error of package format that is also this package's
// sentinel.
type formatError struct {
	err, sentinel error
}

func (e *formatError) Error() string   { return e.err.Error() }
func (e *formatError) Unwrap() []error { return []error{e.err, e.sentinel} }

// checkName reports whether name (slash-separated, relative) may be
// created or removed inside a root: it must be ".", or local and clean,
// with no NUL, no empty or overlong component and no whiteout component.
// Backslashes and non-UTF-8 bytes are ordinary file name bytes on Linux and
// are allowed.
func checkName(name string) error {
	if name == "" {
		return errorf(ErrInsecurePath, "empty path")
	}
	if len(name) > MaxPathLength {
		return errorf(ErrTooLarge, "path of %d bytes, limit %d", len(name), MaxPathLength)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return errorf(ErrInsecurePath, "NUL in path %q", name)
	}
	if name == "." {
		return nil
	}
	if !filepath.IsLocal(name) || path.Clean(name) != name || strings.HasPrefix(name, "/") {
		return errorf(ErrInsecurePath, "path %q is not local and clean", name)
	}
	for c := range strings.SplitSeq(name, "/") {
		if len(c) > MaxNameLength {
			return errorf(ErrTooLarge, "path component of %d bytes, limit %d", len(c), MaxNameLength)
		}
		if strings.HasPrefix(c, WhiteoutPrefix) {
			return errorf(ErrInsecurePath, "whiteout name %q", c)
		}
	}
	return nil
}

// cleanDeleted turns a deleted.files entry ("/etc/motd" as podman writes
// it, or "etc/motd") into a checked relative path, with the rules of
// format.CheckDeletedPath. The root itself cannot be deleted.
func cleanDeleted(p string) (string, error) {
	if err := format.CheckDeletedPath(p); err != nil {
		return "", fromFormat(err)
	}
	return strings.TrimPrefix(p, "/"), nil
}

// cleanSkip turns a ChangesOptions.Skip entry into a relative path.
func cleanSkip(p string) (string, error) {
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		return "", errorf(ErrInsecurePath, "skip path %q names the root", p)
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return "", errorf(ErrInsecurePath, "NUL in skip path %q", p)
	}
	return rel, nil
}

// keepXattr reports whether an extended attribute is captured and
// restored: user.* (except user.overlay.*, overlayfs's own bookkeeping with
// the userxattr mount option) and security.capability. trusted.*,
// security.selinux and other security.* labels, and system.* (ACLs) are
// neither captured nor restored.
func keepXattr(name string) bool {
	if strings.HasPrefix(name, "user.") {
		return !strings.HasPrefix(name, "user.overlay.")
	}
	return name == "security.capability"
}
