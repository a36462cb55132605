#!/usr/bin/env bash
# mkkubelet.sh remakes testdata/kubelet: a real containerd CRI checkpoint
# archive and a CRI-O-layout one built from real CRIU images, both of the
# counter workload in pod shop/web, container counter. It runs the two
# engine tests that make them (TestImportContainerdCRI drives the peer
# containerd 2.x's CheckpointContainer, TestImportCRIOLayout builds the
# CRI-O layout from a ckpt checkpoint with cri.BuildCRIO) with
# CKPT_KUBELET_OUT set, and compresses what they wrote with zstd -19:
# `zstd -d` gives back the exact bytes containerd wrote. Needs root, runc,
# CRIU, zstd and what scripts/peer-containerd.sh needs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/testdata/kubelet
tmp=$(mktemp -d /var/tmp/mkkubelet.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/containerd" "$tmp/crio"
cd "$here"
export GOFLAGS=-tags=exclude_graphdriver_btrfs,containers_image_openpgp
CKPT_KUBELET_OUT=$tmp/containerd go test -count=1 ./engine/ -run 'TestImportContainerdCRI$'
CKPT_KUBELET_OUT=$tmp/crio go test -count=1 ./engine/ -run 'TestImportCRIOLayout$'
for engine in containerd crio; do
	f=$(echo "$tmp/$engine"/checkpoint-*.tar)
	[ -f "$f" ] || { echo "mkkubelet.sh: the $engine test wrote no archive" >&2; exit 1; }
	zstd -q -19 -f "$f" -o "$out/$engine-counter.tar.zst"
	echo "$engine-counter.tar.zst: $(basename "$f") $(stat -c %s "$f") bytes sha256 $(sha256sum "$f" | cut -d' ' -f1)"
done
