#!/usr/bin/env bash
# deps.sh installs what ckpt's engine needs on a Debian machine: CRIU, runc,
# iptables (CRIU's network lock) and, with --podman, podman (the reference
# peer of bench/ and scripts/mkpodman.sh).
#
#	deps.sh [--plan] [--podman] [--allow-upgrades]
#
# --plan prints what it would install, upgrade and build, and exits.
# Without it the same plan is printed before anything changes.
#
# Which CRIU: at least 4.0 (Debian 12's 3.17 does not run on recent kernels:
# "vdso: Unexpected rt vDSO area bounds"), and at least 4.2 on kernels 6.16
# and newer, where CRIU 4.1 cannot dump any TCP socket (criu#2705: the kernel
# refuses SO_PASSCRED/SO_PASSSEC on inet sockets since 6.16). When the
# release's own criu is too old, CRIU is built from the source package of
# the next Debian suite that has one new enough, against the installed
# release, and installed as a small local package (criu VERSION+ckpt1):
# newer suites' binary packages need a newer libc, i.e. a dist-upgrade.
# Only that suite's Sources index is read, into a private apt directory;
# /etc/apt is not changed. The packages needed only to build it are
# removed again, and the package is kept in /var/cache/ckpt for the next run.
#
# runc, iptables and podman come from the release. deps.sh never upgrades
# an installed package unless --allow-upgrades is given: if the release's
# packages need a newer version of one (the machine is behind on updates),
# the plan names it and deps.sh stops.
#
# It is idempotent: when everything is present and `criu check` passes it
# returns at once. On other distributions it prints what to install.
set -euo pipefail

plan_only=0 want_podman=0 allow_upgrades=0
for a in "$@"; do
	case "$a" in
	--plan) plan_only=1 ;;
	--podman) want_podman=1 ;;
	--allow-upgrades) allow_upgrades=1 ;;
	*) echo "deps.sh: unknown argument $a (usage: deps.sh [--plan] [--podman] [--allow-upgrades])" >&2; exit 2 ;;
	esac
done

# criu, runc's helpers and iptables live in sbin, which a user's PATH may lack.
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
say() { echo "deps: $*" >&2; }
die() { say "$*"; exit 1; }

# ver_ge A B: A >= B as dotted versions.
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# runc 1.1.5 (Debian 12's, with its security updates) passes every
# real-CRIU test of the engine with CRIU 4.2.1 on a cgroup v1 hybrid host.
min_runc=1.1.5
kernel=$(uname -r | sed 's/[^0-9.].*//')
min_criu=4.0
if ver_ge "$kernel" 6.16; then min_criu=4.2; fi

# The libraries the CRIU built here links (checked against dpkg-shlibdeps
# after the build), and what it needs only to build, of which deps.sh
# installs what is missing. Two -dev packages are only unpacked into the
# build, not installed: CRIU uses libcap-dev's header and libprotobuf-dev's
# descriptor.proto only, and installing them would pin libcap2 and zlib1g
# (through zlib1g-dev) to their exact versions, i.e. upgrade them on a
# machine behind on its release's updates. gcc, make and libc6-dev are
# prerequisites of ckpt itself (cgo), not installed here.
criu_runtime=(libbsd0 libnet1 libnftables1 libnl-3-200 libprotobuf-c1 libuuid1)
criu_build=(pkgconf dpkg-dev xz-utils protobuf-compiler protobuf-c-compiler libprotobuf-c-dev
	libnl-3-dev libnet1-dev libbsd-dev libnftables-dev uuid-dev)
criu_unpack=(libcap-dev libprotobuf-dev)
cache=/var/cache/ckpt

installed_version() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "ii" {print $2}'; }
upstream() { echo "${1:-0}" | sed 's/^[0-9]*://; s/[-+~].*//'; }
criu_version() {
	command -v criu >/dev/null 2>&1 || { echo 0; return; }
	criu --version 2>/dev/null | sed -n 's/^Version: *\([0-9.]*\).*/\1/p' | head -1
}
runc_version() {
	command -v runc >/dev/null 2>&1 || { echo 0; return; }
	runc --version 2>/dev/null | sed -n 's/^runc version \([0-9.]*\).*/\1/p'
}
have_lock() { command -v iptables-restore >/dev/null 2>&1 && command -v ip6tables-restore >/dev/null 2>&1; }

have_all() {
	ver_ge "$(criu_version)" "$min_criu" || return 1
	ver_ge "$(runc_version)" "$min_runc" || return 1
	have_lock || return 1
	if [ "$want_podman" = 1 ]; then command -v podman >/dev/null 2>&1 || return 1; fi
	criu check >/dev/null 2>&1 || return 1
}

