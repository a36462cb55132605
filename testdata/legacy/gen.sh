#!/usr/bin/env bash
# gen.sh rebuilds the legacy-shaped corpus (crio.tar, containerd.tar) in this
# directory from the podman-made golden archive in ../podman, with the Go
# program in gen/. Deterministic: the same inputs give byte-identical output.
# Not run by CI; the outputs are committed. Needs go and zstd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
podman="$here/../podman"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
zstd -q -dc "$podman/counter.tar.zst" >"$tmp/podman.tar"
(cd "$here/gen" && go run . -podman "$tmp/podman.tar" -dump-log "$podman/dump.log" -out "$here")
for f in crio.tar containerd.tar; do
	echo "$f $(stat -c %s "$here/$f") $(sha256sum "$here/$f" | cut -d' ' -f1)"
done
