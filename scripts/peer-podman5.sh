#!/usr/bin/env bash
# peer-podman5.sh unpacks podman 5 from Debian 13 (trixie), with conmon,
# netavark and the libraries of theirs Debian 12 lacks or has too old
# (glibc among them), into a private directory and prints that directory.
# Nothing is installed and the system's apt state is not touched: trixie's
# package lists go to the private directory, and the binaries are
# re-linked (patchelf, from Debian 12's own package, also unpacked there)
# to the private glibc loader and libraries, so that podman's re-executions
# of itself and conmon's exit command run the same way. Podman then uses
# the system's runc and CRIU.
#
# The directory holds `podman` (a wrapper naming the private conmon,
# netavark and runc in a containers.conf) and `policy.json` (accept
# anything: tests import local tars only; pass it with --signature-policy),
# the same interface as scripts/peer-podman.sh. Rootful podman reads its
# signature policy from a path compiled in, /etc/containers/policy.json,
# where commands without --signature-policy (`container checkpoint
# --create-image`) need one: the private binary's copy of that string is
# rewritten to /var/cache/ckpt/policy.json (the same length), which holds
# the same accept-anything policy; /etc is not touched. Made once,
# atomically; a directory made before that rewrite gets it in place.
#
#	peer-podman5.sh            print the directory, making it if needed
set -euo pipefail

suite=trixie
mirror=${CKPT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${CKPT_CACHE:-/var/cache/ckpt}/peers
die() { echo "peer-podman5.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian or Ubuntu)"
[ "$(uname -m)" = x86_64 ] || die "made for x86_64 only (the loader path below)"

# Only what podman, conmon and netavark load that Debian 12's own
# libraries cannot give (too old a glibc, sonames 12 does not have).
want=(podman conmon netavark libc6 libgpgme11t64 libassuan9 libgpg-error0 libseccomp2
	libsubid5 libglib2.0-0t64 libsystemd0 libsqlite3-0)

policy='{"default":[{"type":"insecureAcceptAnything"}]}'

# The policy of the private podman's rewritten default path.
syspolicy=/var/cache/ckpt/policy.json

# private DIR writes DIR/podman, the wrapper, and rewrites the binary's
# default policy path, each through a temporary file and a rename (tests
# may be running the old ones).
private() {
	local d=$1 bin=$1/root/usr/bin/podman
	mkdir -p "$(dirname "$syspolicy")"
	echo "$policy" >"$syspolicy.tmp"
	mv "$syspolicy.tmp" "$syspolicy"
	if grep -q -a /etc/containers/policy.json "$bin"; then
		perl -0777 -pe 's#/etc/containers/policy\.json#'"$syspolicy"'#g' <"$bin" >"$bin.tmp"
		[ "$(stat -c %s "$bin.tmp")" = "$(stat -c %s "$bin")" ] || die "rewriting the policy path changed podman's size"
		chmod 0755 "$bin.tmp"
		mv "$bin.tmp" "$bin"
	fi
	printf '#!/bin/sh\n# %s from Debian %s, unpacked by scripts/peer-podman5.sh.\nCONTAINERS_CONF=%s/containers.conf exec %s "$@"\n' \
		"$(basename "$d")" "$suite" "$d" "$bin" >"$d/.podman.tmp"
	chmod 0755 "$d/.podman.tmp"
	mv "$d/.podman.tmp" "$d/podman"
}

# Made before: no need to ask the mirror again.
for d in "$cache"/podman-5.*; do
	if [ -x "$d/podman" ]; then
		if [ ! -f "$syspolicy" ] || grep -q -a /etc/containers/policy.json "$d/root/usr/bin/podman"; then
			private "$d"
		fi
		echo "$d"
		exit 0
	fi
done

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.podman5.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user cannot write into a root-only directory.
chmod 0755 "$tmp"
cat >"$tmp/trixie.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
mkdir -p "$tmp/lists/partial" "$tmp/apt-cache/archives/partial" "$tmp/debs"
apt=(-o Dir::Etc::SourceList="$tmp/trixie.sources" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/apt-cache" -o Debug::NoLocking=1
	-o Acquire::Retries=3)
apt-get "${apt[@]}" update >"$tmp/apt.log" 2>&1 || die "apt-get update of $suite failed: $(tail -3 "$tmp/apt.log")"
ver=$(apt-cache "${apt[@]}" policy podman | awk '$1 == "Candidate:" {print $2}')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$suite has no podman package"
dir=$cache/podman-${ver//[^A-Za-z0-9.+~-]/_}
if [ -x "$dir/podman" ]; then
	echo "$dir"
	exit 0
fi
(cd "$tmp/debs" && apt-get "${apt[@]}" download "${want[@]}" >"$tmp/apt.log" 2>&1) ||
	die "apt-get download from $suite failed: $(tail -3 "$tmp/apt.log")"
# patchelf from the machine's own release: it runs on the system's glibc.
pe=$(apt-cache policy patchelf 2>/dev/null | awk '$1 == "Candidate:" {print $2}')
if { [ -z "$pe" ] || [ "$pe" = "(none)" ]; } && [ "$(id -u)" = 0 ]; then
	# A machine whose apt lists were never fetched (or were cleaned).
	apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || true
fi
(cd "$tmp/debs" && apt-get -o Acquire::Retries=3 download patchelf >"$tmp/apt.log" 2>&1) ||
	die "apt-get download patchelf failed: $(tail -3 "$tmp/apt.log")"
mkdir -p "$tmp/tools"
for deb in "$tmp"/debs/*.deb; do
	case $deb in
	*/patchelf_*) dpkg-deb -x "$deb" "$tmp/tools" ;;
	*) dpkg-deb -x "$deb" "$tmp/root" ;;
	esac
done

# The binaries name the final directory: the loader and libraries are
# looked up there at run time (DT_RPATH, which unlike RUNPATH also serves
# the libraries' own dependencies).
bins=(usr/bin/podman usr/bin/conmon usr/lib/podman/netavark)
for b in "${bins[@]}"; do
	"$tmp/tools/usr/bin/patchelf" --set-interpreter "$dir/root/usr/lib64/ld-linux-x86-64.so.2" \
		--force-rpath --set-rpath "$dir/root/usr/lib/x86_64-linux-gnu" "$tmp/root/$b"
done
cat >"$tmp/containers.conf" <<EOF
[engine]
conmon_path = ["$dir/root/usr/bin/conmon"]
helper_binaries_dir = ["$dir/root/usr/lib/podman"]
runtime = "runc"

[network]
network_backend = "netavark"
EOF
echo "$policy" >"$tmp/policy.json"
rm -rf "$tmp/debs" "$tmp/apt-cache" "$tmp/lists" "$tmp/apt.log"
sync -f "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
private "$dir"
# Checked in place: the binaries only run from the final directory.
for b in "${bins[@]}"; do
	if missing=$(ldd "$dir/root/$b" 2>&1 | grep -E 'not found|version .* not found'); then
		rm -rf "$dir"
		die "$b needs what this machine lacks: $missing"
	fi
done
"$dir/podman" --version >/dev/null || { rm -rf "$dir"; die "the unpacked podman does not run"; }
echo "$dir"
