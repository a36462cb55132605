// Command ckpt runs containers under runc from a containers/storage image
// store and checkpoints and restores them with CRIU 4.
//
// Usage:
//
//	ckpt [global flags] COMMAND [flags] [ARGS]
//
// Global flags:
//
//	--root DIR          engine state (default /var/lib/ckpt)
//	--storage-root DIR  containers/storage graph root (default <root>/storage;
//	                    podman's /var/lib/containers/storage works)
//	--runroot DIR       runtime state (default /run/ckpt-<hash of --root>)
//	--runtime PATH      OCI runtime (default runc)
//	--criu PATH         CRIU binary ckpt checks (default criu; runc 1.1 runs
//	                    the criu found in PATH, so keep them the same)
//	--criu-timeout D    time every CRIU dump or restore gets (default 2m)...
//	--criu-timeout-per-gib D
//	                    ...plus this per GiB of images or memory (default 1m);
//	                    past it runc and CRIU are killed
//	--criu-max-log MIB  size CRIU's log may reach before runc and CRIU are
//	                    killed (default 256)
//	--config FILE       configuration file (default $CKPT_CONFIG, else
//	                    /etc/ckpt/ckpt.conf if it exists)
//	-v, --version       print ckpt's, the runtime's and CRIU's versions
//
// Each global flag may also be set by the environment variable CKPT_ and its
// name in capitals with _ for - (CKPT_ROOT, CKPT_RUNROOT, CKPT_TMPDIR, ...),
// or by a "name = value" line of the configuration file; a flag wins over
// the environment, the environment over the file, the file over the
// default (config.go).
//
// Commands:
//
//	image pull [--tls-verify=false] [--authfile F] [-q] REF  copy an image into the store
//	                            (docker://, oci:, oci-archive:, docker-archive:,
//	                            containers-storage:[GRAPHROOT]NAME; a bare NAME is docker://)
//	image push [--tls-verify=false] [--authfile F] [-q] IMAGE [DEST]  copy an image out
//	image load -i FILE [-q]     load an oci-archive or docker-archive (detected)
//	image save [--format docker-archive|oci-archive|oci-dir] -o FILE IMAGE  save an image
//	image import SOURCE NAME    import a rootfs directory or tar[.gz|.zst] as an image
//	image ls [--json]           list images
//	image rm IMAGE...           remove images
//	run [-d] [-i] [-t] [--rm] [--sig-proxy=false] [--name N] [-e K=V] [--env-file F] [-v VOL:/path]
//	    [-v /host:/path] [--network none|host] [-u USER[:GROUP]] [-w DIR] [--hostname H]
//	    [--entrypoint P|JSON] [-m SIZE] IMAGE [CMD...]
//	                            stdin at EOF unless -i; attached, signals go to the container;
//	                            -t: a terminal (this one, raw, with -it), kept across checkpoints
//	ps [-a] [-q | --format F | --json] [--no-trunc]  list containers
//	logs [-f] [-t] [--tail N] [--since T] [--until T] CONTAINER  print a container's output
//	exec [-i] [-t] [-e K=V] [-u USER[:GROUP]] [-w DIR] CONTAINER CMD...  run a command in a running container (stdin with -i)
//	stop [-t SECS] CONTAINER... stop containers (TERM, then KILL)
//	kill [-s SIG] CONTAINER...  signal containers
//	rm [-f] CONTAINER...        remove containers
//	checkpoint [-a|-l] [-R] [--tcp-established] [--file-locks] [-k] [--print-stats] CONTAINER...
//	restore [-a|-l] [-k] [--tcp-established|--tcp-close] [--file-locks] [--print-stats] CONTAINER...
//	check [--json]              report CRIU, runtime, soft-dirty, cgroup and storage driver
//	create [run's flags] IMAGE CMD...  create a container without starting it
//	start [-a] CONTAINER...     start created or stopped containers (afresh, same layer)
//	restart [-t SECS] CONTAINER...  stop and start containers
//	wait [-i INTERVAL] [--condition STATE] CONTAINER...  wait for containers to exit (or reach STATE), print exit codes
//	inspect [-f FORMAT] (CONTAINER... | -l)  containers as JSON (podman's names)
//	volume create [-l K=V] [--ignore] [NAME] | ls [-q] [--json] | inspect NAME... | rm [-f] NAME... | prune [-f]
//	info [--json]               host facts, directories, storage driver, counts
//	version [--json]            ckpt's, the runtime's and CRIU's versions
//	completion bash|zsh|fish    print a shell completion script
//
// Completion and man pages come from the command table (gen.go): each
// command's run is probed with a probe in its cmdEnv, which makes parse
// hand back the command and the flag set it would parse, without running
// anything; so --help, completion and the man pages show the same flags
// (TestHelpCompletionManAgree). The hidden `ckpt __complete WORDS...`
// answers the completion scripts (internal/cligen), asking the engine of
// the typed global flags for container, image and volume names; `ckpt
// __man DIR` writes ckpt(1) and ckpt-COMMAND(1) (make install).
//
// Checkpoint and restore flags follow podman's (`podman container
// checkpoint/restore`) names and rules: -a, -l and container names are
// mutually exclusive; --tcp-established and --tcp-close too.
// --print-stats prints podman's JSON shape with "ckpt_phases" added.
// Every --json output is one JSON document with a "version" member; the
// human formats may change.
//
// run's process flags follow podman's: -u resolves names in the image's
// /etc/passwd and /etc/group (a uid the image lacks gets gid 0; the
// groups /etc/group lists the user in are added), -m takes b, k, m, g
// (powers of 1024) into the OCI linux.resources.memory.limit, which a
// checkpoint and restore keep (the container's record carries it through
// an export). Without CMD, run and create take the image's entrypoint and
// command, and its environment, working directory and user where -e, -w
// and -u do not say otherwise, as podman does (--entrypoint drops the
// image's command); images imported with `image import` record none:
// --entrypoint (a path, or a JSON array) is the program and CMD its
// arguments. --env-file lines are KEY=VALUE, a KEY alone takes
// ckpt's own value (KEY* every variable so named), # starts a comment;
// -e wins. ps --format is a Go template over podman's row fields (.ID,
// .Names, .Image, .ImageID, .Command, .Created, .CreatedAt,
// .CreatedHuman, .Status, .State, .ExitCode, .Exited, .ExitedAt,
// .StartedAt, .RunningFor, .Pid, .Mounts, .Networks), "json", or "table
// TEMPLATE". The container log is podman's k8s-file format (a time and
// stream per line), which logs -t, --since and --until (RFC 3339, a date,
// Unix seconds or a duration such as 10m) read.
//
// Exit status: 0 success, 1 failure, 125 usage error (podman's code for its
// own errors, above any status 0-124 of a container); `run` without -d
// exits with the container's status and `exec` with the command's (126:
// not executable, 127: not found, as podman's). An
// unknown command or flag is one line naming the nearest one ("did you
// mean"), or the ckpt spelling of a podman command (images, rmi, import,
// container X), then `see 'ckpt --help'` (or the command's --help). Every
// command but check and the help needs root, and says so in one line
// (exit 1) rather than show an empty engine. A file given to restore
// --import or image import that is the wrong kind of file is named for
// what it looks like (text, a root filesystem tar, an OCI or Docker image
// archive, a checkpoint archive: format.Sniff), with what to do instead
// (an image archive: `ckpt image load -i FILE`); run, create and restore
// --import of an image the store lacks name `ckpt image pull IMAGE`.
package main
