#!/usr/bin/env bash
# show.sh times `ckptinspect show` next to checkpointctl's `show` on podman
# archives of a container holding N MiB of touched memory (the counter
# workload's -ballast-mb), one uncompressed and one zstd (podman's
# default), made by the private podman of scripts/peer-podman.sh with a
# private --root/--runroot. Results go to stdout as Markdown
# (bench/RESULTS.md keeps them).
#
#	bash bench/show.sh [-m MiB] [-r RUNS] [-d DIR] [-k]
#
#	-m MiB   ballast (default 1024)
#	-r RUNS  warm-cache runs per command (default 10; cold-file runs: 3)
#	-d DIR   work directory (default /var/tmp/ckpt-showbench); archives
#	         already there (podman-none.tar, podman-zstd.tar.zst) are reused
#	-k       keep DIR (the archives) afterwards; it is removed otherwise
#
# Needs root, runc, CRIU 4.2 (bash scripts/deps.sh), hyperfine and
# checkpointctl v1.6.0 on PATH or in $PEERS/bin (default
# /var/cache/ckpt/peers/bin; GOBIN=$PEERS/bin GOFLAGS= go install
# github.com/checkpoint-restore/checkpointctl@v1.6.0).
set -euo pipefail
# podman 4.3 asks for RLIMIT_NOFILE and RLIMIT_NPROC over the hard limits
# here (no CAP_SYS_RESOURCE): the container gets 1024 of each (--ulimit).
cd "$(dirname "$0")/.."

mib=1024 runs=10 cold=3 work=/var/tmp/ckpt-showbench keep=0
while getopts m:r:d:k o; do
	case $o in
	m) mib=$OPTARG ;; r) runs=$OPTARG ;; d) work=$OPTARG ;; k) keep=1 ;;
	*) exit 2 ;;
	esac
done
peers=${PEERS:-/var/cache/ckpt/peers}
PATH=$PATH:$peers/bin:$peers/hyperfine/usr/bin
say() { echo "show.sh: $*" >&2; }
die() { say "$*"; exit 1; }
for t in hyperfine checkpointctl runc criu; do
	command -v $t >/dev/null || die "$t not found (see the comment at the top of bench/show.sh)"
done
[ "$(id -u)" = 0 ] || die "must run as root (podman checkpoint needs it)"

mkdir -p "$work"
none=$work/podman-none.tar zstd=$work/podman-zstd.tar.zst
export GOFLAGS=${GOFLAGS:--tags=exclude_graphdriver_btrfs,containers_image_openpgp}
go build -o "$work/ckptinspect" ./cmd/ckptinspect

ctr=ckpt-showbench
run=""
cleanup() {
	if [ -n "$run" ]; then
		"${podman[@]}" rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
		"${podman[@]}" rmi -a -f >/dev/null 2>&1 || true
		umount -R "$work/root/overlay" 2>/dev/null || true
		rm -rf "$work/root" "$run"
	fi
	[ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

if [ ! -f "$none" ] || [ ! -f "$zstd" ]; then
	pod=$(bash scripts/peer-podman.sh)
	# podman 4.3 refuses a runroot path of over 50 characters.
	run=$(mktemp -d /var/tmp/prun.XXXXXX)
	# --tmpdir too: podman's default, /run/libpod, is shared with any other podman.
	podman=("$pod/podman" --root "$work/root" --runroot "$run" --tmpdir "$run/tmp" --storage-driver overlay
		--runtime runc --cgroup-manager cgroupfs --events-backend file)
	export PODMAN_IGNORE_CGROUPSV1_WARNING=1
	make -s -C testdata/workloads bin/rootfs.tar
	"${podman[@]}" import --signature-policy "$pod/policy.json" testdata/workloads/bin/rootfs.tar showbench >/dev/null
	"${podman[@]}" run -d --name "$ctr" --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 showbench /bin/counter -ballast-mb "$mib" >/dev/null
	for _ in $(seq 300); do
		"${podman[@]}" logs "$ctr" 2>/dev/null | grep -q '^ballast' && break
		sleep 0.2
	done
	"${podman[@]}" logs "$ctr" | grep -q '^ballast' || die "the counter did not report its ballast"
	"${podman[@]}" container checkpoint -R --compress none -e "$none.tmp" "$ctr" >/dev/null
	"${podman[@]}" container checkpoint -e "$zstd.tmp" "$ctr" >/dev/null
	mv "$none.tmp" "$none"
	mv "$zstd.tmp" "$zstd"
fi

# The figures each tool prints, then the timings: warm cache (hyperfine's
# warm-up runs read each file first), then cold-ish: before each run the
# page cache of that one file is dropped (dd iflag=nocache, i.e.
# posix_fadvise DONTNEED; nothing else of the machine's cache is touched).
# table prints hyperfine's JSON results as a Markdown table (seconds).
table() {
	python3 - "$1" <<'PY'
import json, sys
print("| command | median (s) | min–max (s) | mean ± σ (s) | user (s) | system (s) |")
print("|---|---|---|---|---|---|")
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"| `{r['command']}` | {r['median']:.3f} | {r['min']:.3f}–{r['max']:.3f} | "
          f"{r['mean']:.3f} ± {r['stddev'] or 0:.3f} | {r['user']:.3f} | {r['system']:.3f} |")
PY
}

echo "### Output"
for f in "$none" "$zstd"; do
	b=${f##*/}
	printf '\n```\n$ ckptinspect show %s\n%s\n$ checkpointctl show %s\n%s\n```\n' \
		"$b" "$(cd "$work" && ./ckptinspect show "$b" 2>&1)" "$b" "$(cd "$work" && checkpointctl show "$b" 2>&1)"
done
sync "$none" "$zstd"
for mode in warm cold; do
	echo
	if [ $mode = warm ]; then
		echo "### Warm cache ($runs runs each, hyperfine -N -w 2)"
		opts=(-w 2 -r "$runs")
	else
		echo "### Cold file ($cold runs each, the file's pages dropped before each run)"
		opts=(-r "$cold")
	fi
	for f in "$none" "$zstd"; do
		fopts=("${opts[@]}")
		[ $mode = warm ] || fopts+=(--prepare "dd if=$f iflag=nocache count=0 status=none")
		echo
		echo "${f##*/}: $(stat -c %s "$f") bytes"
		echo
		hyperfine -N "${fopts[@]}" --style none --export-json "$work/h.json" \
			-n "ckptinspect show" "$work/ckptinspect show $f" \
			-n "ckptinspect show --full" "$work/ckptinspect show --full $f" \
			-n "checkpointctl show" "checkpointctl show $f" >/dev/null
		table "$work/h.json"
	done
done
