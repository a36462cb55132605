package volumes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// BindMount records a host path mounted into a container. Checkpoint
// archives carry these records, never the content: restore mounts the
// target host's own Source, which must already exist there
// (CheckBindSources).
type BindMount struct {
	// Source is the absolute, clean path on the host.
	Source string `json:"source"`
	// Destination is the absolute, clean path inside the container.
	Destination string `json:"destination"`
	// Options are mount options such as "ro" (see Validate).
	Options []string `json:"options,omitempty"`
}

// bindOptions are the options a BindMount may carry (see Validate).
var bindOptions = map[string]bool{
	"ro": true, "rw": true,
	"bind": true, "rbind": true,
	"private": true, "rprivate": true, "shared": true, "rshared": true,
	"slave": true, "rslave": true, "unbindable": true, "runbindable": true,
	"nosuid": true, "suid": true, "nodev": true, "dev": true, "noexec": true, "exec": true,
	"z": true, "Z": true,
}

// Validate checks a record read from an archive before anything uses it:
// Source and Destination absolute and clean without NUL bytes, and each
// option one of ro, rw, bind, rbind, the propagation modes ([r]private,
// [r]shared, [r]slave, [r]unbindable), nosuid, suid, nodev, dev, noexec,
// exec, z and Z. Options that would change the host path itself (podman's
// "U", which chowns it) are refused. Errors wrap ErrInvalidMount. Validate
// does not look at the host; CheckBindSources does.
func (m BindMount) Validate() error {
	for _, p := range []struct{ what, path string }{{"source", m.Source}, {"destination", m.Destination}} {
		if p.path == "" || !filepath.IsAbs(p.path) || filepath.Clean(p.path) != p.path || strings.IndexByte(p.path, 0) >= 0 {
			return fmt.Errorf("%w: %s %q is not an absolute, clean path", ErrInvalidMount, p.what, p.path)
		}
	}
	for _, o := range m.Options {
		if !bindOptions[o] {
			return fmt.Errorf("%w: %s: unknown option %q", ErrInvalidMount, m.Destination, o)
		}
	}
	return nil
}

// CheckBindSources checks bind mount records on the host that is about to
// restore them: each must Validate, no two may share a Destination, and
// each Source must exist here (symbolic links are followed, as the mount
// would). Bind mounts are never created from archive content, so a missing
// source is the user's to create. It reports every problem, one line each
// (errors.Join), each wrapping ErrInvalidMount or ErrBindSource, and
// returns nil if there is none.
func CheckBindSources(mounts []BindMount) error {
	var errs []error
	dests := make(map[string]bool, len(mounts))
	for _, m := range mounts {
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if dests[m.Destination] {
			errs = append(errs, fmt.Errorf("%w: destination %s is mounted twice", ErrInvalidMount, m.Destination))
			continue
		}
		dests[m.Destination] = true
		_, err := os.Stat(m.Source)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, &sentinelError{ErrBindSource, fmt.Sprintf("bind mount source %s (mounted at %s) does not exist on this host: create it, then restore again", m.Source, m.Destination), err})
		default:
			errs = append(errs, &sentinelError{ErrBindSource, fmt.Sprintf("bind mount source %s (mounted at %s): %v", m.Source, m.Destination, err), err})
		}
	}
	return errors.Join(errs...)
}

// sentinelError is a message that matches a sentinel and an underlying
// error without repeating the sentinel's text.
type sentinelError struct {
	sentinel error
	msg      string
	err      error
}

func (e *sentinelError) Error() string   { return e.msg }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }
