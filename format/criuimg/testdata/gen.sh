#!/bin/sh
# gen.sh OUTDIR: build tiny.c statically, run it in a new session, dump it
# with CRIU into OUTDIR (without dump.log), write CRIU's version into
# OUTDIR.crit/criu-version and, if CRIU's Python crit is installed, crit's
# JSON for every image with a magic into OUTDIR.crit/<image>.json. Needs
# root, gcc and criu. Used by hand (with crit) to make testdata/tiny (CRIU
# 4.1.1) and testdata/tiny-4.2.1, and by TestLiveDump (which decodes with
# go-criu's crit instead).
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pid=
# On exit, kill what is left of the process group of tiny (all of it
# unless the dump failed) and keep the script's exit status.
trap 'st=$?; if [ -n "$pid" ]; then kill -9 "-$pid" 2>/dev/null || true; fi; rm -rf "$work"; exit $st' EXIT
gcc -static -Os -o "$work/tiny" "$here/tiny.c" -lpthread
mkfifo "$work/ready"
setsid "$work/tiny" "$work/ghost" </dev/null >"$work/ready" 2>/dev/null &
pid=$!
read -r line <"$work/ready"
rm -rf "$out" "$out.crit"
mkdir -p "$out" "$out.crit"
criu dump -t "$pid" -D "$out" -o dump.log -v4 || { tail -20 "$out/dump.log" >&2; exit 1; }
rm -f "$out/dump.log"
criu --version >"$out.crit/criu-version"
command -v crit >/dev/null 2>&1 || exit 0
for f in "$out"/*; do
	n=$(basename "$f")
	case $n in pages-*) continue ;; esac
	crit decode -i "$f" >"$out.crit/$n.json"
done
