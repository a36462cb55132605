#!/usr/bin/env bash
# peer-buildah.sh unpacks the release's buildah (1.28 on Debian 12), with
# whatever libraries of its own this machine lacks, into a private
# directory and prints that directory. Nothing is installed: the package
# would pull uidmap and upgrade login and passwd. Tests build
# Kubernetes-style checkpoint images with it (buildah from scratch, add,
# config --annotation, commit), as the Kubernetes documentation does.
#
# The directory holds `buildah` (a wrapper that sets the library path)
# and `policy.json` (accept anything: the tests commit local images only;
# pass it with --signature-policy). Each test gives buildah its own
# --root and --runroot. It is made once per buildah version, atomically.
#
#	peer-buildah.sh            print the directory, making it if needed
set -euo pipefail

cache=${CKPT_CACHE:-/var/cache/ckpt}/peers
die() { echo "peer-buildah.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian or Ubuntu)"

candidate() { apt-cache policy buildah 2>/dev/null | awk '$1 == "Candidate:" {print $2}'; }
ver=$(candidate)
if { [ -z "$ver" ] || [ "$ver" = "(none)" ]; } && [ "$(id -u)" = 0 ]; then
	# A machine whose apt lists were never fetched (or were cleaned).
	apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || true
	ver=$(candidate)
fi
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no buildah package (apt-get update as root, then retry)"
dir=$cache/buildah-${ver//[^A-Za-z0-9.+~-]/_}
if [ -x "$dir/buildah" ]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.buildah.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# What apt would newly install for buildah: the binary and the libraries
# it loads; upgrades of installed packages are skipped (the installed
# version serves), and so are uidmap, network plugins and configuration.
mapfile -t pkgs < <(apt-get install -s --no-install-recommends buildah 2>&1 |
	awk '$1 == "Inst" && $3 !~ /^\[/ && $2 ~ /^(buildah|lib.*)$/ {print $2}')
[ ${#pkgs[@]} -gt 0 ] || die "apt plans nothing to install for buildah (is it installed? then use it)"
# apt's download sandbox user cannot write into a root-only directory.
chmod 0755 "$tmp"
(cd "$tmp" && apt-get download -o Acquire::Retries=3 "${pkgs[@]}" >/dev/null 2>"$tmp/download.log") ||
	die "apt-get download ${pkgs[*]} failed: $(tail -3 "$tmp/download.log")"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
rm -f "$tmp"/*.deb "$tmp/download.log"

libdirs=$(find "$tmp/root" -name 'lib*.so*' -printf '%h\n' | sort -u | sed "s|^$tmp|\$d|" | paste -sd:)
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$tmp/policy.json"
cat >"$tmp/buildah" <<EOF
#!/bin/sh
# buildah $ver from the release, unpacked by scripts/peer-buildah.sh.
d=$dir
LD_LIBRARY_PATH=$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec "\$d/root/usr/bin/buildah" "\$@"
EOF
chmod 0755 "$tmp/buildah"
LD_LIBRARY_PATH=${libdirs//\$d/$tmp} "$tmp/root/usr/bin/buildah" --version >/dev/null ||
	die "the unpacked buildah does not run (a library it needs is missing)"
sync -f "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
