#!/usr/bin/env bash
# checkpoint-image.sh times `checkpoint --create-image` and a restore from
# that image, ckpt next to podman 5 (scripts/peer-podman5.sh), with the
# counter holding MiB of touched ballast (testdata/workloads), RUNS times
# each, alternating which engine goes first, and prints the medians and
# the load average. Private roots under /var/tmp/ckpt-bench-img, removed
# at the end.
#
#	bash bench/checkpoint-image.sh [MIB [RUNS]]     (default 1024 3)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
runs=${2:-3}
export GOFLAGS=-tags=exclude_graphdriver_btrfs,containers_image_openpgp
work=/var/tmp/ckpt-bench-img
rm -rf "$work"
mkdir -p "$work/bin"
go build -o "$work/bin/ckpt" ./cmd/ckpt
make -s -C testdata/workloads bin/rootfs.tar >/dev/null
pdir=$(scripts/peer-podman5.sh)
prun=$(mktemp -d /tmp/pbench.XXXXXX)
ck() { "$work/bin/ckpt" --root "$work/ckpt" "$@"; }
pm() {
	PODMAN_IGNORE_CGROUPSV1_WARNING=1 "$pdir/podman" --root "$work/podman" --runroot "$prun" \
		--tmpdir "$prun/tmp" --storage-driver overlay --cgroup-manager cgroupfs --events-backend file "$@"
}
cleanup() {
	ck rm -f $(ck ps -a -q 2>/dev/null) >/dev/null 2>&1 || true
	pm rm -af -t 0 >/dev/null 2>&1 || true
	pm system reset -f >/dev/null 2>&1 || true
	rm -rf "$work" "$prun"
}
trap cleanup EXIT

# One image in both stores under one ID, from a layer without a "./"
# entry (FORMAT.md §12: the roots' modes then agree).
python3 - "$work/noroot.tar" <<'EOF'
import sys, tarfile
src = tarfile.open("testdata/workloads/bin/rootfs.tar")
dst = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
for m in src.getmembers():
    if m.name not in (".", "./"):
        dst.addfile(m, src.extractfile(m) if m.isfile() else None)
dst.close()
EOF
pm import --signature-policy="$pdir/policy.json" "$work/noroot.tar" localhost/bench:1 >/dev/null
ck image pull "containers-storage:[$work/podman]localhost/bench:1" >/dev/null

secs() { # secs CMD...: the wall-clock seconds of CMD, its output dropped
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l | xargs printf '%.2f'
}
waitfor() { # waitfor LOGCMD...: until the log has the ballast line
	for _ in $(seq 600); do
		if "$@" 2>/dev/null | grep -q '^ballast '; then return 0; fi
		sleep 0.2
	done
	echo "the ballast was not touched in 120 s" >&2
	exit 1
}
one() { # one ENGINE N: prints "create restore" seconds
	local e=$1 n=$2 name=b$2 img=localhost/b$2-ckpt:1 c r
	local cmd=(/bin/counter -interval 1s -ballast-mb "$mib" -file "")
	sync
	if [ "$e" = ckpt ]; then
		ck run -d --name "$name" localhost/bench:1 "${cmd[@]}" >/dev/null
		waitfor ck logs "$name"
		sync
		c=$(secs ck checkpoint --create-image "$img" "$name")
		ck rm "$name" >/dev/null
		sync
		r=$(secs ck restore "$img")
		ck rm -f "$name" >/dev/null
		ck image rm "$img" >/dev/null
	else
		pm run -d --runtime runc --network none --name "$name" localhost/bench:1 "${cmd[@]}" >/dev/null
		waitfor pm logs "$name"
		sync
		c=$(secs pm container checkpoint --create-image "$img" "$name")
		pm rm "$name" >/dev/null
		sync
		r=$(secs pm container restore "$img")
		pm rm -f -t 0 "$name" >/dev/null
		pm rmi "$img" >/dev/null
	fi
	echo "$c $r"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A create restore
for i in $(seq "$runs"); do
	order=(ckpt podman)
	[ $((i % 2)) = 0 ] && order=(podman ckpt)
	for e in "${order[@]}"; do
		read -r c r < <(one "$e" "$i$e")
		create[$e]+="$c "
		restore[$e]+="$r "
		echo "run $i $e: create-image ${c}s, restore ${r}s, load $(cut -d' ' -f1-3 /proc/loadavg)"
	done
done
for e in ckpt podman; do
	echo "$e median: create-image $(tr ' ' '\n' <<<"${create[$e]}" | grep . | median)s, restore $(tr ' ' '\n' <<<"${restore[$e]}" | grep . | median)s"
done
