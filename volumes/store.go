package volumes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// Layout of a volume directory, Root/<name>/, and the metadata the Store
// records.
const (
	// DataDirName is the directory inside a volume's directory that holds
	// its content: the directory containers mount (podman's _data).
	DataDirName = "_data"
	// MetadataName is the volume's metadata file, beside DataDirName.
	MetadataName = "volume.json"
	// DriverLocal is the only driver: a plain directory on the host.
	DriverLocal = "local"
	// ScopeLocal is the only scope.
	ScopeLocal = "local"
	// MaxMetadataSize is the largest volume.json Get reads and Create
	// writes.
	MaxMetadataSize = 1 << 20
)

// metadataVersion is the Version written into volume.json.
const metadataVersion = 1

// Staging directories live beside the volumes in Store.Root and start with
// a dot, so no valid volume name (format.ValidVolumeName) is ever one.
const (
	stageCreate = ".create-"
	stageImport = ".import-"
	stageRemove = ".remove-"
)

// Store manages named volumes under one directory. Its zero value is not
// usable: Root must be set. A Store holds no state besides its fields, so
// several Stores (and processes) may share a Root: creation, import and
// removal each take effect with a single rename.
type Store struct {
	// Root holds one directory per volume: Root/<name>/_data is the
	// content containers mount and Root/<name>/volume.json the
	// metadata, as podman lays out its volumes. The engine uses
	// <engine root>/volumes. Root is created (mode 0700) on the first
	// Create or Import.
	Root string
	// InUse, if not nil, reports whether a container uses the named
	// volume; Remove then refuses it with ErrInUse unless forced. The
	// engine supplies it from its container records.
	InUse func(name string) bool
}

// Volume describes a volume, with the fields and JSON names of
// `podman volume inspect`.
type Volume struct {
	// Name is the volume's name.
	Name string `json:"Name"`
	// Driver is always DriverLocal.
	Driver string `json:"Driver"`
	// Mountpoint is the directory containers mount: Root/<name>/_data.
	// It is relative if Store.Root is. It is not stored in volume.json.
	Mountpoint string `json:"Mountpoint"`
	// CreatedAt is when the volume was created or imported. For a volume
	// directory without volume.json (made by an older engine), it is the
	// modification time of its _data directory.
	CreatedAt time.Time `json:"CreatedAt"`
	// Labels are the labels given at creation; never nil.
	Labels map[string]string `json:"Labels"`
	// Scope is always ScopeLocal.
	Scope string `json:"Scope"`
	// Options are the driver options; the local driver here takes none,
	// so it is always empty, never nil.
	Options map[string]string `json:"Options"`
}

