package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/format"
	"golang.org/x/sys/unix"
)

// ErrNoRoom reports an archive that unpacks to more than this host can
// hold: its staging file system's free space (format.ErrNoSpace; an
// oci-archive's size), or for its memory pages the host's memory and swap.
var ErrNoRoom = errors.New("engine: not enough room for the checkpoint")

// stagingReserve is the free space an import leaves on the staging file
// system beyond what the archive declares.
const stagingReserve = 64 << 20

// stagingSpace returns format.ExtractOptions.FreeSpace for a staging
// directory: its file system's free space less stagingReserve.
func stagingSpace(dir string) func() (int64, error) {
	return func() (int64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		return int64(st.Bavail)*st.Bsize - stagingReserve, nil
	}
}

// extractError words an Extract failure of an import staged in staging.
func extractError(err error, staging string) error {
	if errors.Is(err, format.ErrNoSpace) {
		return remedy(fmt.Errorf("%w: %w", ErrNoRoom, err), RemedyRoom, filepath.Dir(staging))
	}
	return fmt.Errorf("verify and extract archive: %w", err)
}

// pagesOf sums the sizes of the memory pages images a manifest declares.
func pagesOf(m *format.Manifest) int64 {
	var pages int64
	for _, mb := range m.Members {
		if mb.Kind == format.KindImage || mb.Kind == format.KindPreImage {
			if strings.HasPrefix(path.Base(mb.Name), "pages-") {
				pages += mb.Size
			}
		}
	}
	return pages
}

// checkMemory refuses, before anything is written, an archive whose
// manifest declares more memory pages than this host has memory and swap:
// a restore could never map them. (Extract holds the archive to the sizes
// it declares.)
func checkMemory(m *format.Manifest) error {
	mem, err := memAndSwap()
	if err != nil {
		return err
	}
	return memoryProblem(pagesOf(m), mem)
}

// memoryProblem is checkMemory's rule for pages bytes of pages on a host
// with mem bytes of memory and swap.
func memoryProblem(pages, mem int64) error {
	if pages > mem {
		return fmt.Errorf("%w: the checkpoint holds %s of memory pages and this host has %s of memory and swap: restore it on a larger host",
			ErrNoRoom, sizeString(pages), sizeString(mem))
	}
	return nil
}

// memAndSwap returns MemTotal + SwapTotal of /proc/meminfo in bytes.
func memAndSwap() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var sum int64
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, k := range []string{"MemTotal:", "SwapTotal:"} {
			if rest, ok := strings.CutPrefix(sc.Text(), k); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("/proc/meminfo: %w", err)
				}
				sum += kb << 10
				seen++
			}
		}
	}
	if seen != 2 {
		return 0, errors.New("/proc/meminfo has no MemTotal or SwapTotal")
	}
	return sum, nil
}

// sizeString formats n bytes for a message: "1.5 GiB", "12.0 MiB", "4 KiB".
func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", (n+1023)>>10)
	}
}
