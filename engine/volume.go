package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ckpt/ckpt/volumes"
)

// Named volumes: what `podman volume` does, over the engine's store
// (Root/volumes). A volume is in use while a container record, in any
// state, mounts it.

// Volumes returns every named volume, sorted by name.
func (e *Engine) Volumes(ctx context.Context) ([]*volumes.Volume, error) {
	return e.volumeStore().List(ctx)
}

// Volume returns the named volume; [volumes.ErrNotFound] if there is none.
func (e *Engine) Volume(ctx context.Context, name string) (*volumes.Volume, error) {
	return e.volumeStore().Get(ctx, name)
}

// VolumeCreate creates an empty named volume ([volumes.Store.Create]).
func (e *Engine) VolumeCreate(ctx context.Context, name string, o *volumes.CreateOptions) (*volumes.Volume, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	return e.volumeStore().Create(ctx, name, o)
}

// VolumeUsers returns the containers that mount the named volume, oldest
// first.
func (e *Engine) VolumeUsers(ctx context.Context, name string) ([]*Container, error) {
	list, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	var users []*Container
	for _, c := range list {
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name == name {
				users = append(users, c)
				break
			}
		}
	}
	return users, nil
}

// VolumeRemove removes the named volume and its content. A volume a
// container mounts is refused ([volumes.ErrInUse], with RemedyVolumeForce)
// unless force, which removes those containers first (killing running
// ones), as `podman volume rm --force` does.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	if err := requireRoot(); err != nil {
		return err
	}
	users, err := e.VolumeUsers(ctx, name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if len(users) > 0 && !force {
		names := ""
		for i, c := range users {
			if i > 0 {
				names += ", "
			}
			names += c.Name
		}
		return remedy(fmt.Errorf("remove volume %s: %w by container %s", name, volumes.ErrInUse, names), RemedyVolumeForce, name)
	}
	for _, c := range users {
		if err := e.Remove(ctx, c.ID, true); err != nil {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
	}
	return e.volumeStore().Remove(ctx, name, force)
}

// VolumePrune removes every volume no container mounts and returns their
// names.
func (e *Engine) VolumePrune(ctx context.Context) ([]string, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	st := e.volumeStore()
	vols, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range vols {
		err := st.Remove(ctx, v.Name, false)
		switch {
		case err == nil:
			removed = append(removed, v.Name)
		case !errors.Is(err, volumes.ErrInUse) && !errors.Is(err, volumes.ErrNotFound):
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}
