package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// DefaultConfigFile is the configuration file read when neither --config
// nor CKPT_CONFIG names one; it may be missing.
const DefaultConfigFile = "/etc/ckpt/ckpt.conf"

// maxConfigSize bounds the configuration file read.
const maxConfigSize = 64 << 10

// settingsHelp documents where global settings come from, for ckpt --help.
const settingsHelp = `Settings: each global flag may also be set by an environment variable,
CKPT_ and its name in capitals with _ for - (CKPT_ROOT, CKPT_STORAGE_ROOT,
CKPT_RUNROOT, CKPT_TMPDIR, CKPT_RUNTIME, CKPT_CRIU, CKPT_CRIU_TIMEOUT, ...),
or by a line "name = value" in the configuration file (--config, else
$CKPT_CONFIG, else ` + DefaultConfigFile + ` if it exists; # starts a comment,
values may be quoted). A flag wins over the environment, the environment
over the file, the file over the default.`

// envName is the environment variable of global flag name.
func envName(name string) string {
	return "CKPT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applySettings sets each global flag of fs the command line did not set
// from its environment variable (getenv), else from the configuration
// file; it returns the file read ("" if none). The file is the --config
// flag's, else $CKPT_CONFIG, else DefaultConfigFile if it exists.
func applySettings(fs *pflag.FlagSet, getenv func(string) string) (string, error) {
	path, explicit := DefaultConfigFile, false
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path, explicit = f.Value.String(), true
	} else if p := getenv("CKPT_CONFIG"); p != "" {
		path, explicit = p, true
	}
	file, err := readConfig(path, fs)
	switch {
	case errors.Is(err, os.ErrNotExist) && !explicit:
		path = ""
	case err != nil:
		return "", err
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" || f.Name == "version" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, v.value); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %s = %q: %w", path, v.line, f.Name, v.value, err))
			}
		}
	})
	return path, errors.Join(errs...)
}

// configValue is one setting of the configuration file.
type configValue struct {
	value string
	line  int
}

// readConfig reads the "name = value" lines of the configuration file at
// path; names are fs's flags (with - or _).
func readConfig(path string, fs *pflag.FlagSet) (map[string]configValue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("configuration file %s is larger than %d KiB", path, maxConfigSize>>10)
	}
	out := map[string]configValue{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line == "[ckpt]" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want name = value, not %q", path, n, line)
		}
		k = strings.ReplaceAll(strings.TrimSpace(k), "_", "-")
		if fs.Lookup(k) == nil || k == "config" || k == "help" || k == "version" {
			return nil, fmt.Errorf("%s:%d: unknown setting %q (the settings are the global flags: see ckpt --help)", path, n, k)
		}
		if v, err = configString(strings.TrimSpace(v)); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", path, n, k, err)
		}
		out[k] = configValue{value: v, line: n}
	}
	return out, nil
}

// configString returns a value without its quotes ("..." as Go quotes
// it, '...' verbatim) or, unquoted, up to a # comment.
func configString(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, `"`):
		q, err := strconv.QuotedPrefix(v)
		if err != nil {
			return "", fmt.Errorf("bad quoted value %s", v)
		}
		if rest := strings.TrimSpace(v[len(q):]); rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("text after the quoted value: %s", rest)
		}
		return strconv.Unquote(q)
	case strings.HasPrefix(v, "'"):
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", fmt.Errorf("unterminated quoted value %s", v)
		}
		return v[1 : end+1], nil
	}
	v, _, _ = strings.Cut(v, "#")
	return strings.TrimSpace(v), nil
}
