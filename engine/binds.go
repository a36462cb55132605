package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckpt/ckpt/volumes"
)

// ErrHostResource reports an archive whose container used something of
// its host (a bind mount of a host path, the host's network) that an
// import gives it only when the user says so with a flag.
var ErrHostResource = errors.New("engine: the checkpoint needs a host resource the user must grant")

// BindMap is one -v SRC:DST[:ro] given to an import: the host path SRC
// this host provides for the checkpoint's bind mount at DST.
type BindMap = volumes.BindMount

// hostGrants are the user's answers to what an archive asks of the host.
type hostGrants struct {
	// binds are the user's -v SRC:DST mappings.
	binds []BindMap
	// dropBinds gives every unmapped bind mount an empty stand-in.
	dropBinds bool
}

// grantedBinds decides every bind mount of an archive's container from the
// user's flags alone: a destination mapped with -v gets the user's source;
// with dropBinds an unmapped one gets an empty stand-in (returned in
// dropped); otherwise it is an error that lists every destination still
// needing an answer. The archive's own sources are never mounted: they
// name paths of a host nobody here vouched for.
func grantedBinds(recorded []volumes.BindMount, g hostGrants) (binds []volumes.BindMount, dropped []string, err error) {
	want := make(map[string]volumes.BindMount, len(recorded))
	for _, b := range recorded {
		// Only the destination is used (for the stand-in): check it alone.
		if err := (volumes.BindMount{Source: "/", Destination: b.Destination}).Validate(); err != nil {
			return nil, nil, err
		}
		if _, dup := want[b.Destination]; dup {
			return nil, nil, fmt.Errorf("%w: %s is mounted twice", volumes.ErrInvalidMount, b.Destination)
		}
		want[b.Destination] = b
	}
	mapped := make(map[string]bool, len(g.binds))
	for _, m := range g.binds {
		dst := filepath.Clean(m.Destination)
		if _, ok := want[dst]; !ok {
			return nil, nil, fmt.Errorf("%w: bind map %s:%s: the checkpoint has no bind mount at %s%s",
				ErrHostResource, m.Source, m.Destination, dst, bindList(recorded))
		}
		if mapped[dst] {
			return nil, nil, fmt.Errorf("%w: %s is mapped twice", ErrHostResource, dst)
		}
		mapped[dst] = true
		binds = append(binds, volumes.BindMount{Source: filepath.Clean(m.Source), Destination: dst, Options: m.Options})
	}
	var missing []string
	for _, b := range recorded {
		switch {
		case mapped[b.Destination]:
		case g.dropBinds:
			dropped = append(dropped, b.Destination)
		default:
			missing = append(missing, fmt.Sprintf("%s (on the source host %q)", b.Destination, b.Source))
		}
	}
	if len(missing) > 0 {
		return nil, nil, remedy(fmt.Errorf("%w: the checkpoint's container had bind mounts of its host's paths: %s",
			ErrHostResource, strings.Join(missing, ", ")), RemedyBinds, "")
	}
	return binds, dropped, nil
}

// bindList names the checkpoint's bind mount destinations for an error.
func bindList(recorded []volumes.BindMount) string {
	if len(recorded) == 0 {
		return " (it has none)"
	}
	var d []string
	for _, b := range recorded {
		d = append(d, b.Destination)
	}
	slices.Sort(d)
	return " (it has " + strings.Join(d, ", ") + ")"
}

// grantedNetwork checks the archive's network mode against the user's
// --network: the host's network only when both say so.
func grantedNetwork(recorded, flag string) (string, error) {
	if recorded == "" {
		recorded = NetworkNone
	}
	switch {
	case flag == "" && recorded == NetworkHost:
		return "", remedy(fmt.Errorf("%w: the checkpoint's container ran in its host's network namespace", ErrHostResource), RemedyNetworkHost, "")
	case flag == "" || flag == recorded:
		return recorded, nil
	case flag == NetworkHost:
		return "", remedy(fmt.Errorf("%w: network %s was asked for, but the checkpoint's container had a private network (its sockets are restored there)", ErrUnsupported, flag), RemedyNoNetwork, "")
	default:
		return "", remedy(fmt.Errorf("%w: network %s was asked for, but the checkpoint's container ran in its host's network namespace and its sockets cannot move to a private one", ErrUnsupported, flag), RemedyNetworkHost, "")
	}
}

// standIns makes an empty stand-in below dir for each dropped bind mount
// destination: a regular file where the container's root has a file at
// that path, else a directory. It returns the bind mounts to add.
func standIns(dir, root string, dropped []string) ([]Mount, error) {
	if len(dropped) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create bind stand-ins: %w", err)
	}
	rr, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	defer rr.Close()
	var out []Mount
	for i, dst := range dropped {
		src := filepath.Join(dir, fmt.Sprintf("%d", i))
		rel := strings.TrimPrefix(dst, "/")
		// Lstat through os.Root: the container's root is the archive's
		// content, its links must not lead the look outside.
		fi, err := rr.Lstat(rel)
		switch {
		case err == nil && fi.Mode().IsRegular():
			err = os.WriteFile(src, nil, 0o644)
		case err == nil || errors.Is(err, fs.ErrNotExist):
			err = os.Mkdir(src, 0o755)
		}
		if err != nil {
			return nil, fmt.Errorf("create stand-in for %s: %w", dst, err)
		}
		out = append(out, Mount{Type: "bind", Source: src, Destination: dst})
	}
	return out, nil
}
