#!/usr/bin/env bash
# mkpodman.sh makes the podman-made golden checkpoint archives under
# testdata/podman/ with the reference peer (podman 5 + runc + CRIU 4, see
# docs REFERENCE §3). It is run by hand, not by CI: it needs root, podman,
# runc and a CRIU that passes `criu check` (bash scripts/deps.sh --podman).
#
# Usage:
#
#	scripts/mkpodman.sh [make]   rebuild testdata/podman/ (default): counter,
#	                             then multi and tcp
#	scripts/mkpodman.sh counter  rebuild counter.tar, counter.tar.zst and the
#	                             files that go with them (steps 1-6 below)
#	scripts/mkpodman.sh multi    rebuild multi.tar.zst: a busybox shell loop
#	                             checkpointed with -R four times (see below)
#	scripts/mkpodman.sh tcp      rebuild tcp.tar.zst: the counter with -tcp,
#	                             checkpointed with --tcp-established
#	scripts/mkpodman.sh image    load the images the committed archives were
#	                             made from, so `podman container restore -i`
#	                             of them works on this machine
#	scripts/mkpodman.sh busybox-rootfs
#	                             print the path of the busybox rootfs tar
#	                             multi.tar.zst was made from (made and cached
#	                             if needed; no podman needed)
#	scripts/mkpodman.sh clean    remove this script's containers, volume, images
#
# Without podman on PATH it runs the release's podman unpacked by
# scripts/peer-podman.sh, with a store of its own ($MKPODMAN_STORE, default
# /var/tmp/ckpt-mkpodman): `MKPODMAN_STORE=... scripts/mkpodman.sh podman
# ARGS` runs that podman on that store by hand. podman 4.3 sets rlimits
# runc may not raise here, so containers get --ulimit nofile and nproc;
# they also drop the capabilities and the /sys/dev/block mask podman 5
# does not give by default (see ulimits below).
#
# counter does, with the names below:
#
#  1. make -C testdata/workloads; copy bin/rootfs.tar to
#     testdata/podman/rootfs.tar.gz (gzip -n, so the same tar gives the same
#     file);
#  2. turn that rootfs into a docker-archive whose config has fixed content,
#     and `podman load` it: the image ID (= digest of the config) is the same
#     on every run and every machine, which `podman container restore -i`
#     needs (config.dump names the image by ID; `podman import` would stamp
#     the current time into the config and so give a new ID each time);
#  3. podman volume create ckptvol; podman run -d --runtime runc
#     --network none -v ckptvol:/data IMAGE /bin/counter -write-files
#     -file /data/counter (crun fails on cgroup v1 hybrid hosts);
#  4. after ~2 s: podman container checkpoint --leave-running
#     --compress none -e counter.tar; after ~1 s more:
#     podman container checkpoint --keep --print-stats -e counter.tar.zst
#     (default zstd; this one stops the container; --keep leaves CRIU's
#     dump.log behind, which is copied to testdata/podman/dump.log);
#  5. checks the zstd archive by restoring it (after removing the container
#     and volume): the counter must go on from where it was checkpointed;
#  6. writes testdata/podman/README.md (versions, commands, stats, listings)
#     and removes the container, volume and image.
#
# multi does: build the busybox rootfs (Debian's busybox-static, unpacked
# privately, every applet a symlink; a deterministic tar, so the image ID is
# the same everywhere) and load it like step 2; run `sh -c` with a loop that
# prints a counter and starts short-lived `sleep` children (one or two at a
# time); checkpoint it with --leave-running three times, then once more with
# --leave-running -e multi.tar.zst. Podman reuses the container's checkpoint
# directory and CRIU deletes no image, so the archive holds the images of
# sleeps of earlier dumps (stale images). It checks the archive by
# restoring it with podman: the loop goes on from where it was.
#
# tcp does: run the counter with -tcp (a loopback connection between two
# goroutines of one process) with the host's network (see the README for
# why), checkpoint it with --tcp-established -e
# tcp.tar.zst (the container stops), restore it with --tcp-established: the
# ping/pong goes on over the same connection.
#
# Each writes its section of testdata/podman/README.md (versions, commands,
# listings); counter rewrites the part before the sections. It is
# re-runnable: leftovers of an earlier run (same names) are removed first,
# and everything is removed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
out=testdata/podman
image=localhost/ckpt-counter:mkpodman
ctr=ckpt-mkpodman
vol=ckptvol
bbimage=localhost/ckpt-busybox:mkpodman
multi=ckpt-mkpodman-multi
tcpctr=ckpt-mkpodman-tcp
cache=${CKPT_CACHE:-/var/cache/ckpt}/mkpodman
export PODMAN_IGNORE_CGROUPSV1_WARNING=1

