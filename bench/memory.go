package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A virtio balloon with free page reporting (VIRTIO_BALLOON_F_REPORTING,
// feature bit 5) hands the guest's free memory back to the host about
// 2 s after it is freed; the host then backs it anew on the next touch,
// which makes new page cache cost several times as much at random (whether
// a dump finds warm memory depends on what ran just before it). The bench
// leaves it as it is, as every other system setting: it measures the
// machine as users have it, and says in the report whether reporting was
// on, so that figures from machines with and without it are not compared
// as equals. It touches the memory the runs will use once beforehand.
const balloonDriver = "/sys/bus/virtio/drivers/virtio_balloon"

// reportingBalloons returns the virtio devices bound to the balloon
// driver that offer free page reporting.
func reportingBalloons() []string {
	devs, _ := filepath.Glob(filepath.Join(balloonDriver, "virtio*"))
	var out []string
	for _, d := range devs {
		b, err := os.ReadFile(filepath.Join(d, "features"))
		if err == nil && len(b) > 5 && b[5] == '1' {
			out = append(out, filepath.Base(d))
		}
	}
	return out
}

// pageReportingNote says, for the report, whether free page reporting is
// on.
func pageReportingNote() string {
	devs := reportingBalloons()
	if len(devs) == 0 {
		return "no virtio balloon with free page reporting"
	}
	return fmt.Sprintf("free page reporting on (virtio balloon %s, left as it was: memory freed 2 s earlier costs more to touch again, at random)", strings.Join(devs, ", "))
}

// warmMemoryArg makes the bench a child that runs warmMemory: the
// engines' peak RSS is that of processes the bench starts, and a child
// exec'd by a process inherits its peak RSS as a floor.
const warmMemoryArg = "-warm-memory-child"

// warmMemory touches n bytes of anonymous memory at once and frees them,
// so that that much of the guest's free memory is backed by the host
// before the runs (freed pages are reused first).
func warmMemory(n int64) error {
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return err
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return syscall.Munmap(b)
}

// memAvailable returns /proc/meminfo's MemAvailable in bytes, 0 if unknown.
func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "MemAvailable: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}
