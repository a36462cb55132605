package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/format"
	"golang.org/x/sys/unix"
)

// ErrNoRoom reports an archive that unpacks to more than this host can
// hold: its staging file system's free space, or for its memory pages the
// host's memory and swap.
var ErrNoRoom = errors.New("engine: not enough room for the checkpoint")

// stagingReserve is the free space an import leaves on the staging file
// system beyond what the archive declares.
const stagingReserve = 64 << 20

// declared sums what a manifest says its members unpack to: all members,
// and the pages images alone.
func declared(m *format.Manifest) (total, pages int64) {
	for _, mb := range m.Members {
		total += mb.Size
		if mb.Kind == format.KindImage || mb.Kind == format.KindPreImage {
			base := mb.Name[strings.LastIndexByte(mb.Name, '/')+1:]
			if strings.HasPrefix(base, "pages-") {
				pages += mb.Size
			}
		}
	}
	return total, pages
}

// checkRoom refuses, before anything is written, an archive whose
// manifest declares more than the staging directory's file system has
// free (with stagingReserve), or more memory pages than this host has
// memory and swap (a restore could never map them). The declared sizes
// are the archive's word, held to by Extract, which refuses a member
// larger than its manifest says.
func checkRoom(staging string, m *format.Manifest) error {
	var st unix.Statfs_t
	if err := unix.Statfs(staging, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", staging, err)
	}
	mem, err := memAndSwap()
	if err != nil {
		return err
	}
	total, pages := declared(m)
	return roomProblem(staging, total, pages, int64(st.Bavail)*st.Bsize, mem)
}

// roomProblem is checkRoom's rule for an archive of total bytes, pages of
// them memory pages, staged in staging with free bytes on a host with mem
// bytes of memory and swap.
func roomProblem(staging string, total, pages, free, mem int64) error {
	if total > free-stagingReserve {
		return fmt.Errorf("%w: the archive unpacks to %s and %s has %s free: make room there (or stage on a tmpfs with --tmpdir)",
			ErrNoRoom, sizeString(total), staging, sizeString(free))
	}
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
