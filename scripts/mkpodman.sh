#!/usr/bin/env bash
# mkpodman.sh makes the podman-made golden checkpoint archives under
# testdata/podman/ with the reference peer (podman 5 + runc + CRIU 4, see
# docs REFERENCE §3). It is run by hand, not by CI: it needs root, podman,
# runc and a CRIU that passes `criu check` (bash scripts/deps.sh --podman).
#
# Usage:
#
#	scripts/mkpodman.sh [make]   rebuild testdata/podman/ (default)
#	scripts/mkpodman.sh image    load the image the committed archives were
#	                             made from, so `podman container restore -i`
#	                             of them works on this machine
#	scripts/mkpodman.sh clean    remove this script's container, volume, image
#
# make does, with the names below:
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
# It is re-runnable: leftovers of an earlier run (same names) are removed
# first, and everything is removed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
out=testdata/podman
image=localhost/ckpt-counter:mkpodman
ctr=ckpt-mkpodman
vol=ckptvol
export PODMAN_IGNORE_CGROUPSV1_WARNING=1
# cgroupfs and the file events backend are this host's defaults; say so
# explicitly so the script does not depend on systemd or journald.
podman=(podman --cgroup-manager cgroupfs --events-backend file)

say() { echo "mkpodman: $*" >&2; }
die() { say "$*"; exit 1; }

cleanup() {
	"${podman[@]}" rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
	"${podman[@]}" volume rm -f "$vol" >/dev/null 2>&1 || true
	if [ "${keep_image:-0}" != 1 ]; then
		"${podman[@]}" rmi -f "$image" >/dev/null 2>&1 || true
	fi
}

# load_image loads $out/rootfs.tar.gz as $image through a docker-archive
# with a fixed config, so its ID never changes for the same rootfs.
load_image() {
	local tmp layer cfg arch
	tmp=$(mktemp -d)
	gzip -dc "$out/rootfs.tar.gz" >"$tmp/layer.tar"
	layer=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
	case "$(uname -m)" in
	x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;;
	esac
	printf '{"architecture":"%s","config":{"Cmd":["/bin/counter"],"Env":["PATH=/bin"],"WorkingDir":"/"},"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"scripts/mkpodman.sh"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$arch" "$layer" >"$tmp/config.json"
	cfg=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
	mkdir "$tmp/a" "$tmp/a/$layer"
	mv "$tmp/layer.tar" "$tmp/a/$layer/layer.tar"
	mv "$tmp/config.json" "$tmp/a/$cfg.json"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$image" "$layer" >"$tmp/a/manifest.json"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/a" -cf "$tmp/image.tar" .
	"${podman[@]}" load -q -i "$tmp/image.tar" >&2
	rm -rf "$tmp"
	local id
	id=$("${podman[@]}" image inspect --format '{{.Id}}' "$image")
	[ "$id" = "$cfg" ] || die "image ID $id, want $cfg"
	say "image $image loaded, ID $id"
}

# last_counter prints the value of the last "counter N" line on stdin.
last_counter() { sed -n 's/^.*counter \([0-9][0-9]*\)$/\1/p' | tail -1; }

[ "$(id -u)" = 0 ] || die "must run as root (podman checkpoint needs it)"
for t in podman runc criu gzip zstd; do
	command -v "$t" >/dev/null || die "$t not found (try: bash scripts/deps.sh --podman)"
done

case "${1:-make}" in
make) ;;
image)
	[ -f "$out/rootfs.tar.gz" ] || die "$out/rootfs.tar.gz missing"
	keep_image=1
	"${podman[@]}" rmi -f "$image" >/dev/null 2>&1 || true
	load_image
	exit 0
	;;
clean)
	cleanup
	exit 0
	;;
*) die "unknown command $1 (usage: mkpodman.sh [make|image|clean])" ;;
esac

cleanup
trap cleanup EXIT

make -s -C testdata/workloads bin/rootfs.tar
mkdir -p "$out"
gzip -n -9 -c testdata/workloads/bin/rootfs.tar >"$out/rootfs.tar.gz"
load_image

run_cmd=("${podman[@]}" run -d --name "$ctr" --runtime runc --network none -v "$vol:/data" "$image" /bin/counter -write-files -file /data/counter)
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
} >"$out/README.md"
say "wrote $out/README.md"
