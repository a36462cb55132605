package rootfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
	"github.com/ckpt/ckpt/internal/testutil/tarbuild"
)

// FuzzApply feeds arbitrary bytes to Apply as a diff. Whatever the input,
// Apply must not panic and nothing beside the root may change. go test runs
// the seeds (every breakout case); to fuzz, run
//
//	go test -run='^$' -fuzz=FuzzApply -fuzzminimizetime=0 -fuzztime=1m ./rootfs
//
// (minimizing an input that makes temporary trees is slow enough to stall
// the fuzzer for a minute each time).
func FuzzApply(f *testing.F) {
	for _, tc := range breakoutCases() {
		if tc.entries != nil {
			f.Add(tarbuild.Build(f, tc.entries("/base")...))
		}
	}
	f.Add(tarbuild.Build(f, tarbuild.Dir("a/", 0o755), tarbuild.File("a/f", "data", 0o4755), tarbuild.Link("a/g", "a/f"), tarbuild.Symlink("a/s", "../..")))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		must(t, os.Mkdir(root, 0o755))
		writeFile(t, filepath.Join(base, "sentinel.txt"), "sentinel", 0o644)
		writeFile(t, filepath.Join(base, "outside/victim"), "victim", 0o644)
		setAllTimes(t, base, baseTime)
		before := outsideState(t, base)
		opts := &ApplyOptions{
			FIFOs:        true,
			NoChown:      os.Geteuid() != 0,
			MaxEntries:   256,
			MaxTotalSize: 1 << 20,
		}
		_ = Apply(context.Background(), root, bytes.NewReader(data), nil, opts)
		for _, d := range testutil.DiffSnapshots(outsideState(t, base), before) {
			t.Errorf("outside the root changed: %s", d)
		}
	})
}
