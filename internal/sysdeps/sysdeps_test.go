package sysdeps

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ckpt/ckpt/internal/testutil"
)

const (
	readme = "../../README.md"
	deps   = "../../scripts/deps.sh"
	// tableHeading starts the README section whose table lists the
	// system packages.
	tableHeading = "## System packages"
)

// readmeTable returns the package names of the README's system-package
// table: every `name` in the first column.
func readmeTable(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	tick := regexp.MustCompile("`([a-z0-9][a-z0-9.+-]*)`")
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, tableHeading):
			in = true
		case in && strings.HasPrefix(l, "## "):
			in = false
		case in && strings.HasPrefix(l, "| "):
			first := strings.Split(l, "|")[1]
			for _, m := range tick.FindAllStringSubmatch(first, -1) {
				names[m[1]] = true
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s has no table under %q", readme, tableHeading)
	}
	return names
}

// planNames returns the package names of a deps.sh plan: the second word
// of its "install", "upgrade", "build" and "build-only" lines.
func planNames(plan string) (names []string, ok bool) {
	line := regexp.MustCompile(`^\s+(install|upgrade|build|build-only)\s+(\S+)`)
	for _, l := range strings.Split(plan, "\n") {
		if strings.HasPrefix(l, "deps: plan") {
			ok = true
		}
		if m := line.FindStringSubmatch(l); m != nil {
			names = append(names, m[2])
		}
	}
	return names, ok
}

// TestDepsNamesInTable checks that the packages scripts/deps.sh names
// itself (what it installs, the libraries of the CRIU it builds and what
// it needs to build it) are in the README's table.
func TestDepsNamesInTable(t *testing.T) {
	table := readmeTable(t)
	b, err := os.ReadFile(deps)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	var named []string
	for _, arr := range []string{"criu_runtime", "criu_build"} {
		m := regexp.MustCompile(`(?s)\n` + arr + `=\(([^)]*)\)`).FindStringSubmatch(src)
		if m == nil {
			t.Fatalf("%s has no %s=(...) list", deps, arr)
		}
		named = append(named, strings.Fields(m[1])...)
	}
	for _, m := range regexp.MustCompile(`want\+=\(([a-z0-9-]+)\)`).FindAllStringSubmatch(src, -1) {
		named = append(named, m[1])
	}
	if len(named) < 10 {
		t.Fatalf("found only %v in %s", named, deps)
	}
	for _, n := range named {
		if !table[n] {
			t.Errorf("%s names package %s, which %s's system-package table does not list", deps, n, readme)
		}
	}
}

// TestDepsPlan checks the names of a real plan against the README's
// table: the plan in the file $CKPT_DEPS_PLAN (scripts/pristine-check.sh
// passes the one of a pristine Debian 12), or else that of this machine
// (`deps.sh --plan`, which needs root and Debian; on a machine where
// everything is installed it names nothing).
func TestDepsPlan(t *testing.T) {
	table := readmeTable(t)
	var plan string
	if f := os.Getenv("CKPT_DEPS_PLAN"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		plan = string(b)
	} else {
		testutil.RequireRoot(t)
		if _, err := os.Stat("/etc/debian_version"); err != nil {
			t.Skip("not Debian: deps.sh only prints what to install")
		}
		out, err := exec.Command("bash", deps, "--plan").Output()
		if err != nil {
			t.Fatalf("deps.sh --plan: %v\n%s", err, out)
		}
		plan = string(out)
	}
	names, ok := planNames(plan)
	if !ok {
		t.Fatalf("no plan in deps.sh's output:\n%s", plan)
	}
	for _, n := range names {
		if !table[n] {
			t.Errorf("deps.sh's plan installs %s, which %s's system-package table does not list", n, readme)
		}
	}
	t.Logf("%d packages in the plan, all in the README's table", len(names))
}

func TestPlanNames(t *testing.T) {
	plan := "deps: plan (packages from bookworm):\n" +
		"  install    runc 1.1.5+ds1-1+deb12u1\n" +
		"  build      criu 4.2.1-1+ckpt1 from forky's source criu 4.2.1-1\n" +
		"  build-only protobuf-compiler 3.21.12-3+deb12u1 (removed after the build)\n" +
		"deps: ok\n"
	names, ok := planNames(plan)
	if !ok || strings.Join(names, " ") != "runc criu protobuf-compiler" {
		t.Errorf("planNames = %v, %v", names, ok)
	}
}
