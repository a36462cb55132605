package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostFactsCache: the host's facts are probed once per boot and
// binaries; after that an export takes them from the run root's cache
// without running CRIU or the runtime, and a changed CRIU binary probes
// again.
func TestHostFactsCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	criu := fakeBin(t, dir, "criu", `echo "$@" >> `+calls+`
case "$1" in
--version) echo "Version: 4.2.1" ;;
cpuinfo) printf 'cpu' > "$4/cpuinfo.img" ;;
esac`)
	e := &Engine{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"),
		CRIUPath: criu, RuntimePath: fakeBin(t, dir, "runc", `echo "runc version 1.1.15"`)}
	probe := func() (string, string) {
		t.Helper()
		hf := e.probeHost(context.Background(), filepath.Join(dir, "ctr"))
		host, img, err := hf.wait()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(img)
		hf.close()
		return host.CRIUVersion, string(b)
	}
	count := func() int { b, _ := os.ReadFile(calls); return strings.Count(string(b), "cpuinfo dump") }
	for i := range 3 {
		if v, img := probe(); v != "4.2.1" || img != "cpu" {
			t.Fatalf("probe %d: CRIU %q, cpuinfo.img %q", i, v, img)
		}
	}
	if n := count(); n != 1 {
		t.Errorf("criu cpuinfo dump ran %d times for 3 exports, want 1", n)
	}
	// Another CRIU binary: probed again.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(criu, later, later); err != nil {
		t.Fatal(err)
	}
	probe()
	if n := count(); n != 2 {
		t.Errorf("criu cpuinfo dump ran %d times after CRIU changed, want 2", n)
	}
}
