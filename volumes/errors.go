package volumes

import "errors"

var (
	// ErrInvalidName reports a volume name that format.ValidVolumeName
	// rejects: 1 to 128 characters of [A-Za-z0-9_.-], starting with a
	// letter or digit.
	ErrInvalidName = errors.New("volumes: invalid volume name")
	// ErrExists reports a Create or Import of a name a volume already has.
	ErrExists = errors.New("volumes: volume already exists")
	// ErrNotFound reports a volume that does not exist.
	ErrNotFound = errors.New("volumes: no such volume")
	// ErrInUse reports a Remove of a volume that Store.InUse says a
	// container uses.
	ErrInUse = errors.New("volumes: volume is in use")
	// ErrCorrupt reports a volume directory whose layout or volume.json
	// is not what the Store writes: _data missing or not a directory,
	// metadata that does not parse or names another volume.
	ErrCorrupt = errors.New("volumes: corrupt volume")
	// ErrInvalidMount reports a bind mount record that is not usable as
	// given: a source or destination that is not absolute and clean, or an
	// unknown option.
	ErrInvalidMount = errors.New("volumes: invalid bind mount")
	// ErrBindSource reports a bind mount whose source does not exist on
	// this host (or cannot be examined).
	ErrBindSource = errors.New("volumes: bind mount source missing")
)