// volumeFile is the content of volume.json.
type volumeFile struct {
	Version   int               `json:"version"`
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	CreatedAt time.Time         `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
}

// CreateOptions configures Store.Create. The zero value (or nil) creates a
// volume without labels and fails with ErrExists if the name is taken.
type CreateOptions struct {
	// Labels are recorded in volume.json. Keys must be non-empty.
	Labels map[string]string
	// IgnoreExisting makes Create return the existing volume instead of
	// ErrExists (podman volume create --ignore; what run -v NAME:/path
	// needs, as a missing named volume is created there).
	IgnoreExisting bool
}

// MemberName returns the archive member that holds the named volume:
// "volumes/<name>.tar".
func MemberName(name string) string {
	return format.VolumesDir + "/" + name + ".tar"
}

// NameOfMember returns the volume name of an archive member
// "volumes/<name>.tar", and false for any other member or an invalid name.
func NameOfMember(member string) (string, bool) {
	rest, ok := strings.CutPrefix(member, format.VolumesDir+"/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, ".tar")
	if !ok || !format.ValidVolumeName(name) {
		return "", false
	}
	return name, true
}

func checkName(name string) error {
	if !format.ValidVolumeName(name) {
		return fmt.Errorf("%w %q: want 1 to 128 characters of [A-Za-z0-9_.-] starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

// errNoRoot reports a Store without Root: relative to the working
// directory, its paths could name anything.
var errNoRoot = errors.New("store has no root directory")

// check checks that s has a Root and that name is a valid volume name.
func (s *Store) check(name string) error {
	if s.Root == "" {
		return errNoRoot
	}
	return checkName(name)
}

// DataPath returns Root/<name>/_data, the directory containers mount for
// the named volume. It checks the name, not that the volume exists.
func (s *Store) DataPath(name string) (string, error) {
	if err := s.check(name); err != nil {
		return "", err
	}
	return filepath.Join(s.Root, name, DataDirName), nil
}

// Exists reports whether anything exists at the named volume's path, a
// valid volume or not (Create and Import would fail with ErrExists).
func (s *Store) Exists(name string) (bool, error) {
	if err := s.check(name); err != nil {
		return false, err
	}
	_, err := os.Lstat(filepath.Join(s.Root, name))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// Create creates an empty volume: Root/<name>/_data (mode 0755, owned by
// the caller) and its volume.json. It builds both in a staging directory in
// Root and renames it into place without replacing anything, so a
// concurrent Create or Import of the same name either wins whole or gets
// ErrExists, and a failure leaves nothing behind.
func (s *Store) Create(ctx context.Context, name string, opts *CreateOptions) (_ *Volume, err error) {
	defer wrap(&err, "create volume", name)
	if opts == nil {
		opts = &CreateOptions{}
	}
	if err := s.check(name); err != nil {
		return nil, err
	}
	if err := checkLabels(opts.Labels); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	exists, err := s.Exists(name)
	if err != nil {
		return nil, err
	}
	if exists {
		if opts.IgnoreExisting {
			return s.get(name)
		}
		return nil, ErrExists
	}
	st, err := s.stage(stageCreate, name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.discard())
		}
	}()
	if err := os.Mkdir(filepath.Join(st.dir, DataDirName), 0o755); err != nil {
		return nil, err
	}
	v := s.newVolume(name, opts.Labels)
	if err := writeMetadata(st.dir, v); err != nil {
		return nil, err
	}
	if err := st.commit(s.Root, name); err != nil {
		if errors.Is(err, ErrExists) && opts.IgnoreExisting {
			if err := st.discard(); err != nil {
				return nil, err
			}
			return s.get(name)
		}
		return nil, err
	}
	return v, nil
}

// Get returns the named volume, ErrNotFound if there is none, or
// ErrCorrupt if its directory is not a volume. A volume directory without
// volume.json (made by an engine that only created _data) is a volume
// without labels.
func (s *Store) Get(ctx context.Context, name string) (_ *Volume, err error) {
	defer wrap(&err, "get volume", name)
	if err := s.check(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.get(name)
}

// List returns every volume in Root, sorted by name. A missing Root holds
// no volumes. Entries of Root that cannot name a volume (staging
// directories) are left out; a volume directory that Get would refuse
// makes List fail.
func (s *Store) List(ctx context.Context) (_ []*Volume, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("list volumes: %w", err)
		}
	}()
	if s.Root == "" {
		return nil, errNoRoot
	}
	ents, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return []*Volume{}, nil
	}
	if err != nil {
		return nil, err
	}
	vols := make([]*Volume, 0, len(ents))
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !format.ValidVolumeName(e.Name()) {
			continue
		}
		v, err := s.get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", e.Name(), err)
		}
		vols = append(vols, v)
	}
	return vols, nil // ReadDir sorts by name
}

// Remove deletes the named volume and its content. It fails with
// ErrNotFound if there is no such volume and, unless force is set, with
// ErrInUse if Store.InUse reports that a container uses it. (force only
// skips that check; stopping or removing those containers first is the
// caller's job, as podman volume rm --force does.)
//
// The volume first disappears from Root with one rename, then its content
// is deleted; if that deletion fails, the error says so and Cleanup
// finishes it later.
func (s *Store) Remove(ctx context.Context, name string, force bool) (err error) {
	defer wrap(&err, "remove volume", name)
	if err := s.check(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(s.Root, name)
	fi, err := os.Lstat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNotFound
		}
		return err
	}
	if !fi.IsDir() {
		// Not a volume, but in its way: Remove is how to clear it.
		return os.Remove(dir)
	}
	if !force && s.InUse != nil && s.InUse(name) {
		return fmt.Errorf("%w by a container: remove the container first, or force", ErrInUse)
	}
	st, err := s.stage(stageRemove, name)
	if err != nil {
		return err
	}
	// Renaming the volume onto the empty staging directory replaces it;
	// the lock held on the old inode goes with it, so lock the volume
	// before the rename.
	lock, err := lockDir(dir)
	if err != nil {
		return errors.Join(err, st.discard())
	}
	defer lock.Close()
	if err := renameOverEmptyDir(dir, st.dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = ErrNotFound
		}
		return errors.Join(err, st.discard())
	}
	st.lock.Close()
	st.lock = nil
	if err := syncDir(s.Root); err != nil {
		return err
	}
	if err := removeAll(st.dir); err != nil {
		return fmt.Errorf("delete content (the volume is gone; Cleanup retries): %w", err)
	}
	return nil
}

// Cleanup removes what interrupted operations left in Root: staging
// directories of a Create or Import whose process died before renaming
// them into place, and volumes a Remove renamed away but did not finish
// deleting. A staging directory whose operation is still running is left
// alone (each is locked while in use).
func (s *Store) Cleanup(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("clean up volumes: %w", err)
		}
	}()
	if s.Root == "" {
		return errNoRoot
	}
	ents, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := e.Name()
		if !strings.HasPrefix(n, stageCreate) && !strings.HasPrefix(n, stageImport) && !strings.HasPrefix(n, stageRemove) {
			continue
		}
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(s.Root, n)
		lock, err := tryLockDir(p)
		if errors.Is(err, errLocked) || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := removeAll(p); err != nil {
			errs = append(errs, err)
		}
		lock.Close()
	}
	return errors.Join(errs...)
}

func (s *Store) newVolume(name string, labels map[string]string) *Volume {
	l := make(map[string]string, len(labels))
	maps.Copy(l, labels)
	return &Volume{
		Name:       name,
		Driver:     DriverLocal,
		Mountpoint: filepath.Join(s.Root, name, DataDirName),
		CreatedAt:  time.Now().UTC().Round(0),
		Labels:     l,
		Scope:      ScopeLocal,
		Options:    map[string]string{},
	}
}

func checkLabels(labels map[string]string) error {
	for k := range labels {
		if k == "" {
			return errors.New("empty label key")
		}
	}
	return nil
}

// get reads the named volume; name is checked.
func (s *Store) get(name string) (*Volume, error) {
	dir := filepath.Join(s.Root, name)
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrCorrupt, dir)
	}
	data := filepath.Join(dir, DataDirName)
	dfi, err := os.Lstat(data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s", ErrCorrupt, data)
	}
	if err != nil {
		return nil, err
	}
	if !dfi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrCorrupt, data)
	}
	v := s.newVolume(name, nil)
	b, err := readMetadata(filepath.Join(dir, MetadataName))
	if errors.Is(err, fs.ErrNotExist) {
		v.CreatedAt = dfi.ModTime().UTC()
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	var f volumeFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, MetadataName, err)
	}
	switch {
	case f.Version != metadataVersion:
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrCorrupt, MetadataName, f.Version, metadataVersion)
	case f.Name != name:
		return nil, fmt.Errorf("%w: %s names volume %q", ErrCorrupt, MetadataName, f.Name)
	case f.Driver != DriverLocal:
		return nil, fmt.Errorf("%w: %s: driver %q, want %q", ErrCorrupt, MetadataName, f.Driver, DriverLocal)
	}
	v.CreatedAt = f.CreatedAt
	maps.Copy(v.Labels, f.Labels)
	maps.Copy(v.Options, f.Options)
	return v, nil
}

// readMetadata reads a regular file of at most MaxMetadataSize bytes
// without following a symbolic link.
func readMetadata(p string) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMetadataSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrCorrupt, p, MaxMetadataSize)
	}
	return b, nil
}

// writeMetadata writes dir/volume.json for v: to a temporary file, synced,
// then renamed into place.
func writeMetadata(dir string, v *Volume) (err error) {
	f := volumeFile{
		Version:   metadataVersion,
		Name:      v.Name,
		Driver:    v.Driver,
		CreatedAt: v.CreatedAt,
		Labels:    v.Labels,
		Options:   v.Options,
	}
	b, err := json.MarshalIndent(&f, "", "\t")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if len(b) > MaxMetadataSize {
		return fmt.Errorf("metadata of %d bytes, limit %d", len(b), MaxMetadataSize)
	}
	tmp, err := os.CreateTemp(dir, "."+MetadataName+"-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, MetadataName))
}

// staging is a locked directory in Store.Root where a volume is built
// before it is renamed into place.
type staging struct {
	dir  string
	lock io.Closer // nil once released
}

// stage creates Root (if needed) and a locked staging directory in it,
// named op + name + random suffix.
func (s *Store) stage(op, name string) (*staging, error) {
	if s.Root == "" {
		return nil, errNoRoot
	}
	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.Root, op+name+"-")
	if err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, errors.Join(err, os.Remove(dir))
	}
	return &staging{dir: dir, lock: lock}, nil
}

// discard deletes the staging directory and everything in it.
func (st *staging) discard() error {
	err := removeAll(st.dir)
	if st.lock != nil {
		st.lock.Close()
		st.lock = nil
	}
	if err != nil {
		return fmt.Errorf("remove staging directory: %w", err)
	}
	return nil
}

// commit makes the staged volume durable, renames it to root/name without
// replacing anything there (ErrExists if something is) and syncs root.
func (st *staging) commit(root, name string) error {
	if err := syncFS(st.dir); err != nil {
		return err
	}
	if err := renameNoReplace(st.dir, filepath.Join(root, name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	st.lock.Close()
	st.lock = nil
	return syncDir(root)
}

// removeAll removes the tree p with fsutil.RemoveAll: never across a
// mount point (whatever is mounted below p is detached first), and also
// with read-only directories when the caller is not root.
func removeAll(p string) error { return fsutil.RemoveAll(p) }

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// wrap prefixes *err with "verb name: ".
func wrap(err *error, verb, name string) {
	if *err != nil {
		*err = fmt.Errorf("%s %s: %w", verb, name, *err)
	}
}
