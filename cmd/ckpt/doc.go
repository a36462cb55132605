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
//
// Commands:
//
//	image import SOURCE NAME    import a rootfs directory or tar[.gz|.zst] as an image
//	image ls [--json]           list images
//	image rm IMAGE...           remove images
//	run [-d] [-i] [--rm] [--sig-proxy=false] [--name N] [-e K=V] [-v VOL:/path] [-v /host:/path]
//	    [--network none|host] IMAGE CMD...
//	                            stdin at EOF unless -i; attached, signals go to the container
//	ps [-a] [--json]            list containers
//	logs [-f] CONTAINER         print a container's output
//	exec [-i] CONTAINER CMD...  run a command in a running container (stdin with -i)
//	stop [-t SECS] CONTAINER... stop containers (TERM, then KILL)
//	kill [-s SIG] CONTAINER...  signal containers
//	rm [-f] CONTAINER...        remove containers
//	checkpoint [-a|-l] [-R] [--tcp-established] [--file-locks] [-k] [--print-stats] CONTAINER...
//	restore [-a|-l] [-k] [--tcp-established|--tcp-close] [--file-locks] [--print-stats] CONTAINER...
//	check [--json]              report CRIU, runtime, soft-dirty, cgroup and storage driver
//
// Checkpoint and restore flags follow podman's (`podman container
// checkpoint/restore`) names and rules: -a, -l and container names are
// mutually exclusive; --tcp-established and --tcp-close too.
// --print-stats prints podman's JSON shape with "ckpt_phases" added.
// Every --json output is one JSON document with a "version" member; the
// human formats may change.
//
// Exit status: 0 success, 1 failure, 2 usage error; `run` without -d exits
// with the container's status and `exec` with the command's (126: not
// executable, 127: not found, as podman's).
package main
