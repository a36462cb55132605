package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A virtio balloon with free page reporting (VIRTIO_BALLOON_F_REPORTING,
// feature bit 5) hands the guest's free memory back to the host about
// 2 s after it is freed; the host then backs it anew on the next touch,
// which made new page cache cost several times as much at random (whether
// a dump found warm memory depended on what ran just before it). Bare
// metal has no such thing. So, unless -page-reporting, the bench unbinds the
// balloon driver for its run (the host can reclaim nothing meanwhile),
// touches the memory the runs will use once, and binds the driver again
// at the end. Every engine and the floors run under the same conditions.
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

// stopPageReporting unbinds the reporting balloons and returns what it
// did (for the report) and the function that binds them again.
func stopPageReporting() (note string, restore func()) {
	devs := reportingBalloons()
	if len(devs) == 0 {
		return "no virtio balloon with free page reporting", func() {}
	}
	var unbound []string
	for _, d := range devs {
		if err := os.WriteFile(filepath.Join(balloonDriver, "unbind"), []byte(d), 0); err != nil {
			log.Printf("unbind balloon %s: %v (its free page reporting stays on)", d, err)
			continue
		}
		unbound = append(unbound, d)
	}
	restore = func() {
		for _, d := range unbound {
			if err := os.WriteFile(filepath.Join(balloonDriver, "bind"), []byte(d), 0); err != nil {
				log.Printf("bind balloon %s again: %v (echo %s > %s/bind)", d, err, d, balloonDriver)
			}
		}
	}
	if len(unbound) == 0 {
		return "free page reporting on (the balloon could not be unbound)", restore
	}
	return fmt.Sprintf("free page reporting off: virtio balloon %s unbound for the run", strings.Join(unbound, ", ")), restore
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
