#!/usr/bin/env bash
# peer-containerd.sh unpacks containerd 2.x, with its CRI plugin, from the
# next Debian suite that has one (on Debian 12: forky), or containerd 1.7
# (Debian 13 trixie's, for `ctr c checkpoint --image`), into a private
# directory and prints that directory. Nothing is installed and apt's own
# state is not touched: only that suite's Packages index is read, into a
# private apt directory, and the one .deb is downloaded and unpacked with
# dpkg-deb -x. The binaries are Go programs that need libc6 >= 2.34 and
# runc, which Debian 12 has.
#
# The directory holds usr/bin/{containerd,containerd-shim-runc-v2,ctr}.
# Tests start containerd from there with their own --config, root, state
# and socket (engine/kubelet_test.go, scripts/mkkubelet.sh,
# engine/containerd_test.go). It is made once per containerd version,
# atomically.
#
#	peer-containerd.sh            containerd 2.x: print the directory, making it if needed
#	peer-containerd.sh 1.7        the same for containerd 1.7
set -euo pipefail

cache=${CKPT_CACHE:-/var/cache/ckpt}/peers
die() { echo "peer-containerd.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian or Ubuntu)"
[ "$(id -u)" = 0 ] || die "must run as root (apt's private index and download)"

series=${1:-2}
case "$series" in
2 | 1.7) ;;
*) die "unknown containerd series $series: 2 (the default) or 1.7" ;;
esac

# A cached unpack of any version of the series serves.
for d in "$cache"/containerd-"$series".*; do
	if [ -x "$d/usr/bin/containerd" ]; then
		echo "$d"
		exit 0
	fi
done

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case "$series/$codename" in
2/bookworm | 2/trixie) suite=forky ;;
1.7/bookworm | 1.7/trixie) suite=trixie ;;
*) die "no known Debian suite with containerd $series.x for $codename; unpack containerd $series.x by hand into $cache/containerd-VERSION" ;;
esac

# The main Debian mirror and keyring of the machine's own sources.
uri="" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
	uri=$(awk '$1=="deb" && $2 !~ /security/ && $2 ~ /debian/ {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt/sources.list{,.d}"

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.containerd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user cannot write into a root-only directory.
chmod 0755 "$tmp"
mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache" "$tmp/dl"
id _apt >/dev/null 2>&1 && chown -R _apt "$tmp/apt/lists" "$tmp/dl"
echo "deb [signed-by=$keyring] $uri $suite main" >"$tmp/apt/sources.list"
apt=(apt-get -o Dir::Etc::SourceList="$tmp/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
	-o Dir::State::Lists="$tmp/apt/lists" -o Dir::Cache="$tmp/apt/cache" -o Acquire::Retries=3)
"${apt[@]}" update >"$tmp/update.log" 2>&1 || die "reading $suite's package index failed: $(tail -3 "$tmp/update.log")"
(cd "$tmp/dl" && "${apt[@]}" download "containerd/$suite" >"$tmp/download.log" 2>&1) ||
	die "apt-get download containerd/$suite failed: $(tail -3 "$tmp/download.log")"
deb=$(echo "$tmp"/dl/containerd_*.deb)
[ -f "$deb" ] || die "apt-get download left no containerd .deb"
ver=$(dpkg-deb -f "$deb" Version)
case "$ver" in "$series".*) ;; *) die "$suite's containerd is $ver, not $series.x" ;; esac
dpkg-deb -x "$deb" "$tmp/root"
dir=$cache/containerd-${ver//[^A-Za-z0-9.+~-]/_}
"$tmp/root/usr/bin/containerd" --version >/dev/null ||
	die "the unpacked containerd $ver does not run here (its libc6 needs: $(dpkg-deb -f "$deb" Depends))"
mkdir -p "$tmp/out"
mv "$tmp/root/usr" "$tmp/out/usr"
sync -f "$tmp/out"
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "$dir"
