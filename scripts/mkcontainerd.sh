#!/usr/bin/env bash
# mkcontainerd.sh remakes testdata/containerd/ctr-counter.tar.zst: a real
# containerd 1.7 checkpoint image (`ctr containers checkpoint --task
# --image --rw`) of the counter workload, as an OCI layout (index.json
# naming the checkpoint image's index, its blobs and the base image's
# manifest; not the base image's layers). It runs
# TestIntegrationContainerdCheckpointImage, which drives the peer
# containerd 1.7 (scripts/peer-containerd.sh 1.7), with CKPT_CONTAINERD_OUT
# set, and packs what it wrote as a normalized tar compressed with zstd
# -19. Needs root, runc, CRIU, zstd and what peer-containerd.sh needs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/testdata/containerd
tmp=$(mktemp -d /var/tmp/mkcontainerd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/layout" "$out"
cd "$here"
export GOFLAGS=-tags=exclude_graphdriver_btrfs,containers_image_openpgp
CKPT_CONTAINERD_OUT=$tmp/layout go test -count=1 ./engine/ -run 'TestIntegrationContainerdCheckpointImage$'
[ -f "$tmp/layout/index.json" ] || { echo "mkcontainerd.sh: the test wrote no layout" >&2; exit 1; }
tar -C "$tmp/layout" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$tmp/layout.tar" .
zstd -q -19 -f "$tmp/layout.tar" -o "$out/ctr-counter.tar.zst"
echo "ctr-counter.tar.zst: $(stat -c %s "$tmp/layout.tar") bytes sha256 $(sha256sum "$tmp/layout.tar" | cut -d' ' -f1), index $(grep -o 'sha256:[0-9a-f]*' "$tmp/layout/index.json")"
