#!/usr/bin/env bash
# deps.sh installs what ckpt's engine needs on a Debian machine: CRIU, crit,
# runc and (with --podman) podman, the reference peer used by bench/ and by
# scripts/mkpodman.sh.
#
# Which CRIU: at least 4.0 (Debian 12's 3.17 does not run on recent kernels:
# "vdso: Unexpected rt vDSO area bounds"), and at least 4.2 on kernels 6.16
# and newer, where CRIU 4.1 cannot dump any TCP socket (criu#2705: the kernel
# refuses SO_PASSCRED/SO_PASSSEC on inet sockets since 6.16).
#
# It is idempotent: when the tools are present and `criu check` passes it
# (and CKPT_DEPS_FORCE is unset, which tests the install path)
# returns at once. When the release's own packages are too old it adds the
# next Debian suites (trixie, then forky) as low-priority sources derived
# from the machine's own Debian sources, so no mirror host is written here,
# and installs only the named packages from the first suite that is new
# enough. On other distributions it prints what to install.
set -euo pipefail

want_podman=0
for a in "$@"; do
	case "$a" in
	--podman) want_podman=1 ;;
	*) echo "deps.sh: unknown argument $a (usage: deps.sh [--podman])" >&2; exit 2 ;;
	esac
done

say() { echo "deps: $*" >&2; }

# ver_ge A B: A >= B as dotted versions.
ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# runc 1.1.15 is the oldest checked with CRIU 4 on cgroup v1 hybrid hosts.
min_runc=1.1.15
kernel=$(uname -r | sed 's/[^0-9.].*//')
min_criu=4.0
if ver_ge "$kernel" 6.16; then min_criu=4.2; fi

criu_version() {
	command -v criu >/dev/null 2>&1 || { echo 0; return; }
	criu --version 2>/dev/null | sed -n 's/^Version: *\([0-9.]*\).*/\1/p' | head -1
}

have_all() {
	ver_ge "$(criu_version)" "$min_criu" || return 1
	command -v runc >/dev/null 2>&1 || return 1
	ver_ge "$(runc --version | sed -n 's/^runc version \([0-9.]*\).*/\1/p')" "$min_runc" || return 1
	command -v crit >/dev/null 2>&1 || return 1
	if [ "$want_podman" = 1 ]; then command -v podman >/dev/null 2>&1 || return 1; fi
	criu check >/dev/null 2>&1 || return 1
}

if [ -z "${CKPT_DEPS_FORCE:-}" ] && have_all; then
	say "ok: CRIU $(criu_version) (need >= $min_criu on kernel $kernel), $(runc --version | head -1)"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	say "must run as root to install CRIU >= $min_criu and runc (try: sudo make deps)"
	exit 1
fi

if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
	cat >&2 <<MSG
deps: this is not a Debian system. Install by hand, then run \`make deps\` again:
  - CRIU $min_criu or newer, with crit, and check it with \`criu check\`
  - runc 1.1 or newer
  - optionally podman 5 (for bench/)
MSG
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_update() { apt-get update -qq -o Acquire::Retries=3 >/dev/null; }

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case "$codename" in
bookworm) later=(trixie forky) ;;
trixie) later=(forky) ;;
*) later=() ;;
esac

# add_suite S: a sources entry for suite S with the URIs and keyring of the
# machine's own main Debian source, pinned below the release's own packages.
add_suite() {
	local s=$1 src=/etc/apt/sources.list.d/ckpt-$1.sources uris="" keyring=""
	[ -f "$src" ] && return 0
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		# The first deb822 stanza of the main archive (not -security).
		uris=$(awk '
			/^URIs:/ {u=$2}
			/^$/ {if (u != "" && u !~ /security/) {print u; exit} u=""}
			END {if (u != "" && u !~ /security/) print u}' /etc/apt/sources.list.d/debian.sources | head -1)
		keyring=$(sed -n 's/^Signed-By: *//p' /etc/apt/sources.list.d/debian.sources | head -1)
	fi
	if [ -z "$uris" ] && [ -f /etc/apt/sources.list ]; then
		uris=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
	fi
	[ -n "$uris" ] || { say "cannot find the Debian mirror in /etc/apt/sources.list{,.d}; add a $s source by hand"; exit 1; }
	[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	say "adding $s (from $uris) as a low-priority source"
	printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$uris" "$s" "$keyring" >"$src.tmp"
	mv "$src.tmp" "$src"
	# Nothing comes from that suite unless asked for by name.
	printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$s" >/etc/apt/preferences.d/ckpt-$s
}

# suite_version P S: the version of package P that suite S offers, or 0.
suite_version() {
	local v
	v=$(apt-cache madison "$1" 2>/dev/null | awk -F'|' -v s="$2" '$3 ~ (" " s "/") {gsub(/ /, "", $2); print $2; exit}')
	echo "${v:-0}" | sed 's/^[0-9]*://; s/[-+~].*//'
}

apt_update
own_criu=$(suite_version criu "$codename")
own_runc=$(suite_version runc "$codename")
criu_suite="" runc_suite=""
if ! ver_ge "$own_criu" "$min_criu" || ! ver_ge "$own_runc" "$min_runc"; then
	for s in "${later[@]}"; do add_suite "$s"; done
	apt_update
	for s in "${later[@]}"; do
		if [ -z "$criu_suite" ] && ! ver_ge "$own_criu" "$min_criu" && ver_ge "$(suite_version criu "$s")" "$min_criu"; then criu_suite=$s; fi
		if [ -z "$runc_suite" ] && ! ver_ge "$own_runc" "$min_runc" && ver_ge "$(suite_version runc "$s")" "$min_runc"; then runc_suite=$s; fi
	done
	if ! ver_ge "$own_criu" "$min_criu" && [ -z "$criu_suite" ]; then
		say "no Debian suite offers CRIU >= $min_criu (needed on kernel $kernel); install it by hand"
		exit 1
	fi
fi

install() { # install SUITE PKG...
	local suite=$1; shift
	local opt=()
	[ -n "$suite" ] && opt=(-t "$suite")
	say "installing $* ${suite:+from $suite}"
	apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${opt[@]}" "$@" >/tmp/ckpt-deps-apt.log 2>&1 || {
		tail -20 /tmp/ckpt-deps-apt.log >&2
		say "apt-get install failed (full log: /tmp/ckpt-deps-apt.log)"
		exit 1
	}
}
# runc (and podman) first: podman from a suite pulls that suite's CRIU as a
# recommendation, which the CRIU install below then replaces if needed.
base=(runc)
[ "$want_podman" = 1 ] && base+=(podman)
install "${runc_suite:-$codename}" "${base[@]}"
install "${criu_suite:-$codename}" criu python3-pycriu
if ! criu check >/tmp/ckpt-deps-criu-check.log 2>&1; then
	say "criu check failed after install:"
	tail -5 /tmp/ckpt-deps-criu-check.log >&2
	exit 1
fi
ver_ge "$(criu_version)" "$min_criu" || { say "installed CRIU $(criu_version), need >= $min_criu"; exit 1; }
command -v crit >/dev/null 2>&1 || { say "crit is missing after install (package python3-pycriu)"; exit 1; }
say "ok: CRIU $(criu_version), $(runc --version | head -1)"
