package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ckpt/ckpt/engine"
	"github.com/spf13/pflag"
)

// memoryRE is podman's memory size (go-units' RAMInBytes): a number, an
// optional unit b, k, m, g, t or p (powers of 1024), optionally followed
// by "ib" or "b".
var memoryRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// parseMemory parses --memory: "512m", "1g", "1.5G", "100000" (bytes).
func parseMemory(s string) (int64, error) {
	m := memoryRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want a number and an optional unit b, k, m or g, e.g. 512m)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	if m[2] != "" {
		n *= math.Pow(1024, float64(strings.IndexByte("kmgtp", strings.ToLower(m[2])[0])+1))
	}
	if n >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(n), nil
}

// maxEnvFile bounds an --env-file.
const maxEnvFile = 16 << 20

// parseEnvFile reads podman's --env-file format: one KEY=VALUE a line
// (the value taken literally, quotes and all), leading blanks ignored,
// lines starting with # and empty lines skipped; a KEY alone takes the
// value of the variable in lookup (this process' environment), or is
// left out if it has none; KEY* alone takes every variable whose name
// begins with KEY.
func parseEnvFile(r io.Reader, environ []string) ([]string, error) {
	var env []string
	sc := bufio.NewScanner(io.LimitReader(r, maxEnvFile))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, hasVal := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("line %d: invalid variable %q (want KEY=VALUE or KEY)", n, line)
		}
		if hasVal {
			env = append(env, line)
			continue
		}
		env = append(env, fromEnviron(key, environ)...)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return env, nil
}

// fromEnviron returns the variables of environ that KEY names (or, for
// KEY*, those whose names begin with KEY), as podman takes a KEY given
// without a value.
func fromEnviron(key string, environ []string) []string {
	var env []string
	prefix, glob := strings.CutSuffix(key, "*")
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k == key || (glob && strings.HasPrefix(k, prefix)) {
			env = append(env, kv)
		}
	}
	return env
}

// envFlags resolves --env values: K=V as given, K (or K*) from environ;
// an empty name is an error naming the value.
func envFlags(values, environ []string) ([]string, error) {
	var env []string
	for _, v := range values {
		key, _, hasVal := strings.Cut(v, "=")
		switch {
		case key == "" || key == "*":
			return nil, fmt.Errorf("invalid --env %q (want K=V, or K to take this shell's value)", v)
		case hasVal:
			env = append(env, v)
		default:
			env = append(env, fromEnviron(key, environ)...)
		}
	}
	return env, nil
}

// readEnvFiles reads the --env-file files in order.
func readEnvFiles(paths []string) ([]string, error) {
	var env []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		e, err := parseEnvFile(f, os.Environ())
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		env = append(env, e...)
	}
	return env, nil
}

// mergeEnv returns the variables of the lists in order, a later value of
// a name replacing the earlier in its place (podman: --env wins over
// --env-file).
func mergeEnv(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// parseEntrypoint parses --entrypoint as podman does: a JSON array of
// strings, or else one program.
func parseEntrypoint(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var a []string
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			return nil, fmt.Errorf("invalid JSON array %q: %w", s, err)
		}
		if len(a) == 0 || a[0] == "" {
			return nil, errors.New("the JSON array has no program")
		}
		return a, nil
	}
	return []string{s}, nil
}

// processFlags are run's and create's flags that shape the container's
// process and limits.
type processFlags struct {
	user, workdir, hostname, entrypoint, memory *string
	envFiles                                    *[]string
}

func addProcessFlags(fs *pflag.FlagSet) *processFlags {
	return &processFlags{
		user:       fs.StringP("user", "u", "", "run as USER[:GROUP] (names from the image's /etc/passwd and /etc/group, or numbers)"),
		workdir:    fs.StringP("workdir", "w", "", "working directory inside the container (default /)"),
		hostname:   fs.String("hostname", "", "the container's host name (default the first 12 digits of its ID)"),
		entrypoint: fs.String("entrypoint", "", `program to run before CMD: a path, or a JSON array such as '["/bin/sh","-c"]' (images record none)`),
		memory:     fs.StringP("memory", "m", "", "memory limit: a number with a unit b, k, m or g (e.g. 512m)"),
		envFiles:   fs.StringArray("env-file", nil, "read KEY=VALUE lines from FILE (repeatable; --env wins)"),
	}
}

// apply checks the flags and puts them into o (after o.Env is set from
// --env); it returns -1 to go on, or the exit code of a usage error.
func (p *processFlags) apply(env *cmdEnv, c *command, o *engine.RunOptions) int {
	var err error
	if o.Entrypoint, err = parseEntrypoint(*p.entrypoint); err != nil {
		return usageError(env, c, "--entrypoint: %v", err)
	}
	if *p.memory != "" {
		if o.MemoryLimit, err = parseMemory(*p.memory); err != nil {
			return usageError(env, c, "--memory: %v", err)
		}
	}
	if *p.workdir != "" && !filepath.IsAbs(*p.workdir) {
		return usageError(env, c, "--workdir %q must be an absolute path", *p.workdir)
	}
	fileEnv, err := readEnvFiles(*p.envFiles)
	if err != nil {
		env.errorf("%s: --env-file: %v", c.name, err)
		return exitUsage
	}
	o.Env = mergeEnv(fileEnv, o.Env)
	o.User, o.WorkDir, o.Hostname = *p.user, *p.workdir, *p.hostname
	return -1
}