say() { echo "mkpodman: $*" >&2; }
die() { say "$*"; exit 1; }

# busybox_rootfs prints the path of the busybox rootfs tar, making it
# (once per busybox-static version) from the package apt downloads: the
# tar is deterministic, so its digest, and the image ID made from it, are
# the same on every machine with the same package.
busybox_rootfs() {
	local ver tar tmp bb
	ver=$(apt-cache policy busybox-static 2>/dev/null | awk '$1 == "Candidate:" {print $2}')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no busybox-static (apt-get update, then retry)"
	tar=$cache/busybox-rootfs-${ver//[^A-Za-z0-9.+~-]/_}.tar
	if [ -s "$tar" ]; then
		echo "$tar"
		return
	fi
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.busybox.XXXXXX")
	# apt's download sandbox user cannot write into a root-only directory.
	chmod 0755 "$tmp"
	(cd "$tmp" && apt-get download -o Acquire::Retries=3 "busybox-static=$ver" >/dev/null 2>&1) ||
		{ rm -rf "$tmp"; die "apt-get download busybox-static=$ver failed"; }
	dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/pkg"
	bb=$tmp/pkg/bin/busybox
	mkdir -p "$tmp/root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root}
	chmod 1777 "$tmp/root/tmp"
	chmod 0700 "$tmp/root/root"
	cp "$bb" "$tmp/root/bin/busybox"
	"$bb" --list-full | while read -r applet; do
		[ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$tmp/root/$applet"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$tmp/root/etc/passwd"
	echo 'root:x:0:' >"$tmp/root/etc/group"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$tmp/root" -cf "$tmp/rootfs.tar" .
	mv "$tmp/rootfs.tar" "$tar"
	rm -rf "$tmp"
	echo "$tar"
}

cmd=${1:-make}
if [ "$cmd" = busybox-rootfs ]; then
	busybox_rootfs
	exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (podman checkpoint needs it)"
# podman on PATH, else the release's, unpacked privately, on a store of
# its own (the machine's store may be other people's).
policy=()
if command -v podman >/dev/null; then
	podman=(podman)
else
	pdir=$(bash scripts/peer-podman.sh) || die "no podman on PATH and scripts/peer-podman.sh failed"
	podman=("$pdir/podman")
	policy=(--signature-policy "$pdir/policy.json")
	MKPODMAN_STORE=${MKPODMAN_STORE:-/var/tmp/ckpt-mkpodman}
fi
if [ -n "${MKPODMAN_STORE:-}" ]; then
	podman+=(--root "$MKPODMAN_STORE/root" --runroot "$MKPODMAN_STORE/run")
fi
# cgroupfs and the file events backend are this host's defaults; say so
# explicitly so the script does not depend on systemd or journald.
podman+=(--cgroup-manager cgroupfs --events-backend file)
# podman 4.3 asks runc for rlimits above this host's hard limits, grants
# three capabilities podman 5 no longer does by default, and masks
# /sys/dev/block with a tmpfs, which podman 5 does not: ckpt refuses to
# restore processes holding those capabilities or a tmpfs its spec does
# not declare.
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --cap-drop NET_RAW,MKNOD,AUDIT_WRITE --security-opt unmask=/sys/dev/block)
for t in runc criu gzip zstd; do
	command -v "$t" >/dev/null || die "$t not found (try: bash scripts/deps.sh)"
done

cleanup() {
	"${podman[@]}" rm -f -t 0 "$ctr" "$multi" "$tcpctr" >/dev/null 2>&1 || true
	"${podman[@]}" volume rm -f "$vol" >/dev/null 2>&1 || true
	if [ "${keep_image:-0}" != 1 ]; then
		"${podman[@]}" rmi -f "$image" "$bbimage" >/dev/null 2>&1 || true
	fi
}

# load_tar NAME TAR CMD loads the rootfs TAR as image NAME through a
# docker-archive with a fixed config (command CMD, a JSON array), so its
# ID never changes for the same rootfs.
load_tar() {
	local name=$1 rootfs=$2 cmdjson=$3 tmp layer cfg arch id
	tmp=$(mktemp -d)
	cp "$rootfs" "$tmp/layer.tar"
	layer=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
	case "$(uname -m)" in
	x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;;
	esac
	printf '{"architecture":"%s","config":{"Cmd":%s,"Env":["PATH=/bin"],"WorkingDir":"/"},"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/mkpodman.sh"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$arch" "$cmdjson" "$layer" >"$tmp/config.json"
	cfg=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
	mkdir "$tmp/a" "$tmp/a/$layer"
	mv "$tmp/layer.tar" "$tmp/a/$layer/layer.tar"
	mv "$tmp/config.json" "$tmp/a/$cfg.json"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$name" "$layer" >"$tmp/a/manifest.json"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/a" -cf "$tmp/image.tar" .
	"${podman[@]}" load -q "${policy[@]}" -i "$tmp/image.tar" >&2
	rm -rf "$tmp"
	id=$("${podman[@]}" image inspect --format '{{.Id}}' "$name")
	[ "$id" = "$cfg" ] || die "image ID $id, want $cfg"
	say "image $name loaded, ID $id"
}

# load_image loads $out/rootfs.tar.gz as $image.
load_image() {
	local tmp
	tmp=$(mktemp)
	gzip -dc "$out/rootfs.tar.gz" >"$tmp"
	load_tar "$image" "$tmp" '["/bin/counter"]'
	rm -f "$tmp"
}

load_busybox() { load_tar "$bbimage" "$(busybox_rootfs)" '["/bin/sh"]'; }

# last_counter prints the value of the last "counter N" line on stdin.
last_counter() { sed -n 's/^.*counter \([0-9][0-9]*\)$/\1/p' | tail -1; }

# versions prints the peers' versions as list items.
versions() {
	echo "- $("${podman[@]}" --version)"
	echo "- $(runc --version | head -1)"
	echo "- CRIU $(criu --version | sed -n 's/^Version: *//p')"
	echo "- kernel $(uname -r), cgroup v1 hybrid, cgroup manager cgroupfs, events backend file"
}

# section NAME FILE puts FILE into README.md as the section NAME, between
# its markers, replacing an earlier one.
section() {
	local name=$1 file=$2 readme=$out/README.md tmp
	tmp=$(mktemp)
	[ -f "$readme" ] || : >"$readme"
	awk -v b="<!-- mkpodman $name -->" -v e="<!-- end mkpodman $name -->" '
		$0 == b {skip = 1; next}
		$0 == e {skip = 0; next}
		!skip' "$readme" >"$tmp"
	{ cat "$tmp"; echo "<!-- mkpodman $name -->"; cat "$file"; echo "<!-- end mkpodman $name -->"; } >"$readme"
	rm -f "$tmp" "$file"
}

# sections prints the sections of README.md, markers included.
sections() {
	[ -f "$out/README.md" ] || return 0
	awk '/^<!-- mkpodman [a-z]+ -->$/ {p = 1} p' "$out/README.md"
}

# make_counter makes counter.tar and counter.tar.zst (steps 1-6 above).
make_counter() {
make -s -C testdata/workloads bin/rootfs.tar
mkdir -p "$out"
gzip -n -9 -c testdata/workloads/bin/rootfs.tar >"$out/rootfs.tar.gz"
load_image

run_cmd=("${podman[@]}" run -d --name "$ctr" --runtime runc "${ulimits[@]}" --network none -v "$vol:/data" "$image" /bin/counter -write-files -file /data/counter)
"${podman[@]}" volume create "$vol" >/dev/null
"${run_cmd[@]}" >/dev/null
sleep 2
diff_out=$("${podman[@]}" diff "$ctr")

ckpt_none=("${podman[@]}" container checkpoint --leave-running --compress none -e "$out/counter.tar" "$ctr")
"${ckpt_none[@]}" >/dev/null
sleep 1
ckpt_zstd=("${podman[@]}" container checkpoint --keep --print-stats -e "$out/counter.tar.zst" "$ctr")
"${ckpt_zstd[@]}" >"$out/checkpoint-stats.json"
chmod 0644 "$out/counter.tar" "$out/counter.tar.zst"
# --keep leaves CRIU's dump.log (not part of podman's export) in the
# container's userdata directory; the legacy corpus reuses it.
cp "$("${podman[@]}" container inspect --format '{{.StaticDir}}' "$ctr")/dump.log" "$out/dump.log"
chmod 0644 "$out/dump.log"

# The value the zstd checkpoint holds is the last one the workload wrote
# to its volume before it was frozen.
at_ckpt=$(tar --zstd -xOf "$out/counter.tar.zst" volumes/$vol.tar | tar -xOf - ./counter)
say "checkpointed at counter $at_ckpt"

# Restore check: the container and its volume must not exist for import.
"${podman[@]}" rm "$ctr" >/dev/null
"${podman[@]}" volume rm "$vol" >/dev/null
restore_cmd=("${podman[@]}" container restore --print-stats -i "$out/counter.tar.zst")
"${restore_cmd[@]}" >"$out/restore-stats.json"
sleep 1
logs=$("${podman[@]}" logs "$ctr")
after=$(last_counter <<<"$logs")
ones=$(grep -c '^counter 1$' <<<"$logs" || true)
[ "$ones" = 1 ] || die "restored counter started again from 1"
[ "$after" -gt "$at_ckpt" ] || die "restored counter at $after, not past $at_ckpt"
mnt=$("${podman[@]}" mount "$ctr")
restored_modified=$(cat "$mnt/etc/modified.txt")
restored_added=$(cat "$mnt/added.txt" 2>/dev/null || echo "(missing)")
"${podman[@]}" umount "$ctr" >/dev/null
say "restore ok: counter went on from $at_ckpt to $after"

# README with everything needed to judge the archives.
listing() { tar "$@" -tvf -; }
{
	cat <<EOF
# testdata/podman: golden archives made by podman

Made by \`scripts/mkpodman.sh\` (run by hand as root; not run by CI) on
$(date -u +%Y-%m-%d) with:

- $("${podman[@]}" --version)
- $(runc --version | head -1)
- CRIU $(criu --version | sed -n 's/^Version: *//p')
- kernel $(uname -r), cgroup v1 hybrid, cgroup manager cgroupfs, events backend file
- $(go version) (builds \`/bin/counter\`; the same Go version gives a byte-identical \`rootfs.tar\`)

| file | what |
|---|---|
| \`rootfs.tar.gz\` | \`gzip -n -9\` of the exact \`testdata/workloads/bin/rootfs.tar\` the container ran (holds the \`/bin/counter\` binary the CRIU images need) |
| \`counter.tar.zst\` | \`podman container checkpoint -e\` (default zstd), the final checkpoint (the container stopped) |
| \`counter.tar\` | \`podman container checkpoint --leave-running --compress none -e\`, taken ~1 s earlier from the same container |
| \`checkpoint-stats.json\` | \`--print-stats\` output of the zstd checkpoint |
| \`dump.log\` | CRIU's log of the zstd checkpoint (kept by \`--keep\`; podman does not export it) |
| \`restore-stats.json\` | \`--print-stats\` output of restoring \`counter.tar.zst\` |

The image is a docker-archive made from \`rootfs.tar.gz\` with a fixed config
(created 1970-01-01), loaded as \`$image\`; its ID is the config's digest,
so it is the same everywhere. \`config.dump\` refers to the image by that ID:
to restore the archives, run \`scripts/mkpodman.sh image\` first, then
\`podman container restore -i testdata/podman/counter.tar.zst\` (the volume
\`$vol\` and a container named \`$ctr\` must not exist).

## Commands (as the script runs them)

\`\`\`
${podman[*]} volume create $vol
${run_cmd[*]}
sleep 2
${ckpt_none[*]}
sleep 1
${ckpt_zstd[*]}
${podman[*]} rm $ctr
${podman[*]} volume rm $vol
${restore_cmd[*]}
\`\`\`

The workload (see ../README.md) ran \`/bin/counter -write-files -file /data/counter\`:
it counts in memory every 100 ms, writes the value to the volume, and at
start adds \`/added.txt\`, overwrites \`/etc/modified.txt\` and deletes
\`/etc/deleted.txt\`. The zstd archive was taken at counter $at_ckpt; after
restoring it the counter went on to $after without starting again from 1.

## What podman put in the archives

- \`rootfs-diff.tar\` holds only the **added** file (\`added.txt\`). The
  **modified** \`/etc/modified.txt\` is missing, although \`podman diff\` lists it
  as changed (see below). After the restore check, \`/etc/modified.txt\`
  read \`$restored_modified\` and \`/added.txt\` read \`$restored_added\`
  (the workload wrote \`modified by counter\` and \`added by counter\`).
  This is the podman 5.4.2 behaviour noted in REFERENCE §4.
- \`deleted.files\` is the JSON array \`["/etc/deleted.txt"]\`.
- \`volumes/$vol.tar\` holds the volume (\`./counter\`).
- \`checkpoint/descriptors.json\` shows stdio: \`/dev/null\` and two pipes
  (conmon's).
- No \`pre-checkpoint/\`: this kernel has no soft-dirty tracking.

### podman diff before the checkpoint

\`\`\`
$diff_out
\`\`\`

### --print-stats of the checkpoint

\`\`\`json
$(cat "$out/checkpoint-stats.json")
\`\`\`

### --print-stats of the restore

\`\`\`json
$(cat "$out/restore-stats.json")
\`\`\`

### tar tvf counter.tar.zst

\`\`\`
$(listing --zstd <"$out/counter.tar.zst")
\`\`\`

### tar tvf counter.tar

\`\`\`
$(listing <"$out/counter.tar")
\`\`\`

### Sizes

\`\`\`
$(cd "$out" && ls -l rootfs.tar.gz counter.tar counter.tar.zst | awk '{print $5, $9}')
\`\`\`
EOF
sections
} >"$out/README.md.tmp"
mv "$out/README.md.tmp" "$out/README.md"
say "wrote $out/README.md"
}

# The loop of multi: a counter on stdout and short-lived sleep children,
# two at a time for the first 6 rounds (the first dump sees three
# processes), then one, so that each dump finds other pids and the last
# one fewer pages images than the first.
multi_loop='i=0; while true; do i=$((i+1)); echo "counter $i"; if [ $i -le 6 ]; then sleep 0.4 & sleep 0.4; wait; else sleep 0.2; fi; done'

# make_multi makes multi.tar.zst (see the header).
make_multi() {
	load_busybox
	local run_cmd ckpt_r ckpt_e restore_cmd at_ckpt after logs ones k listing
	run_cmd=("${podman[@]}" run -d --name "$multi" --runtime runc "${ulimits[@]}" --network none "$bbimage" /bin/sh -c "$multi_loop")
	"${run_cmd[@]}" >/dev/null
	sleep 1
	ckpt_r=("${podman[@]}" container checkpoint --leave-running "$multi")
	for k in 1 2 3; do
		"${ckpt_r[@]}" >/dev/null
		sleep 0.7
	done
	ckpt_e=("${podman[@]}" container checkpoint --leave-running -e "$out/multi.tar.zst" "$multi")
	"${ckpt_e[@]}" >/dev/null
	chmod 0644 "$out/multi.tar.zst"
	at_ckpt=$(tar --zstd -xOf "$out/multi.tar.zst" ctr.log | last_counter)
	listing=$(tar --zstd -tvf "$out/multi.tar.zst")

	# Restore check: podman restores the archive, stale images and all.
	"${podman[@]}" rm -f -t 0 "$multi" >/dev/null
	restore_cmd=("${podman[@]}" container restore -i "$out/multi.tar.zst")
	"${restore_cmd[@]}" >/dev/null
	sleep 1.5
	logs=$("${podman[@]}" logs "$multi")
	after=$(last_counter <<<"$logs")
	ones=$(grep -c '^counter 1$' <<<"$logs" || true)
	[ "$ones" = 1 ] || die "multi: restored loop started again from 1"
	[ "$after" -gt "$at_ckpt" ] || die "multi: restored loop at $after, not past $at_ckpt"
	say "multi: podman restored it: the loop went on from $at_ckpt to $after"
	"${podman[@]}" rm -f -t 0 "$multi" >/dev/null

	local tmp
	tmp=$(mktemp)
	cat >"$tmp" <<MD

## multi.tar.zst: one container checkpointed with -R four times

Made by \`scripts/mkpodman.sh multi\` on $(date -u +%Y-%m-%d) with:

$(versions)
- busybox-static $(apt-cache policy busybox-static | awk '$1 == "Installed:" || $1 == "Candidate:" {v = $2} END {print v}') from the release, unpacked into a rootfs by \`scripts/mkpodman.sh busybox-rootfs\` and loaded as \`$bbimage\` (a fixed config, as above)

\`\`\`
${run_cmd[*]}
sleep 1
3 times: ${ckpt_r[*]}; sleep 0.7
${ckpt_e[*]}
${podman[*]} rm -f -t 0 $multi
${restore_cmd[*]}
\`\`\`

The loop printed \`counter N\` with two \`sleep\` children at a time for
six rounds, then one.
Podman checkpoints into the same directory each time and CRIU deletes no
image, so the archive holds the core, mm, pagemap, ids and fs images of
sleeps that had exited by the last dump (pstree.img does not list them),
their pagemaps naming the pages ids of the live ones, and the fdinfo and
pages images of the first dump's third process that no live task names
(\`ckptinspect verify\` lists each as a note). The archive was taken
at counter $at_ckpt; podman restored it (stale images and all: CRIU reads
only what pstree.img leads to) and the loop went on to $after without
starting again from 1.

\`\`\`
$listing
\`\`\`
MD
	section multi "$tmp"
	say "wrote multi.tar.zst ($(stat -c %s "$out/multi.tar.zst") bytes)"
}

# make_tcp makes tcp.tar.zst (see the header).
make_tcp() {
	load_image
	local run_cmd ckpt_cmd restore_cmd at_ckpt after logs listing
	run_cmd=("${podman[@]}" run -d --name "$tcpctr" --runtime runc "${ulimits[@]}" --network host "$image" /bin/counter -tcp -file "")
	"${run_cmd[@]}" >/dev/null
	sleep 2
	ckpt_cmd=("${podman[@]}" container checkpoint --tcp-established -e "$out/tcp.tar.zst" "$tcpctr")
	"${ckpt_cmd[@]}" >/dev/null
	chmod 0644 "$out/tcp.tar.zst"
	at_ckpt=$(tar --zstd -xOf "$out/tcp.tar.zst" ctr.log | sed -n 's/^.*tcp ok \([0-9][0-9]*\)$/\1/p' | tail -1)
	listing=$(tar --zstd -tvf "$out/tcp.tar.zst")
	"${podman[@]}" rm -f -t 0 "$tcpctr" >/dev/null
	restore_cmd=("${podman[@]}" container restore --tcp-established -i "$out/tcp.tar.zst")
	"${restore_cmd[@]}" >/dev/null
	sleep 1.5
	logs=$("${podman[@]}" logs "$tcpctr")
	after=$(sed -n 's/^.*tcp ok \([0-9][0-9]*\)$/\1/p' <<<"$logs" | tail -1)
	if grep -q 'tcp error' <<<"$logs"; then die "tcp: the restored connection broke: $(grep 'tcp error' <<<"$logs" | head -1)"; fi
	[ "$after" -gt "$at_ckpt" ] || die "tcp: restored ping/pong at $after, not past $at_ckpt"
	say "tcp: podman restored it: the ping/pong went on from $at_ckpt to $after"
	"${podman[@]}" rm -f -t 0 "$tcpctr" >/dev/null

	local tmp
	tmp=$(mktemp)
	cat >"$tmp" <<MD

## tcp.tar.zst: an established TCP connection

Made by \`scripts/mkpodman.sh tcp\` on $(date -u +%Y-%m-%d) with:

$(versions)

\`\`\`
${run_cmd[*]}
sleep 2
${ckpt_cmd[*]}
${podman[*]} rm -f -t 0 $tcpctr
${restore_cmd[*]}
\`\`\`

The counter's \`-tcp\` keeps one established 127.0.0.1 connection between two
goroutines of its one process and pings it every tick. The container has
the host's network: with \`--network none\`, podman 4.3.1 checkpoints the
connection but cannot restore it ("soccr: Can't connect inet socket back:
Network is unreachable": its restore leaves the container's new network
namespace without a loopback that is up), and this podman has no network
plugins for a bridge. The archive was
taken at \`tcp ok $at_ckpt\`; podman restored it with --tcp-established and
the ping/pong went on over the same connection to \`tcp ok $after\`.

\`\`\`
$listing
\`\`\`
MD
	section tcp "$tmp"
	say "wrote tcp.tar.zst ($(stat -c %s "$out/tcp.tar.zst") bytes)"
}

case "$cmd" in
make | counter | multi | tcp) ;;
image)
	keep_image=1
	"${podman[@]}" rmi -f "$image" "$bbimage" >/dev/null 2>&1 || true
	load_image
	load_busybox
	exit 0
	;;
podman)
	shift
	exec "${podman[@]}" "$@"
	;;
clean)
	cleanup
	exit 0
	;;
*) die "unknown command $cmd (usage: mkpodman.sh [make|counter|multi|tcp|image|busybox-rootfs|podman|clean])" ;;
esac

cleanup
trap cleanup EXIT
mkdir -p "$out"
case "$cmd" in
make)
	make_counter
	make_multi
	make_tcp
	;;
counter) make_counter ;;
multi) make_multi ;;
tcp) make_tcp ;;
esac
