package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// User is a container process' identity: podman's --user resolved to
// numbers in the image's /etc/passwd and /etc/group.
type User struct {
	// Spec is what was given: USER[:GROUP], each a name or a number.
	Spec string `json:"spec,omitempty"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	// AdditionalGids are the groups /etc/group lists the user in.
	AdditionalGids []uint32 `json:"additional_gids,omitempty"`
}

// ErrUnknownUser is returned when a user or group name is not in the
// container's /etc/passwd or /etc/group.
var ErrUnknownUser = errors.New("unknown user")

// maxIDFile bounds what is read of a container's /etc/passwd or /etc/group.
const maxIDFile = 4 << 20

// resolveUser resolves spec (USER[:GROUP], names or numbers) in the
// container's root filesystem as podman does: a numeric user not in
// /etc/passwd gets group 0; a user's own group is its passwd group unless
// GROUP is given; the groups /etc/group lists the user's name in are
// added. The files are read confined to rootfs (symbolic links resolve
// inside it, as in the container).
func resolveUser(rootfs, spec string) (*User, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" || (hasGroup && group == "") {
		return nil, fmt.Errorf("invalid user %q (want USER[:GROUP], names or numbers)", spec)
	}
	u := &User{Spec: spec}
	passwd, err := readIDFile(rootfs, "etc/passwd")
	if err != nil {
		return nil, err
	}
	userName := ""
	if n, ok := parseID(name); ok {
		u.UID = n
		if e := findEntry(passwd, 2, name); e != nil {
			userName = e[0]
			u.GID, _ = parseID(e[3])
		}
	} else {
		e := findEntry(passwd, 0, name)
		if e == nil {
			return nil, fmt.Errorf("%w: no user %q in the image's /etc/passwd (give a number, or a user the image has)", ErrUnknownUser, name)
		}
		userName = e[0]
		uid, ok1 := parseID(e[2])
		gid, ok2 := parseID(e[3])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: the image's /etc/passwd entry of %q has no numeric uid and gid", ErrUnknownUser, name)
		}
		u.UID, u.GID = uid, gid
	}
	groups, err := readIDFile(rootfs, "etc/group")
	if err != nil {
		return nil, err
	}
	if hasGroup {
		if n, ok := parseID(group); ok {
			u.GID = n
		} else if e := findEntry(groups, 0, group); e != nil {
			if u.GID, ok = parseID(e[2]); !ok {
				return nil, fmt.Errorf("%w: the image's /etc/group entry of %q has no numeric gid", ErrUnknownUser, group)
			}
		} else {
			return nil, fmt.Errorf("%w: no group %q in the image's /etc/group (give a number, or a group the image has)", ErrUnknownUser, group)
		}
	}
	if userName != "" {
		for _, e := range groups {
			if len(e) < 4 {
				continue
			}
			gid, ok := parseID(e[2])
			if !ok || gid == u.GID {
				continue
			}
			for _, m := range strings.Split(e[3], ",") {
				if m == userName {
					u.AdditionalGids = append(u.AdditionalGids, gid)
					break
				}
			}
		}
	}
	return u, nil
}

// parseID parses a uid or gid.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// findEntry returns the first record whose field i is v.
func findEntry(recs [][]string, i int, v string) []string {
	for _, e := range recs {
		if len(e) > 3 && e[i] == v {
			return e
		}
	}
	return nil
}

// readIDFile reads the colon-separated records of the container's
// /etc/passwd or /etc/group, confined to rootfs; a missing file has none.
func readIDFile(rootfs, rel string) ([][]string, error) {
	dir, err := os.Open(rootfs)
	if err != nil {
		return nil, fmt.Errorf("open the container's root: %w", err)
	}
	defer dir.Close()
	// RESOLVE_IN_ROOT: an absolute link resolves in the image, as the
	// container's own lookup would.
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the image's /%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read the image's /%s: not a regular file", rel)
	}
	var recs [][]string
	sc := bufio.NewScanner(io.LimitReader(f, maxIDFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		recs = append(recs, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the image's %s: %w", filepath.Join("/", rel), err)
	}
	return recs, nil
}
