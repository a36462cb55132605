// Package critoracle decodes CRIU images with go-criu's crit, the
// independent decoder that ckpt's tests compare their own readers against
// (format/criuimg's hand-written decoders, inspect's views of an archive).
//
// It replaces CRIU's Python crit as the tests' oracle, so they need no
// Python: go-criu v8's image protos are CRIU 4.x's, and its decoding and
// "explore" code share nothing with ckpt's. Decode gives the JSON that
// `crit decode` gives (proto field names, enums by name; 64-bit integers
// are JSON strings there, numbers in Python's crit), Ps and Fds the rows of
// `crit x DIR ps` and `crit x DIR fds`.
//
// Only tests use it: it runs go-criu's decoders, which allocate from sizes
// in the file, on images the tests made or committed.
package critoracle

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/proto"
)

// entryTypes maps the magics the tests compare to their entry messages;
// PAGEMAP needs none (crit decodes its head and entries itself).
var entryTypes = map[string]func() proto.Message{
	"INVENTORY": func() proto.Message { return &inventory.InventoryEntry{} },
	"PSTREE":    func() proto.Message { return &pstree.PstreeEntry{} },
	"CORE":      func() proto.Message { return &criucore.CoreEntry{} },
	"PAGEMAP":   func() proto.Message { return nil },
	"MM":        func() proto.Message { return &mm.MmEntry{} },
	"IDS":       func() proto.Message { return &criucore.TaskKobjIdsEntry{} },
	"FILES":     func() proto.Message { return &fdinfo.FileEntry{} },
	"FDINFO":    func() proto.Message { return &fdinfo.FdinfoEntry{} },
}

// critMu serializes the calls into crit, whose package-level cache is not
// safe for concurrent use (the race detector catches parallel tests).
var critMu sync.Mutex

// Decode returns the image file at path as crit's JSON.
func Decode(path string) ([]byte, error) {
	critMu.Lock()
	defer critMu.Unlock()
	magic, err := readMagic(path)
	if err != nil {
		return nil, err
	}
	newEntry, ok := entryTypes[magic]
	if !ok {
		return nil, fmt.Errorf("%s: magic %s is not one critoracle decodes", path, magic)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, false).Decode(newEntry())
	if err != nil {
		return nil, fmt.Errorf("crit decode %s: %w", path, err)
	}
	return json.Marshal(img)
}

func readMagic(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, err := crit.ReadMagic(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Ps returns the process tree of the image directory dir as
// "PID PGID SID COMM" rows, parents before children.
func Ps(dir string) ([]string, error) {
	critMu.Lock()
	defer critMu.Unlock()
	tree, err := crit.New(nil, nil, dir, false, false).ExplorePs()
	if err != nil {
		return nil, fmt.Errorf("crit x %s ps: %w", dir, err)
	}
	var rows []string
	var walk func(p *crit.PsTree)
	walk = func(p *crit.PsTree) {
		rows = append(rows, fmt.Sprintf("%d %d %d %s", p.PID, p.PgID, p.SID, p.Comm))
		for _, c := range p.Children {
			walk(c)
		}
	}
	walk(tree)
	return rows, nil
}

// Fds returns, per PID, the "FD PATH" rows of the open files of the
// image directory dir, as `crit x DIR fds` lists them.
func Fds(dir string) (map[string][]string, error) {
	critMu.Lock()
	defer critMu.Unlock()
	fds, err := crit.New(nil, nil, dir, false, false).ExploreFds()
	if err != nil {
		return nil, fmt.Errorf("crit x %s fds: %w", dir, err)
	}
	out := map[string][]string{}
	for _, p := range fds {
		pid := strconv.Itoa(int(p.PId))
		for _, f := range p.Files {
			out[pid] = append(out[pid], f.Fd+" "+f.Path)
		}
	}
	return out, nil
}
