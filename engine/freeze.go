package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/ckpt/ckpt/internal/fsutil"
)

// freezeTimeout bounds how long a freeze waits for a cgroup to freeze.
const freezeTimeout = 5 * time.Second

// cgroupFreezer is the cgroup freezer of a container: v1 (freezer.state)
// or v2 (cgroup.freeze), as runc pause uses it.
type cgroupFreezer struct {
	v1   bool
	file string // freezer.state, or cgroup.freeze
	// events is v2's cgroup.events, where "frozen 1" says it is frozen.
	events string
}

// freezerOf returns the freezer of the cgroup of process pid (the
// container's init).
func freezerOf(pid int) (*cgroupFreezer, error) {
	cg, err := procCgroups(pid)
	if err != nil {
		return nil, err
	}
	switch v1, v2 := cg.v1("freezer"), cg.v2; {
	case v1 != "":
		// The v1 freezer, as runc and CRIU use it on a hybrid host.
		return &cgroupFreezer{v1: true, file: filepath.Join(v1, "freezer.state")}, nil
	case v2 != "" && v2 != "/sys/fs/cgroup":
		return &cgroupFreezer{file: filepath.Join(v2, "cgroup.freeze"), events: filepath.Join(v2, "cgroup.events")}, nil
	}
	return nil, errors.New("no freezer cgroup for the container")
}

func (f *cgroupFreezer) set(freeze bool) error {
	v := map[bool]string{true: "1", false: "0"}[freeze]
	if f.v1 {
		v = map[bool]string{true: "FROZEN", false: "THAWED"}[freeze]
	}
	return os.WriteFile(f.file, []byte(v), 0)
}

func (f *cgroupFreezer) frozen() (bool, error) {
	if f.v1 {
		b, err := os.ReadFile(f.file)
		return strings.TrimSpace(string(b)) == "FROZEN", err
	}
	b, err := os.ReadFile(f.events)
	return slices.Contains(strings.Split(string(b), "\n"), "frozen 1"), err
}

// thaw thaws the cgroup; it is harmless on one that is not frozen.
func (f *cgroupFreezer) thaw() error { return f.set(false) }

// freeze freezes the cgroup. It polls every millisecond, because CRIU,
// when it freezes a container itself, polls every 100 ms and begins its
// dump that much later (docs/MIGRATION.md, Measured). On any error the
// cgroup is thawed again and the error returned; the caller can let CRIU
// freeze instead.
func (f *cgroupFreezer) freeze() error {
	if err := f.set(true); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		ok, err := f.frozen()
		if err == nil && ok {
			return nil
		}
		if err == nil && time.Now().After(deadline) {
			err = fmt.Errorf("the container did not freeze within %s", freezeTimeout)
		}
		if err != nil {
			_ = f.thaw()
			return err
		}
		// A v1 cgroup can stay FREEZING when a task was forking: ask
		// again (runc does the same).
		if f.v1 {
			_ = f.set(true)
		}
		time.Sleep(time.Millisecond)
	}
}

