package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/ckpt/ckpt/engine"
	"github.com/ckpt/ckpt/internal/cligen"
)

// transportsHelp is the transports part of pull's and push's help.
const transportsHelp = `References, podman's transports: docker://NAME (a registry; a NAME
without a registry is docker.io's, e.g. busybox is
docker.io/library/busybox:latest; podman would ask registries.conf's
search registries instead), oci:DIR[:NAME], oci-archive:FILE[:NAME],
docker-archive:FILE, containers-storage:[GRAPHROOT]NAME (podman's store:
its default one, or the one at GRAPHROOT). A bare NAME is docker://NAME.
Credentials come from --authfile, else $REGISTRY_AUTH_FILE, else
$XDG_RUNTIME_DIR/containers/auth.json or /run/containers/0/auth.json,
then ~/.docker/config.json, as podman reads them. No signature policy
is applied (podman's default policy.json accepts any image too).`

// transferFlags adds --tls-verify, --authfile and -q to fs and returns
// their options.
type transferFlags struct {
	tlsVerify *bool
	authFile  *string
	quiet     *bool
}

func addTransferFlags(fs *pflag.FlagSet, registry bool) *transferFlags {
	t := &transferFlags{quiet: fs.BoolP("quiet", "q", false, "print no progress, only the result")}
	if registry {
		t.tlsVerify = fs.Bool("tls-verify", true, "require HTTPS and verify certificates when contacting registries")
		t.authFile = fs.String("authfile", "", "registry credentials file (default $REGISTRY_AUTH_FILE, else podman's)")
	}
	return t
}

func (t *transferFlags) options(env *cmdEnv) *engine.TransferOptions {
	o := &engine.TransferOptions{}
	if t.tlsVerify != nil {
		o.TLSVerifyOff = !*t.tlsVerify
		o.AuthFile = *t.authFile
	}
	if !*t.quiet {
		o.Progress = env.stderr
	}
	return o
}

func imagePull(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image pull", synopsis: "copy an image into the store",
		usage: "ckpt image pull [--tls-verify=false] [--authfile FILE] [-q] REFERENCE",
		desc: `Copies the image REFERENCE names into the store, keeping its name and
config (entrypoint, command, environment, working directory, user: what
'ckpt run IMAGE' runs without CMD), and prints its ID. Every blob is
checked against its digest; a failed pull leaves nothing in the store.

` + transportsHelp}
	fs := newFlags(sc)
	tf := addTransferFlags(fs, true)
	rest, code := parse(sc, env, fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	img, err := env.eng.ImagePull(ctx, rest[0], tf.options(env))
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintln(env.stdout, img.ID)
	return exitOK
}

func imagePush(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image push", synopsis: "copy an image from the store to a registry or file",
		usage: "ckpt image push [--tls-verify=false] [--authfile FILE] [-q] IMAGE [DESTINATION]",
		desc: `Copies IMAGE (a name, ID or ID prefix in the store) to DESTINATION,
by default IMAGE's name in its registry. Only images that came with a
manifest (pulled or loaded, not made by 'ckpt image import') can be pushed.

` + transportsHelp}
	fs := newFlags(sc)
	tf := addTransferFlags(fs, true)
	rest, code := parse(sc, env, fs, args, 1, 2)
	if code >= 0 {
		return code
	}
	dest := ""
	if len(rest) == 2 {
		dest = rest[1]
	}
	if err := env.eng.ImagePush(ctx, rest[0], dest, tf.options(env)); err != nil {
		return env.fail(err)
	}
	return exitOK
}

func imageLoad(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image load", synopsis: "load an image from an archive",
		usage: "ckpt image load -i FILE [-q]",
		desc: `Loads the image in FILE, an oci-archive or a docker-archive (told apart
by their contents; a docker-archive may be compressed) or an OCI layout
directory, into the store, and prints its ID. An archive is as untrusted
as a registry: blobs are checked against their digests, and archives
that break ckpt's limits (symbolic links, devices, layers fetched from
elsewhere, a huge index) are refused. Unlike podman, ckpt loads archives
of one image only, and does not read stdin.`}
	fs := newFlags(sc)
	input := fs.StringP("input", "i", "", "the archive to load (required)")
	tf := addTransferFlags(fs, false)
	if _, code := parse(sc, env, fs, args, 0, 0); code >= 0 {
		return code
	}
	if *input == "" {
		return usageError(env, sc, "give the archive with -i FILE")
	}
	img, err := env.eng.ImageLoad(ctx, *input, tf.options(env))
	if err != nil {
		return env.fail(err)
	}
	fmt.Fprintln(env.stdout, img.ID)
	return exitOK
}

func imageSave(ctx context.Context, env *cmdEnv, c *command, args []string) int {
	sc := &command{name: "image save", synopsis: "save an image to an archive",
		usage: "ckpt image save [--format docker-archive|oci-archive|oci-dir] -o FILE IMAGE",
		desc: `Writes IMAGE (a name, ID or ID prefix) to FILE as a docker-archive (the
default, as in podman), an oci-archive or an OCI layout directory
(oci-dir). An archive is written beside FILE and renamed: a failed save
leaves no FILE. 'ckpt image load' of the file gives the same image ID.`}
	fs := newFlags(sc)
	formatName := fs.String("format", engine.SaveDockerArchive, "docker-archive, oci-archive or oci-dir")
	_ = fs.SetAnnotation("format", cligen.ValuesAnnotation, []string{engine.SaveDockerArchive, engine.SaveOCIArchive, engine.SaveOCIDir})
	output := fs.StringP("output", "o", "", "the file (directory for oci-dir) to write (required)")
	rest, code := parse(sc, env, fs, args, 1, 1)
	if code >= 0 {
		return code
	}
	if *output == "" {
		return usageError(env, sc, "give the file to write with -o FILE (ckpt does not write to stdout)")
	}
	if err := env.eng.ImageSave(ctx, rest[0], *formatName, *output); err != nil {
		return env.fail(err)
	}
	return exitOK
}
