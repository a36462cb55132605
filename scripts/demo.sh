#!/usr/bin/env bash
# demo.sh shows ckpt's main job on this machine in about a minute: a
# counter runs in a container on "host A"; `ckpt checkpoint --export` writes
# it into an archive; `ckptinspect` shows and verifies the archive offline;
# `ckpt restore --import` brings it back on "host B" (a second engine root)
# and the counter goes on from where it stopped instead of starting again
# from zero. Then, shorter, an in-place checkpoint and restore on host B.
# (scripts/migrate.sh shows the same move with files and a volume.)
#
# `make demo` runs it after `make deps build workloads`. It works in
# throwaway engine roots (nothing is left behind) and exits non-zero if the
# counter did not resume.
set -euo pipefail
cd "$(dirname "$0")/.."

CKPT_BIN=${CKPT_BIN:-bin/ckpt}
INSPECT_BIN=${INSPECT_BIN:-bin/ckptinspect}
ROOTFS=testdata/workloads/bin/rootfs.tar

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (CRIU needs it): sudo make demo"
[ -x "$CKPT_BIN" ] && [ -x "$INSPECT_BIN" ] || die "$CKPT_BIN or $INSPECT_BIN missing: run make build"
[ -f "$ROOTFS" ] || die "$ROOTFS missing: run make workloads"

DEMO=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
ARCHIVE=$DEMO/counter.tar.zst
a() { "$CKPT_BIN" --root "$DEMO/a" --runroot "$DEMO/run-a" "$@"; }
b() { "$CKPT_BIN" --root "$DEMO/b" --runroot "$DEMO/run-b" "$@"; }
cleanup() {
	local rc=$?
	set +e
	for h in a b; do
		$h rm -f counter >/dev/null 2>&1
		$h image rm workload >/dev/null 2>&1
	done
	# containers/storage may keep its own mounts under the graph roots.
	grep -o " $DEMO/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$DEMO"
	exit "$rc"
}
trap cleanup EXIT

# counters HOST: the "counter N" values of the container's log.
counters() { "$1" logs counter | sed -n 's/^counter \([0-9]*\)$/\1/p'; }
last() { counters "$1" | tail -1; }
# next_after HOST N: the value the log shows right after N.
next_after() { counters "$1" | grep -A1 -x "$2" | sed -n 2p; }
ms() { echo $((($2 - $1) / 1000000)); }

say "host check"
a check

say "host A: import the workload image, run the counter (it prints an in-memory counter every 200 ms)"
a image import "$ROOTFS" workload >/dev/null
b image import "$ROOTFS" workload >/dev/null # both hosts have the base image: ckpt never pulls
a run -d --name counter workload /bin/counter -interval 200ms >/dev/null
sleep 2
a ps
a logs counter | tail -2

say "host A: checkpoint --export (CRIU dumps the processes into a verified archive; the container stops)"
t0=$(date +%s%N)
a checkpoint --export "$ARCHIVE" counter
t1=$(date +%s%N)
before=$(last a)
echo "exported in $(ms "$t0" "$t1") ms at counter $before: $(du -h "$ARCHIVE" | cut -f1) $ARCHIVE"

say "the archive, offline: ckptinspect show"
"$INSPECT_BIN" show "$ARCHIVE"

say "ckptinspect verify (every member's digest, the member list, the CRIU images)"
"$INSPECT_BIN" verify "$ARCHIVE"

say "host B: restore --import (CRIU recreates the processes with their memory)"
t0=$(date +%s%N)
b restore --import "$ARCHIVE" >/dev/null
t1=$(date +%s%N)
echo "imported and restored in $(ms "$t0" "$t1") ms"
sleep 1.5
b ps
echo "host B's log around the move:"
b logs counter | grep -A3 -x "counter $before"
first=$(next_after b "$before")
[ "${first:-}" = "$((before + 1))" ] ||
	die "the counter did not resume on host B (expected $((before + 1)) after $before, got ${first:-nothing})"
echo "the counter went on at $first on host B: its memory came across in the archive."

say "host B: checkpoint and restore in place"
b checkpoint counter >/dev/null
mid=$(last b)
sleep 1
[ "$(last b)" = "$mid" ] || die "the counter moved while checkpointed"
b restore counter >/dev/null
sleep 1
again=$(next_after b "$mid")
[ "${again:-}" = "$((mid + 1))" ] ||
	die "the counter did not resume after the in-place restore (expected $((mid + 1)) after $mid, got ${again:-nothing})"
echo "checkpointed at $mid, still $mid a second later, restored: next $again, now $(last b)"

say "result"
echo "host A exported at $before, host B went on at $first; in place: $mid, then $again."
