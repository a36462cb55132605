package format_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

// allowedDeps are the only packages outside the standard library that
// package format (and its non-test dependencies) may import, each prefix
// with its reason. go-containerregistry's depcheck_test.go is the model.
var allowedDeps = map[string]string{
	// The package itself and its CRIU image parser, which follows the same
	// rules (stdlib plus the go-criu magic table).
	"github.com/ckpt/ckpt/format":         "this package",
	"github.com/ckpt/ckpt/format/criuimg": "CRIU image checks for Verify; pure Go, no I/O of its own",
	// zstd is the default compression, and klauspost's gzip is faster than
	// compress/gzip; the zstd decoder takes memory and window limits. The
	// rest comes with them.
	"github.com/klauspost/compress":                   "the module's root package, imported by zstd",
	"github.com/klauspost/compress/zstd":              "zstd codec",
	"github.com/klauspost/compress/zstd/internal/...": "zstd internals (xxhash frame checksums)",
	"github.com/klauspost/compress/gzip":              "gzip codec",
	"github.com/klauspost/compress/flate":             "deflate, used by gzip",
	"github.com/klauspost/compress/huff0":             "entropy coder, used by zstd",
	"github.com/klauspost/compress/fse":               "entropy coder, used by zstd",
	"github.com/klauspost/compress/internal/...":      "klauspost/compress internals (cpuinfo, le, snapref)",
	// go-criu's table of image magics, a list of constants: no cgo, no
	// protobuf runtime, no exec of criu.
	"github.com/checkpoint-restore/go-criu/v8/magic": "CRIU image magics",
	// The one internal package format may use, an exception to the ban on
	// internal/ below: it imports only the standard library, so format
	// stays usable on its own, and it shares the huge-page frame buffers
	// and the context reader with the engine and inspect.
	"github.com/ckpt/ckpt/internal/fileio": "huge-page buffers, context reader; stdlib only",
}

// forbiddenDeps may never appear, even through the standard library,
// unless allowedDeps names the package itself: format reads hostile input
// and must not run programs, and it sits at the bottom of the import graph
// (cmd → engine → inspect, incremental, volumes, rootfs → format), so it
// imports nothing above it.
var forbiddenDeps = []string{
	"os/exec",
	"github.com/ckpt/ckpt/engine",
	"github.com/ckpt/ckpt/rootfs",
	"github.com/ckpt/ckpt/volumes",
	"github.com/ckpt/ckpt/cmd",
	"github.com/ckpt/ckpt/fuzz",
	"github.com/ckpt/ckpt/internal",
}

// allowed reports whether the non-standard package pkg is in allowedDeps:
// equal to an entry, or below an entry ending in "/...".
func allowed(pkg string) bool {
	for p := range allowedDeps {
		if prefix, ok := strings.CutSuffix(p, "/..."); ok && strings.HasPrefix(pkg, prefix+"/") || pkg == p {
			return true
		}
	}
	return false
}

// TestDeps lists format's dependencies with go list and checks each
// against the allow-list; a forbidden one fails unless the allow-list
// names it exactly.
func TestDeps(t *testing.T) {
	cmd := exec.Command(testutil.RequireTool(t, "go"), "list", "-deps", "-f", "{{if .Standard}}std {{end}}{{.ImportPath}}", ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderrOf(err))
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, std := strings.CutPrefix(line, "std ")
		for _, bad := range forbiddenDeps {
			if (pkg == bad || strings.HasPrefix(pkg, bad+"/")) && allowedDeps[pkg] == "" {
				t.Errorf("format depends on %s", pkg)
			}
		}
		if !std && !allowed(pkg) {
			t.Errorf("format depends on %s, which is not in the allow-list", pkg)
		}
		n++
	}
	if n < 10 {
		t.Errorf("go list -deps listed %d packages: %q", n, out)
	}
}

// TestBuildAnyGOOS builds format (and its test helpers) and ckptinspect
// for other operating systems: both must build anywhere.
func TestBuildAnyGOOS(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow the first time; skipped in -short mode")
	}
	gobin := testutil.RequireTool(t, "go")
	for _, goos := range []string{"darwin", "windows"} {
		t.Run(goos, func(t *testing.T) {
			t.Parallel()
			// -o /dev/null: build the command without writing it here.
			cmd := exec.Command(gobin, "build", "-o", os.DevNull, "./...", "github.com/ckpt/ckpt/cmd/ckptinspect")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("GOOS=%s go build ./format/... ./cmd/ckptinspect = %v\n%s", goos, err, out)
			}
		})
	}
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
