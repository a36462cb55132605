#!/usr/bin/env bash
# busybox-rootfs.sh builds a root filesystem tar holding Debian's static
# busybox with a symlink for every applet (sh, nc, sleep, cat, ...) and
# prints its path. Nothing is installed: the package is downloaded with
# `apt-get download`, unpacked with `dpkg-deb -x` into a temporary
# directory, and the tar is cached (once per busybox version, atomically)
# under /var/cache/ckpt/busybox. Tests of real workloads import it as an
# image (engine/shapes_test.go).
#
#	busybox-rootfs.sh            print the tar's path, making it if needed
set -euo pipefail

cache=${CKPT_CACHE:-/var/cache/ckpt}/busybox
die() { echo "busybox-rootfs.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian or Ubuntu)"

candidate() { apt-cache policy busybox-static 2>/dev/null | awk '$1 == "Candidate:" {print $2}'; }
ver=$(candidate)
if { [ -z "$ver" ] || [ "$ver" = "(none)" ]; } && [ "$(id -u)" = 0 ]; then
	# A machine whose apt lists were never fetched (or were cleaned).
	apt-get update -o Acquire::Retries=3 >/dev/null 2>&1 || true
	ver=$(candidate)
fi
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no busybox-static package (apt-get update as root, then retry)"
out=$cache/busybox-${ver//[^A-Za-z0-9.+~-]/_}.tar
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.busybox.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt's download sandbox user cannot write into a root-only directory.
chmod 0755 "$tmp"
(cd "$tmp" && apt-get download -o Acquire::Retries=3 "busybox-static=$ver" >/dev/null 2>"$tmp/download.log") ||
	die "apt-get download busybox-static=$ver failed: $(tail -3 "$tmp/download.log")"
dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/pkg"
bb=$tmp/pkg/bin/busybox
[ -x "$bb" ] || die "busybox-static $ver has no bin/busybox"

root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$bb" "$root/bin/busybox"
# Every applet busybox lists, at the path it lists it under (as
# `busybox --install -s` would make them), pointing at /bin/busybox.
"$bb" --list-full | while read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	ln -sf /bin/busybox "$root/$applet"
done
[ -L "$root/bin/sh" ] && [ -L "$root/usr/bin/nc" ] || die "busybox $ver lacks sh or nc"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tmp/rootfs.tar" .
sync -f "$tmp"
mv "$tmp/rootfs.tar" "$out"
echo "$out"
