package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/rootfs"
)

// ImportOptions configures Store.Import. The zero value (or nil) refuses
// device nodes and FIFOs, restores the owners the tar records, uses
// rootfs's limits and records no labels.
type ImportOptions struct {
	// Labels are recorded in the new volume's volume.json.
	Labels map[string]string
	// Devices allows character and block device nodes in the tar. A
	// character device 0/0 (an overlay whiteout) is refused even then.
	Devices bool
	// FIFOs allows named pipes in the tar.
	FIFOs bool
	// NoChown leaves every file owned by the caller instead of the uid and
	// gid the tar records (for rootless use and tests).
	NoChown bool
	// MaxEntries lowers rootfs.MaxEntries; zero means rootfs.MaxEntries.
	MaxEntries int
	// MaxEntrySize lowers rootfs.MaxEntrySize; zero means
	// rootfs.MaxEntrySize.
	MaxEntrySize int64
	// MaxTotalSize lowers rootfs.MaxTotalSize; zero means
	// rootfs.MaxTotalSize.
	MaxTotalSize int64
}

// Export writes the named volume's content to w as an uncompressed tar
// stream, the archive member volumes/<name>.tar: the _data directory itself
// as "./", then every file below it, sorted by name, with modes, owners,
// nanosecond mtimes, user.* and security.capability extended attributes,
// symbolic links and hardlinks (within the volume) kept, device nodes and
// FIFOs included (Import takes them only with ImportOptions.Devices and
// FIFOs); sockets are left out. The same tree always gives the
// same bytes (rootfs.WriteDiff writes it), and nothing is staged on disk.
// w is not closed.
//
// The content must not change while Export runs (stop or freeze the
// containers using it): a file that shrinks or changes type fails with
// rootfs.ErrChanged. A name rootfs.Apply would refuse, such as a
// component starting with ".wh.", fails with rootfs.ErrInsecurePath,
// since Import could not restore it. Export checks ctx before each entry.
func (s *Store) Export(ctx context.Context, w io.Writer, name string) (err error) {
	defer wrap(&err, "export volume", name)
	if err := s.check(name); err != nil {
		return err
	}
	if _, err := s.get(name); err != nil {
		return err
	}
	data := filepath.Join(s.Root, name, DataDirName)
	changes, err := rootfs.Changes(ctx, "", data, nil)
	if err != nil {
		return err
	}
	return rootfs.WriteDiff(ctx, w, data, changes, &rootfs.WriteOptions{Devices: true, FIFOs: true})
}

// Source returns the archive member content of the named volume for
// format.Writer.Add(MemberName(name), ...): Export streamed through a pipe,
// once per Open, nothing written to disk.
func (s *Store) Source(ctx context.Context, name string) format.Source {
	return format.StreamSource(func(w io.Writer) error {
		return s.Export(ctx, w, name)
	})
}

// Import creates the volume name from r, a tar stream as Export writes it
// (an archive's volumes/<name>.tar member), as if it came from a stranger.
//
// If anything exists at the name, Import fails with ErrExists before
// reading r, and the existing volume is left as it is (a caller keeps it,
// or removes it first). Otherwise the tar is
// extracted by rootfs.Apply into a locked staging directory in Root: every
// path is resolved beneath the new _data directory without following a
// symbolic link, so no entry can write, link or chmod anything outside it
// (names with "..", absolute names, entries below a symbolic link and
// hardlinks to anything but a file the same tar extracted earlier are
// refused with rootfs.ErrInsecurePath; device nodes and FIFOs with
// rootfs.ErrSpecialFile unless opts allows them). After the tar trailer,
// Import reads r to its end (ignoring what follows the trailer), so a
// verifying reader such as format.Reader checks the member's size and
// digest before the volume appears. The staged volume is synced and renamed
// into place without replacing anything.
//
// On any failure, including a read error from r and ctx being cancelled
// (checked before each entry), nothing is left in Root: no volume and no
// staging directory.
func (s *Store) Import(ctx context.Context, r io.Reader, name string, opts *ImportOptions) (err error) {
	defer wrap(&err, "import volume", name)
	if opts == nil {
		opts = &ImportOptions{}
	}
	if err := s.check(name); err != nil {
		return err
	}
	if err := checkLabels(opts.Labels); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	exists, err := s.Exists(name)
	if err != nil {
		return err
	}
	if exists {
		return ErrExists
	}
	st, err := s.stage(stageImport, name)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.discard())
		}
	}()
	data := filepath.Join(st.dir, DataDirName)
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	err = rootfs.Apply(ctx, data, r, nil, &rootfs.ApplyOptions{
		Devices:      opts.Devices,
		FIFOs:        opts.FIFOs,
		NoChown:      opts.NoChown,
		MaxEntries:   opts.MaxEntries,
		MaxEntrySize: opts.MaxEntrySize,
		MaxTotalSize: opts.MaxTotalSize,
	})
	if err != nil {
		return err
	}
	// Read to the end, so a verifying reader checks size and digest
	// before the volume appears. Data after the tar trailer is ignored, as
	// tar(1) does.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read after the tar trailer: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v := s.newVolume(name, opts.Labels)
	if err := writeMetadata(st.dir, v); err != nil {
		return err
	}
	return st.commit(s.Root, name)
}
