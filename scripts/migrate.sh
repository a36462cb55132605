#!/usr/bin/env bash
# migrate.sh shows a migration on one machine: two engine roots stand for
# two hosts. The counter workload runs on "host A" with a named volume and
# changes to its container layer; `ckpt checkpoint --export` writes an
# archive, `ckpt restore --import` on "host B" brings the container back
# there, and the counter, the files and the volume come across.
#
# Run it as root after `make deps build workloads`:
#
#	bash scripts/migrate.sh
#
# It works in throwaway roots (nothing is left behind) and exits non-zero if
# the counter did not resume on host B.
set -euo pipefail
cd "$(dirname "$0")/.."

CKPT_BIN=${CKPT_BIN:-bin/ckpt}
ROOTFS=testdata/workloads/bin/rootfs.tar

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "migrate: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (CRIU needs it)"
[ -x "$CKPT_BIN" ] || die "$CKPT_BIN missing: run make build"
[ -f "$ROOTFS" ] || die "$ROOTFS missing: run make workloads"

DIR=$(mktemp -d /tmp/ckpt-migrate.XXXXXX)
a() { "$CKPT_BIN" --root "$DIR/a" --runroot "$DIR/run-a" "$@"; }
b() { "$CKPT_BIN" --root "$DIR/b" --runroot "$DIR/run-b" "$@"; }
cleanup() {
	local rc=$?
	set +e
	a rm -f ctr >/dev/null 2>&1
	b rm -f ctr >/dev/null 2>&1
	a image rm workload >/dev/null 2>&1
	b image rm workload >/dev/null 2>&1
	grep -o " $DIR/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$DIR"
	exit "$rc"
}
trap cleanup EXIT

last() { "$@" logs ctr | sed -n 's/^counter \([0-9]*\)$/\1/p' | tail -1; }

say "both hosts have the base image (ckpt never pulls)"
a image import "$ROOTFS" workload >/dev/null
b image import "$ROOTFS" workload >/dev/null

say "host A: run the counter with a volume; it adds, modifies and deletes files"
a run -d --name ctr -v data:/data workload /bin/counter -write-files -interval 200ms -file /data/counter >/dev/null
sleep 2
a logs ctr | tail -2

say "host A: checkpoint --export"
a checkpoint --export "$DIR/ctr.tar.zst" ctr >/dev/null
before=$(last a)
ls -l "$DIR/ctr.tar.zst"
echo "exported at counter $before; host A's container is now checkpointed"

say "host B: restore --import"
b restore --import "$DIR/ctr.tar.zst" >/dev/null
sleep 1.5
b ps
rootfs=$(b ps --json | sed -n 's/.*"rootfs": "\(.*\)".*/\1/p' | head -1)
echo "/added.txt:        $(cat "$rootfs/added.txt")"
echo "/etc/modified.txt: $(cat "$rootfs/etc/modified.txt")"
[ -e "$rootfs/etc/deleted.txt" ] && die "/etc/deleted.txt came back"
echo "/etc/deleted.txt:  (deleted)"
echo "volume data:       $(cat "$DIR/b/volumes/data/_data/counter")"

first=$(b logs ctr | sed -n 's/^counter \([0-9]*\)$/\1/p' | grep -A1 -x "$before" | sed -n 2p)
say "result"
echo "counter on host A when exported: $before"
echo "first value on host B:           ${first:-none}"
echo "counter on host B now:           $(last b)"
[ "${first:-}" = "$((before + 1))" ] || die "the counter did not resume on host B"
echo "the container moved: memory, files and volume came across."