if have_all; then
	if [ "$plan_only" = 1 ]; then
		echo "deps: plan: nothing to install"
	fi
	say "ok: CRIU $(criu_version) (need >= $min_criu on kernel $kernel), runc $(runc_version), iptables"
	exit 0
fi

if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
	cat >&2 <<MSG
deps: this is not a Debian system. Install by hand, then run \`make deps\` again:
  - CRIU $min_criu or newer, and check it with \`criu check\`
  - runc $min_runc or newer
  - iptables (iptables-restore, ip6tables-restore: CRIU's network lock)
  - optionally podman 5 (for bench/)
MSG
	exit 1
fi
for t in gcc make; do
	command -v "$t" >/dev/null 2>&1 || die "$t is missing: install gcc, make and libc6-dev first (ckpt's prerequisites, README.md)"
done
if [ "$(id -u)" != 0 ]; then
	die "must run as root to install CRIU >= $min_criu and runc (try: sudo make deps)"
fi

export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
arch=$(dpkg --print-architecture)
case "$codename" in
bookworm) later=(trixie forky) ;;
trixie) later=(forky) ;;
*) later=() ;;
esac
work=$(mktemp -d /var/tmp/ckpt-deps.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

quiet() { # quiet LOG CMD...: run CMD, show LOG's tail if it fails
	local log=$1; shift
	"$@" >"$log" 2>&1 || { tail -20 "$log" >&2; die "$* failed (log: $log)"; }
}
quiet "$work/update.log" apt-get update -o Acquire::Retries=3

# release_version P: the version of package P the release offers, or empty.
release_version() {
	apt-cache madison "$1" 2>/dev/null | awk -F'|' -v s="$codename" '$3 ~ (" " s "(-security|-updates)?/") {gsub(/ /, "", $2); print $2; exit}'
}

# The main Debian mirror and keyring of the machine's own sources.
mirror() {
	local uris="" keyring=""
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		uris=$(awk '
			/^URIs:/ {u=$2}
			/^$/ {if (u != "" && u !~ /security/) {print u; exit} u=""}
			END {if (u != "" && u !~ /security/) print u}' /etc/apt/sources.list.d/debian.sources | head -1)
		keyring=$(sed -n 's/^Signed-By: *//p' /etc/apt/sources.list.d/debian.sources | head -1)
	fi
	if [ -z "$uris" ] && [ -f /etc/apt/sources.list ]; then
		uris=$(awk '$1=="deb" && $2 !~ /security/ && $2 ~ /debian/ {print $2; exit}' /etc/apt/sources.list)
	fi
	[ -n "$uris" ] || die "cannot find the Debian mirror in /etc/apt/sources.list{,.d}"
	echo "$uris ${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}"
}

# src_apt S: apt options that read only suite S's Sources index, in a
# private directory under $work (the machine's apt state is not touched).
src_apt() {
	local d=$work/apt-$1
	if [ ! -d "$d" ]; then
		local m
		read -r -a m <<<"$(mirror)"
		mkdir -p "$d/lists/partial" "$d/cache"
		id _apt >/dev/null 2>&1 && chown -R _apt "$d/lists"
		echo "deb-src [signed-by=${m[1]}] ${m[0]} $1 main" >"$d/sources.list"
		apt-get -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
			-o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" update -o Acquire::Retries=3 >"$d/update.log" 2>&1 ||
			{ tail -5 "$d/update.log" >&2; die "reading $1's source index failed"; }
	fi
	echo "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache"
}

# Where CRIU comes from: the release, or a newer suite's source.
criu_pkg="" src_suite="" src_version=""
if ver_ge "$(criu_version)" "$min_criu" && criu check >/dev/null 2>&1; then
	: # present and working
elif ver_ge "$(upstream "$(release_version criu)")" "$min_criu"; then
	criu_pkg=criu
else
	for s in "${later[@]}"; do
		# shellcheck disable=SC2046
		v=$(apt-cache $(src_apt "$s") showsrc criu 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1)
		if ver_ge "$(upstream "$v")" "$min_criu"; then src_suite=$s src_version=$v; break; fi
	done
	[ -n "$src_suite" ] || die "no Debian suite offers CRIU >= $min_criu (needed on kernel $kernel) as source; install it by hand"
fi
deb_version=${src_version:+$src_version+ckpt1}
cached_deb=$cache/$codename/criu_${deb_version}_$arch.deb
build=0
if [ -n "$src_suite" ] && [ ! -f "$cached_deb" ]; then build=1; fi

want=()
if ! ver_ge "$(runc_version)" "$min_runc"; then
	ver_ge "$(upstream "$(release_version runc)")" "$min_runc" || die "$codename's runc is older than $min_runc; install runc >= $min_runc by hand"
	want+=(runc)
fi
have_lock || want+=(iptables)
if [ "$want_podman" = 1 ] && ! command -v podman >/dev/null 2>&1; then want+=(podman); fi
[ -n "$criu_pkg" ] && want+=(criu)
runtime=()
[ -n "$src_suite" ] && runtime=("${criu_runtime[@]}")

# simulate PKG...: "name old new" for each package apt would install or
# upgrade (old is - for a new one), from the release only.
simulate() {
	[ $# -gt 0 ] || return 0
	apt-get install -s --no-install-recommends "$@" 2>&1 | awk '
		/^E:/ {print "E " $0; next}
		$1 == "Inst" && $3 ~ /^\[/ {o=$3; gsub(/[][]/, "", o); n=$4; gsub(/[()]/, "", n); print $2, o, n; next}
		$1 == "Inst" {n=$3; gsub(/[()]/, "", n); print $2, "-", n}'
}
# Naming an installed package to apt-get install would upgrade it.
missing=()
for p in "${criu_build[@]}"; do [ -n "$(installed_version "$p")" ] || missing+=("$p"); done
keep=$(simulate "${want[@]}" "${runtime[@]}")
all=$keep
if [ "$build" = 1 ]; then all=$(simulate "${want[@]}" "${runtime[@]}" "${missing[@]}"); fi
if grep -q '^E ' <<<"$all"; then
	grep '^E ' <<<"$all" | cut -c3- >&2
	die "apt cannot install ${want[*]} ${runtime[*]} from $codename"
fi
build_only=$(comm -13 <(cut -d' ' -f1 <<<"$keep" | sort -u) <(cut -d' ' -f1 <<<"$all" | sort -u))

# The plan, on stdout: one "install|upgrade|build|build-only NAME ..." line
# each (the README's system-package table lists every NAME it can print).
{
	echo "deps: plan (packages from $codename):"
	while read -r n o v; do
		[ -n "$n" ] || continue
		grep -qx "$n" <<<"$build_only" && continue
		if [ "$o" = - ]; then echo "  install    $n $v"; else echo "  upgrade    $n $o -> $v"; fi
	done <<<"$keep"
	if [ -n "$src_suite" ]; then
		if [ "$build" = 1 ]; then
			echo "  build      criu $deb_version from $src_suite's source criu $src_version (1-5 minutes), cached in $cache/$codename"
		else
			echo "  build      criu $deb_version: cached $cached_deb"
		fi
		echo "  install    criu $deb_version (local package)"
	fi
	while read -r n o v; do
		[ -n "$n" ] || continue
		grep -qx "$n" <<<"$build_only" || continue
		if [ "$o" = - ]; then echo "  build-only $n $v (removed after the build)"; else echo "  upgrade    $n $o -> $v (build-only)"; fi
	done <<<"$all"
	if [ -z "$all" ] && [ -z "$src_suite" ]; then echo "  nothing to install"; fi
}
upgrades=$(awk 'NF == 3 && $2 != "-" {print $1 " " $2 " -> " $3}' <<<"$all")
if [ -n "$upgrades" ] && [ "$allow_upgrades" = 0 ]; then
	say "installing would upgrade installed packages (the machine is behind on $codename's updates):"
	sed 's/^/deps:   /' <<<"$upgrades" >&2
	say "run \`apt-get upgrade\` first, or deps.sh --allow-upgrades"
	exit 1
fi
[ "$plan_only" = 1 ] && exit 0

installed() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" {print $2}' | sort -u; }
before=$(installed)
apt_install() {
	say "apt-get install $*"
	quiet "$work/install.log" apt-get install -y --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# build_criu: build the criu binary from $src_suite's source with CRIU's
# own Makefile (not dpkg-buildpackage, whose build-dependencies include
# the documentation and Python tool chains) and package it.
build_criu() {
	local t0=$SECONDS a uri name hash dir shl deps
	# shellcheck disable=SC2207
	a=($(src_apt "$src_suite"))
	# Only the upstream tarball, verified against the signed Sources index.
	read -r uri name _ hash < <(apt-get "${a[@]}" source --print-uris -qq "criu/$src_suite" | tr -d "'" | awk '$2 ~ /\.orig\.tar\./')
	[ -n "$hash" ] || die "no upstream tarball in $src_suite's criu $src_version"
	say "downloading $name"
	quiet "$work/download.log" /usr/lib/apt/apt-helper download-file "$uri" "$work/$name" "$hash"
	mkdir -p "$work/src" "$work/dev"
	tar -xf "$work/$name" -C "$work/src" --strip-components=1
	(cd "$work" && quiet "$work/download.log" apt-get download "${criu_unpack[@]}")
	for p in "${criu_unpack[@]}"; do dpkg-deb -x "$work/${p}"_*.deb "$work/dev"; done
	# CRIU's images/Makefile compiles descriptor.proto from where
	# pkg-config's protobuf says, with images/ as a proto path.
	mkdir -p "$work/src/images/google/protobuf"
	cp "$work/dev/usr/include/google/protobuf/descriptor.proto" "$work/src/images/google/protobuf/"
	say "building criu $src_version (log: $work/build.log)"
	# TLS for the page server (libgnutls) is left out: ckpt does not use it.
	quiet "$work/build.log" make -C "$work/src" -j"$(nproc)" criu NO_GNUTLS=1 \
		GOOGLE_INCLUDE=images/google/protobuf USERCFLAGS="-I$work/dev/usr/include"
	dir=$work/pkg
	mkdir -p "$dir/DEBIAN" "$dir/usr/sbin"
	install -m 755 "$work/src/criu/criu" "$dir/usr/sbin/criu"
	strip "$dir/usr/sbin/criu"
	shl=$work/shl
	mkdir -p "$shl/debian"
	printf 'Source: criu\n\nPackage: criu\nArchitecture: any\n' >"$shl/debian/control"
	deps=$(cd "$shl" && dpkg-shlibdeps -O "$dir/usr/sbin/criu" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
	[ -n "$deps" ] || die "dpkg-shlibdeps found no libraries for the built criu"
	local n
	for n in $(sed 's/([^)]*)//g; s/,/ /g' <<<"$deps"); do
		[ "$n" = libc6 ] || printf '%s\n' "${criu_runtime[@]}" | grep -qx "$n" ||
			die "the built criu needs $n, which deps.sh's criu_runtime does not list"
	done
	cat >"$dir/DEBIAN/control" <<EOF
Package: criu
Version: $deb_version
Architecture: $arch
Maintainer: ckpt scripts/deps.sh <root@localhost>
Depends: $deps
Section: admin
Priority: optional
Homepage: https://criu.org/
Description: checkpoint and restore in userspace (built by ckpt's deps.sh)
 CRIU $(upstream "$src_version") built from Debian $src_suite's criu $src_version source package
 against $codename by ckpt's scripts/deps.sh: the criu binary only, without
 TLS for the page server.
EOF
	mkdir -p "$cache/$codename"
	dpkg-deb --root-owner-group --build "$dir" "$cached_deb.tmp" >/dev/null
	mv "$cached_deb.tmp" "$cached_deb"
	say "built $cached_deb in $((SECONDS - t0)) s"
}

t0=$SECONDS
if [ "$build" = 1 ]; then
	[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
	build_criu
fi
if [ -n "$src_suite" ]; then
	apt_install "$cached_deb" "${want[@]}"
elif [ ${#want[@]} -gt 0 ]; then
	apt_install "${want[@]}"
fi
# Remove what was installed for the build only: new since the start and
# not needed by what deps.sh installs.
if [ "$build" = 1 ]; then
	needed=$(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances criu runc iptables ${want[@]+"${want[@]}"} 2>/dev/null | grep -v '^ ' | sort -u)
	purge=$(comm -13 <(echo "$before") <(installed) | comm -23 - <(echo "$needed"))
	if [ -n "$purge" ]; then
		# shellcheck disable=SC2086
		removes=$(apt-get purge -s $purge | awk '$1 == "Purg" || $1 == "Remv" {print $2}' | sort -u)
		[ "$removes" = "$(sort -u <<<"$purge")" ] || die "removing the build-only packages would remove more: $(comm -13 <(sort -u <<<"$purge") <(echo "$removes") | tr '\n' ' ')"
		say "removing the build-only packages: $(tr '\n' ' ' <<<"$purge")"
		# shellcheck disable=SC2086
		quiet "$work/purge.log" apt-get purge -y $purge
	fi
fi
if ! criu check >"$work/criu-check.log" 2>&1; then
	tail -5 "$work/criu-check.log" >&2
	die "criu check failed after install"
fi
ver_ge "$(criu_version)" "$min_criu" || die "installed CRIU $(criu_version), need >= $min_criu"
have_all || die "something is still missing after install (CRIU $(criu_version), runc $(runc_version))"
say "ok: CRIU $(criu_version), runc $(runc_version), iptables; took $((SECONDS - t0)) s"
