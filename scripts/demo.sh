#!/usr/bin/env bash
# demo.sh shows ckpt's main job on this machine: run the counter workload in
# a container, checkpoint it with CRIU, restore it, and show that the counter
# goes on from where it stopped instead of starting again from zero.
#
# `make demo` runs it after `make deps build workloads`. It works in a
# throwaway engine root (nothing is left behind) and exits non-zero if the
# counter did not resume.
set -euo pipefail
cd "$(dirname "$0")/.."

CKPT_BIN=${CKPT_BIN:-bin/ckpt}
ROOTFS=testdata/workloads/bin/rootfs.tar

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (CRIU needs it): sudo make demo"
[ -x "$CKPT_BIN" ] || die "$CKPT_BIN missing: run make build"
[ -f "$ROOTFS" ] || die "$ROOTFS missing: run make workloads"

DEMO=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
ckpt() { "$CKPT_BIN" --root "$DEMO/root" --runroot "$DEMO/run" "$@"; }
cleanup() {
	local rc=$?
	set +e
	ckpt rm -f demo >/dev/null 2>&1 || true
	ckpt image rm workload >/dev/null 2>&1 || true
	# containers/storage may keep its own mounts under the graph root.
	grep -o " $DEMO/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$DEMO"
	exit "$rc"
}
trap cleanup EXIT

# last_counter prints the last "counter N" value of the container's log.
last_counter() { ckpt logs demo | sed -n 's/^counter \([0-9]*\)$/\1/p' | tail -1; }

say "host check"
ckpt check

say "import the workload image ($ROOTFS)"
ckpt image import "$ROOTFS" workload
ckpt image ls

say "run the counter (it prints and increments an in-memory counter every 200ms)"
ckpt run -d --name demo workload /bin/counter -interval 200ms
sleep 2
ckpt ps
ckpt logs demo | tail -3

say "checkpoint it (CRIU dumps the processes; the container stops)"
t0=$(date +%s%N)
ckpt checkpoint demo
t1=$(date +%s%N)
before=$(last_counter)
ckpt ps -a
echo "checkpoint took $(( (t1 - t0) / 1000000 )) ms; counter when checkpointed: $before"

say "wait 2s: nothing runs, the counter does not move"
sleep 2
[ "$(last_counter)" = "$before" ] || die "the counter moved while checkpointed"
echo "still $before"

say "restore it (CRIU recreates the processes with their memory)"
t0=$(date +%s%N)
ckpt restore demo
t1=$(date +%s%N)
echo "restore took $(( (t1 - t0) / 1000000 )) ms"
sleep 1.5
ckpt ps
echo "log around the restore:"
ckpt logs demo | grep -A3 -x "counter $before"

first=$(ckpt logs demo | sed -n 's/^counter \([0-9]*\)$/\1/p' | grep -A1 -x "$before" | sed -n 2p)
after=$(last_counter)
say "result"
echo "counter before checkpoint: $before"
echo "first value after restore: ${first:-none}"
echo "counter now:               $after"
if [ "${first:-}" != "$((before + 1))" ]; then
	die "the counter did not resume (expected $((before + 1)) after $before, got ${first:-nothing})"
fi
echo "the counter resumed where it stopped: its memory was restored."
