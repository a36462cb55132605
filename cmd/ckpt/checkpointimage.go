package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ckpt/ckpt/engine"
	"github.com/spf13/pflag"
)

// imageRun is `checkpoint --create-image` as its flags and arguments say.
type imageRun struct {
	fs         *pflag.FlagSet
	flags      *exportFlags
	image      string
	opts       engine.ExportOptions
	sel        selection
	printStats bool
}

// runCreateImage is `ckpt checkpoint --create-image`: podman's flag rules
// (the export flags need --export, which this is not), then
// engine.CheckpointImage.
func runCreateImage(ctx context.Context, env *cmdEnv, c *command, r *imageRun) int {
	if r.image == "" {
		return usageError(env, c, "--create-image needs an image name")
	}
	for _, n := range []string{"export", "compress", "stream", "ignore-rootfs", "ignore-volumes"} {
		if r.fs.Changed(n) {
			if n == "export" {
				return usageError(env, c, "--create-image and --export cannot be used together: an image or an archive, one at a time")
			}
			return usageError(env, c, "--%s can only be used with --export", n)
		}
	}
	if r.opts.PreCheckpoint || r.opts.WithPrevious {
		return usageError(env, c, "--create-image takes a full checkpoint: not with --pre-checkpoint or --with-previous")
	}
	refs, msg, err := selectContainers(ctx, env, &r.sel)
	if msg != "" {
		return usageError(env, c, "%s", msg)
	}
	if err != nil {
		return env.fail(err)
	}
	if len(refs) != 1 {
		return usageError(env, c, "--create-image needs exactly one container (%d selected)", len(refs))
	}
	res, err := env.eng.CheckpointImage(ctx, refs[0], r.image, &r.opts)
	if err != nil {
		return env.fail(err)
	}
	if !r.printStats {
		fmt.Fprintln(env.stdout, refs[0])
		return exitOK
	}
	x := res.Export
	stats := checkpointStatsJSON{Duration: x.Total.Microseconds(), Containers: []checkpointContainerJSON{newCheckpointStats(&x.DumpResult)}}
	if err := writeJSON(env.stdout, stats); err != nil {
		return env.fail(err)
	}
	return exitOK
}

// imageArg returns the one argument of restore if it names no container
// but an image, which restore then restores from as podman does (a
// checkpoint image; any other image is refused by the engine), or "".
func imageArg(ctx context.Context, env *cmdEnv, r *importRun) string {
	if len(r.args) != 1 || r.all || r.latest || r.fs.Changed("import") {
		return ""
	}
	if strings.HasPrefix(r.args[0], engine.TransportContainerd+":") {
		return r.args[0]
	}
	if _, err := env.eng.Inspect(ctx, r.args[0]); !errors.Is(err, engine.ErrUnknownContainer) {
		return ""
	}
	if _, err := env.eng.ImageInspect(ctx, r.args[0]); err != nil {
		return ""
	}
	return r.args[0]
}

// unknownArg reports whether restore's one argument names neither a
// container nor an image, so that a usage message about an import flag
// can say the argument was not found either.
func unknownArg(ctx context.Context, env *cmdEnv, r *importRun) bool {
	if len(r.args) != 1 || r.all || r.latest {
		return false
	}
	if _, err := env.eng.Inspect(ctx, r.args[0]); !errors.Is(err, engine.ErrUnknownContainer) {
		return false
	}
	_, err := env.eng.ImageInspect(ctx, r.args[0])
	return err != nil
}
