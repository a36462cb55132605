#!/usr/bin/env bash
# peer-podman.sh unpacks the release's podman, with conmon and whatever
# libraries of theirs this machine lacks, into a private directory and
# prints that directory. Nothing is installed: tests that need the peer's
# real output (a store podman wrote, a podman archive) run it from there,
# while `make deps --podman` would upgrade login and passwd on a machine
# behind on its release's updates.
#
# The directory holds `podman` (a wrapper that sets the library path and
# a containers.conf naming the private conmon), `conmon` (a wrapper that
# sets the library path too: podman starts conmon without its own
# environment, so on a machine lacking conmon's libglib it did not find
# the private one) and `policy.json` (accept
# anything: the tests import local tars only; pass it with
# --signature-policy). It is made once per podman version, atomically.
#
#	peer-podman.sh            print the directory, making it if needed
set -euo pipefail

cache=${CKPT_CACHE:-/var/cache/ckpt}/peers
die() { echo "peer-podman.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian or Ubuntu)"

candidate() { apt-cache policy podman 2>/dev/null | awk '$1 == "Candidate:" {print $2}'; }
ver=$(candidate)
if { [ -z "$ver" ] || [ "$ver" = "(none)" ]; } && [ "$(id -u)" = 0 ]; then
	# A machine whose apt lists were never fetched (or were cleaned).
	apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || true
	ver=$(candidate)
fi
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no podman package (apt-get update as root, then retry)"
# layout names the directory's layout: bumped when it changes, so that a
# directory made by an older script is made again beside it.
layout=2
dir=$cache/podman-${ver//[^A-Za-z0-9.+~-]/_}-l$layout
if [ -x "$dir/podman" ]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.podman.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# What apt would newly install for podman and conmon, the two binaries
# and the libraries they load; upgrades of installed packages are skipped
# (the installed version serves), and so are network plugins and
# configuration packages (the tests run no container with podman).
mapfile -t pkgs < <(apt-get install -s --no-install-recommends podman conmon 2>&1 |
	awk '$1 == "Inst" && $3 !~ /^\[/ && $2 ~ /^(podman|conmon|lib.*)$/ {print $2}')
[ ${#pkgs[@]} -gt 0 ] || die "apt plans nothing to install for podman (is it installed? then use it)"
# apt's download sandbox user cannot write into a root-only directory.
chmod 0755 "$tmp"
(cd "$tmp" && apt-get download -o Acquire::Retries=3 "${pkgs[@]}" >/dev/null 2>"$tmp/download.log") ||
	die "apt-get download ${pkgs[*]} failed: $(tail -3 "$tmp/download.log")"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
rm -f "$tmp"/*.deb "$tmp/download.log"

libdirs=$(find "$tmp/root" -name 'lib*.so*' -printf '%h\n' | sort -u | sed "s|^$tmp|\$d|" | paste -sd:)
cat >"$tmp/containers.conf" <<EOF
[engine]
conmon_path = ["$dir/conmon"]
EOF
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$tmp/policy.json"
cat >"$tmp/podman" <<EOF
#!/bin/sh
# podman $ver from the release, unpacked by scripts/peer-podman.sh.
d=$dir
LD_LIBRARY_PATH=$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} CONTAINERS_CONF=\$d/containers.conf exec "\$d/root/usr/bin/podman" "\$@"
EOF
cat >"$tmp/conmon" <<EOF
#!/bin/sh
# conmon of podman $ver, unpacked by scripts/peer-podman.sh; podman
# starts it without the library path of its own wrapper.
d=$dir
LD_LIBRARY_PATH=$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec "\$d/root/usr/bin/conmon" "\$@"
EOF
chmod 0755 "$tmp/podman" "$tmp/conmon"
for bin in podman conmon; do
	# An empty environment, as podman gives conmon.
	env -i LD_LIBRARY_PATH="${libdirs//\$d/$tmp}" "$tmp/root/usr/bin/$bin" --version >/dev/null ||
		die "the unpacked $bin does not run (a library it needs is missing)"
done
sync -f "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
