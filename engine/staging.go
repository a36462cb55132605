package engine

import (
	"errors"
	"filippo.io/age"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ckpt/ckpt/format"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// newStaging makes an empty staging directory, locked (flock on
// <dir>.lock) while the import runs: in TmpDir (see [Engine.TmpDir]) when
// it has room for need bytes, else under Root/import. Staging directories
// whose lock is free belong to an import that was killed: their imports
// are reconciled (reconcileImport) and they are removed first.
func (e *Engine) newStaging(need int64) (string, *fsutil.Lock, error) {
	bases := e.stagingBases()
	base := bases[0]
	if len(bases) > 1 && need >= 0 && roomFor(filepath.Dir(bases[1]), need) {
		base = bases[1]
	}
	// Root/import holds the import's record wherever it stages.
	for _, d := range []string{bases[0], base} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", nil, fmt.Errorf("create staging directory: %w", err)
		}
	}
	// Killed imports are undone first; their staging directories go
	// with their records (unless a monitor still restores from one).
	e.reconcileImports()
	e.sweepStaging()
	d, err := os.MkdirTemp(base, "staging-")
	for i := 0; i < 3 && errors.Is(err, os.ErrNotExist); i++ {
		// Another import removed the empty base meanwhile.
		if err = os.MkdirAll(base, 0o700); err == nil {
			d, err = os.MkdirTemp(base, "staging-")
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("create staging directory: %w", err)
	}
	l, err := fsutil.TryLock(d+".lock", "import")
	if err != nil {
		_ = fsutil.RemoveAll(d)
		return "", nil, fmt.Errorf("lock staging directory: %w", err)
	}
	return d, l, nil
}

// stagingBases returns the directories staging directories are made in.
func (e *Engine) stagingBases() []string {
	bases := []string{filepath.Join(e.root(), "import")}
	if t := e.transientRoot(); t != "" {
		bases = append(bases, filepath.Join(t, "import"))
	}
	return bases
}

// sweepStaging removes the staging directories of imports that died:
// those whose lock is free and that no import record names.
func (e *Engine) sweepStaging() {
	for _, b := range e.stagingBases() {
		ents, err := os.ReadDir(b)
		if err != nil {
			continue
		}
		for _, d := range ents {
			if !d.IsDir() || !strings.HasPrefix(d.Name(), "staging-") {
				continue
			}
			if _, err := os.Lstat(e.importRecordPath(d.Name())); err == nil {
				continue // a killed import's: reconcileImports undoes it
			}
			old := filepath.Join(b, d.Name())
			if l, err := fsutil.TryLock(old+".lock", "import cleanup"); err == nil {
				_ = fsutil.RemoveAll(old)
				_ = os.Remove(old + ".lock")
				l.Unlock()
			}
		}
	}
}

// readDeclared returns the manifest of the archive at path (not trusted:
// Extract checks every size against it; this only picks where to stage
// and checks the room), or nil if it has none (a legacy archive) or
// cannot be read.
func readDeclared(path string, ids []age.Identity) *format.Manifest {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := unseal(f, ids)
	if err != nil {
		return nil
	}
	m, _, err := format.ReadManifest(r)
	if err != nil {
		return nil
	}
	return m
}