// preDumpScript is the CRIU action script that freezes the container the
// way freeze does, at CRIU's pre-dump action: after runc and CRIU have
// started, right before CRIU seizes the container's processes. The
// container thus keeps running during their start, and CRIU still finds
// it frozen. Once frozen, the script creates marker, whose mtime is when. It
// always exits 0: a container it could not freeze after tries polls a
// millisecond apart (it then thaws it) is frozen by CRIU as usual. sleep
// is coreutils', which takes fractions.
func (f *cgroupFreezer) preDumpScript(marker string, tries int) string {
	on, off, check := "1", "0", `frozen=
	while read -r l; do [ "$l" = "frozen 1" ] && frozen=1; done < `+shQuote(f.events)+`
	[ -n "$frozen" ]`
	if f.v1 {
		on, off, check = "FROZEN", "THAWED", `read -r s < "$f" && [ "$s" = FROZEN ]`
	}
	return fmt.Sprintf(`#!/bin/sh
# ckpt: freeze the container's cgroup at CRIU's pre-dump action.
[ "$CRTOOLS_SCRIPT_ACTION" = pre-dump ] || exit 0
f=%s
i=0
while [ $i -lt %d ]; do
	echo %s > "$f" 2>/dev/null || exit 0
	if %s; then
		: > %s
		exit 0
	fi
	i=$((i+1))
	sleep 0.001
done
echo %s > "$f" 2>/dev/null
exit 0
`, shQuote(f.file), tries, on, check, shQuote(marker), off)
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// criuConfigPath is the CRIU configuration file runc passes to CRIU for
// container id: the bundles ckpt writes name it in runc's org.criu.config
// annotation. It exists only while ckpt runs runc checkpoint or restore
// (setCRIUConfig).
func (e *Engine) criuConfigPath(id string) string {
	return filepath.Join(e.containerDir(id), "criu.conf")
}

// hostRuncCRIUConfig is the file runc passes to CRIU for a container that
// names none: its options come first in the ones ckpt writes.
var hostRuncCRIUConfig = "/etc/criu/runc.conf"

// setCRIUConfig writes container c's CRIU configuration file with the
// host's runc.conf, if there is one, and then conf; the function returned
// removes it. runc passes the file to CRIU only if c's bundle names it
// (namesCRIUConfig).
func (e *Engine) setCRIUConfig(c *Container, conf string) (remove func(), err error) {
	path := e.criuConfigPath(c.ID)
	host, err := os.ReadFile(hostRuncCRIUConfig)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", hostRuncCRIUConfig, err)
	}
	if len(host) > 0 && host[len(host)-1] != '\n' {
		host = append(host, '\n')
	}
	if err := fsutil.WriteFileAtomic(path, append(host, conf...), 0o600); err != nil {
		return nil, fmt.Errorf("write CRIU configuration: %w", err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// dumpFreeze is how a dump that stops the container freezes it: by the
// pre-dump action script (preDumpScript) where runc passes CRIU ckpt's
// configuration; else, for a container created by an older ckpt or where
// the script could not run, by ckpt before runc starts. Without a freezer
// cgroup, CRIU freezes it.
type dumpFreeze struct {
	f      *cgroupFreezer
	marker string    // the script's marker, if it is installed
	at     time.Time // when ckpt froze it before runc, if it did
}

// prepareDump writes container c's CRIU configuration for a dump, with
// the pre-dump script in work if stop, and returns the function that
// removes it. If stop and the script cannot be installed, it freezes the
// container now.
func (e *Engine) prepareDump(c *Container, work string, stop bool) (df *dumpFreeze, remove func(), err error) {
	df = &dumpFreeze{}
	if stop {
		df.f, _ = freezerOf(c.PID)
	}
	// A bundle of an older ckpt does not name the configuration: runc
	// would not pass it to CRIU.
	named := e.namesCRIUConfig(c)
	conf := ""
	if df.f != nil && named && scriptable(work) {
		script := filepath.Join(work, "ckpt-pre-dump.sh")
		df.marker = filepath.Join(work, "ckpt-frozen")
		if err := os.WriteFile(script, []byte(df.f.preDumpScript(df.marker, int(freezeTimeout/time.Millisecond))), 0o700); err != nil {
			return nil, nil, fmt.Errorf("write CRIU action script: %w", err)
		}
		conf = "action-script " + script + "\n"
	}
	remove = func() {}
	if named {
		if remove, err = e.setCRIUConfig(c, conf); err != nil {
			return nil, nil, err
		}
	}
	if df.f != nil && df.marker == "" {
		df.at = time.Now()
		if df.f.freeze() != nil {
			df.f, df.at = nil, time.Time{}
		}
	}
	return df, remove, nil
}

// thawFunc returns the function that thaws the container if the dump
// fails, or nil if ckpt does not freeze it.
func (df *dumpFreeze) thawFunc() func() error {
	if df.f == nil {
		return nil
	}
	return df.f.thaw
}

// frozenSince returns when the container was frozen; false if CRIU froze
// it (the script did not run, or could not freeze it).
func (df *dumpFreeze) frozenSince() (time.Time, bool) {
	if df.marker != "" {
		fi, err := os.Stat(df.marker)
		if err != nil {
			return time.Time{}, false
		}
		return fi.ModTime(), true
	}
	return df.at, !df.at.IsZero()
}

// frozen returns how long a dump that stopped the container kept it from
// running: from the freeze until CRIU wrote its statistics into work, its
// last act after the kill (the file's mtime), or until now if that is not
// there; with CRIU's start (and runc's, if ckpt froze it before runc),
// during which it was frozen too. If CRIU froze it, that is CRIU's frozen
// time, from st (0 if nil). hooked is whether the pre-dump script froze it.
func (df *dumpFreeze) frozen(work string, st *CRIUStatistics) (d time.Duration, hooked bool) {
	since, ok := df.frozenSince()
	if !ok {
		if st != nil {
			d = time.Duration(st.FrozenTime) * time.Microsecond
		}
		return d, false
	}
	now := time.Now()
	d = now.Sub(since)
	if fi, err := os.Stat(filepath.Join(work, crit.StatsDump)); err == nil && fi.ModTime().After(since) && fi.ModTime().Before(now) {
		d = fi.ModTime().Sub(since)
	}
	return d, df.marker != ""
}
