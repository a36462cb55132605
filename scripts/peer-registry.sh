#!/usr/bin/env bash
# peer-registry.sh unpacks the release's docker-registry (the CNCF
# distribution registry, 2.8 on Debian 12: a real OCI registry) into a
# private directory and prints the path of its binary. Nothing is
# installed: the package's own install would add a system user and start a
# registry on port 5000 for good, where the tests start one of their own
# on a free localhost port, with a configuration in a temporary directory,
# and stop it. It is made once per version, atomically.
#
#	peer-registry.sh          print the binary's path, making it if needed
set -euo pipefail

cache=${CKPT_CACHE:-/var/cache/ckpt}/peers
die() { echo "peer-registry.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian or Ubuntu)"

candidate() { apt-cache policy docker-registry 2>/dev/null | awk '$1 == "Candidate:" {print $2}'; }
ver=$(candidate)
if { [ -z "$ver" ] || [ "$ver" = "(none)" ]; } && [ "$(id -u)" = 0 ]; then
	apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || true
	ver=$(candidate)
fi
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no docker-registry package (apt-get update as root, then retry)"
dir=$cache/docker-registry-${ver//[^A-Za-z0-9.+~-]/_}
bin=$dir/root/usr/bin/docker-registry
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.docker-registry.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user cannot write into a root-only directory.
chmod 0755 "$tmp"
(cd "$tmp" && apt-get download -o Acquire::Retries=3 docker-registry >/dev/null 2>"$tmp/download.log") ||
	die "apt-get download docker-registry failed: $(tail -3 "$tmp/download.log")"
dpkg-deb -x "$tmp"/docker-registry_*.deb "$tmp/root"
rm -f "$tmp"/*.deb "$tmp/download.log"
"$tmp/root/usr/bin/docker-registry" --version >/dev/null || die "the unpacked docker-registry does not run"
sync -f "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$bin"
