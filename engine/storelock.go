package engine

import (
	"sync"

	"go.podman.io/storage"
	"go.podman.io/storage/types"
)

// storeInitMu serializes what initializes a graph driver: opening a store
// and shutting it down (Shutdown loads the driver again when it is not
// loaded). containers/storage's overlay driver sets a package variable in
// its Init, so two Engines in one process (the tests' two "hosts", or a
// migration tool) would otherwise race.
var storeInitMu sync.Mutex

// getStore is storage.GetStore under storeInitMu; the store it returns
// takes the lock in Shutdown too.
func getStore(o types.StoreOptions) (storage.Store, error) {
	storeInitMu.Lock()
	defer storeInitMu.Unlock()
	s, err := storage.GetStore(o)
	if err != nil {
		return nil, err
	}
	return lockedStore{s}, nil
}

// lockedStore is a store whose Shutdown holds storeInitMu.
type lockedStore struct{ storage.Store }

func (s lockedStore) Shutdown(force bool) ([]string, error) {
	storeInitMu.Lock()
	defer storeInitMu.Unlock()
	return s.Store.Shutdown(force)
}
