package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ckpt/ckpt/volumes"
)

func volumeCmd() *command {
	c := &command{
		name:     "volume",
		synopsis: "create, list, inspect and remove named volumes",
		subs:     []string{"create", "ls", "inspect", "rm", "prune"},
		usage:    "ckpt volume (create [NAME] | ls | inspect NAME... | rm [-f] NAME... | prune [-f]) [flags]",
		desc: `Named volumes are what -v NAME:/path mounts (run makes a missing one) and
what checkpoint --export carries along. create makes an empty volume (a
random name if none is given); ls lists them; inspect prints them as JSON
(podman volume inspect's names); rm removes volumes no container mounts
(with --force, the containers mounting them are removed first); prune
removes every volume no container mounts. Run 'ckpt volume SUBCOMMAND
--help' for each one's flags.`,
	}
	subs := map[string]func(context.Context, *cmdEnv, *command, []string) int{
		"create": volumeCreate, "ls": volumeList, "list": volumeList, "inspect": volumeInspect,
		"rm": volumeRemove, "remove": volumeRemove, "prune": volumePrune,
	}
	c.run = func(ctx context.Context, env *cmdEnv, args []string) int {
		fs := newFlags(c)
		fs.SetInterspersed(false)
		rest, code := parse(c, env, fs, args, 1, -1)
		if code >= 0 {
			return code
		}
		sub, ok := subs[rest[0]]
		if !ok {
			return usageError(env, c, "unknown subcommand %q", rest[0])
		}
		return sub(ctx, env, c, rest[1:])
	}
	return c
}

func volumeCreate(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "volume create", synopsis: "create a named volume", usage: "ckpt volume create [-l K=V]... [--ignore] [NAME]",
		desc: "Creates an empty volume NAME (a random 64-hex-digit name if none) and prints its name."}
	fs := newFlags(sc)
	labels := fs.StringArrayP("label", "l", nil, "set a label K=V (repeatable)")
	ignore := fs.Bool("ignore", false, "do nothing (and succeed) if the volume exists")
	rest, code := parse(sc, env, fs, args, 0, 1)
	if code >= 0 {
		return code
	}
	o := &volumes.CreateOptions{Labels: map[string]string{}, IgnoreExisting: *ignore}
	for _, kv := range *labels {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return usageError(env, sc, "invalid --label %q (want K=V)", kv)
		}
		o.Labels[k] = v
	}
	name := ""
	if len(rest) == 1 {
		name = rest[0]
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		name = hex.EncodeToString(b)
	}
	v, err := env.eng.VolumeCreate(ctx, name, o)
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintln(env.stdout, v.Name)
	return exitOK
}

// volumeJSON is the --json schema of `volume ls`.
type volumeJSON struct {
	Version int               `json:"version"`
	Volumes []*volumes.Volume `json:"volumes"`
}

func volumeList(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "volume ls", synopsis: "list named volumes", usage: "ckpt volume ls [-q] [--json]",
		desc: "Lists the named volumes. The human format may change; --json is stable."}
	fs := newFlags(sc)
	quiet := fs.BoolP("quiet", "q", false, "print only the names")
	asJSON := fs.Bool("json", false, "print one JSON document")
	if _, code := parse(sc, env, fs, args, 0, 0); code >= 0 {
		return code
	}
	vols, err := env.eng.Volumes(ctx)
	if err != nil {
		return env.fail(err)
	}
	switch {
	case *asJSON:
		if err := writeJSON(env.stdout, volumeJSON{Version: jsonVersion, Volumes: vols}); err != nil {
			return env.fail(err)
		}
	case *quiet:
		for _, v := range vols {
			fmt.Fprintln(env.stdout, v.Name)
		}
	default:
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
		for _, v := range vols {
			fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
		}
		_ = tw.Flush()
	}
	return exitOK
}

func volumeInspect(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "volume inspect", synopsis: "print named volumes as JSON", usage: "ckpt volume inspect (VOLUME... | --all)",
		desc: "Prints a JSON array of the volumes, in podman volume inspect's names; volumes not found are reported on stderr."}
	fs := newFlags(sc)
	all := fs.BoolP("all", "a", false, "inspect every volume")
	rest, code := parse(sc, env, fs, args, 0, -1)
	if code >= 0 {
		return code
	}
	if *all == (len(rest) > 0) {
		return usageError(env, sc, "give volume names, or --all")
	}
	found := []*volumes.Volume{}
	rc := exitOK
	if *all {
		vols, err := env.eng.Volumes(ctx)
		if err != nil {
			return env.fail(err)
		}
		found = vols
	}
	var errs []error
	for _, name := range rest {
		v, err := env.eng.Volume(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, v)
	}
	if err := writeJSON(env.stdout, found); err != nil {
		return env.fail(err)
	}
	for _, err := range errs {
		rc = env.fail(err)
	}
	return rc
}

func volumeRemove(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "volume rm", synopsis: "remove named volumes", usage: "ckpt volume rm [-f] (VOLUME... | --all)",
		desc: `Removes each volume and its content. A volume a container mounts (in any
state) is refused unless --force, which removes those containers first
(killing running ones), as podman volume rm --force does.`}
	fs := newFlags(sc)
	force := fs.BoolP("force", "f", false, "remove the containers that mount the volume first")
	all := fs.BoolP("all", "a", false, "remove every volume")
	rest, code := parse(sc, env, fs, args, 0, -1)
	if code >= 0 {
		return code
	}
	if *all == (len(rest) > 0) {
		return usageError(env, sc, "give volume names, or --all")
	}
	if *all {
		vols, err := env.eng.Volumes(ctx)
		if err != nil {
			return env.fail(err)
		}
		for _, v := range vols {
			rest = append(rest, v.Name)
		}
	}
	rc := exitOK
	for _, name := range rest {
		if err := env.eng.VolumeRemove(ctx, name, *force); err != nil {
			rc = env.fail(err)
			continue
		}
		fmt.Fprintln(env.stdout, name)
	}
	return rc
}

func volumePrune(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "volume prune", synopsis: "remove unused volumes", usage: "ckpt volume prune [-f]",
		desc: `Removes every volume no container mounts and prints their names. Asks
first unless --force.`}
	fs := newFlags(sc)
	force := fs.BoolP("force", "f", false, "do not ask for confirmation")
	if _, code := parse(sc, env, fs, args, 0, 0); code >= 0 {
		return code
	}
	if !*force && !confirm(env.stderr, os.Stdin, "This removes every volume no container mounts. Continue? [y/N] ") {
		return exitOK
	}
	removed, err := env.eng.VolumePrune(ctx)
	for _, name := range removed {
		fmt.Fprintln(env.stdout, name)
	}
	if err != nil {
		return env.fail(err)
	}
	return exitOK
}

// confirm asks question on w and reports whether the answer read from r
// is yes.
func confirm(w io.Writer, r io.Reader, question string) bool {
	fmt.Fprint(w, question)
	line, _ := bufio.NewReader(r).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
