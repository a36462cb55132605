#!/usr/bin/env bash
# deps.sh installs what ckpt's engine needs on a Debian machine: CRIU >= 4.0,
# runc and (with --podman) podman, the reference peer used by bench/ and by
# the tests that build podman-made archives.
#
# It is idempotent: when the tools are present and `criu check` passes it
# returns at once. On Debian releases whose CRIU is older than 4.0 (Debian 12
# ships 3.17.1, which does not run on recent kernels) it adds the next Debian
# release (trixie) as a low-priority source derived from the machine's own
# Debian sources, so no mirror host is written here, and installs only the
# named packages from it. On other distributions it prints what to install.
set -euo pipefail

want_podman=0
for a in "$@"; do
	case "$a" in
	--podman) want_podman=1 ;;
	*) echo "deps.sh: unknown argument $a (usage: deps.sh [--podman])" >&2; exit 2 ;;
	esac
done

say() { echo "deps: $*" >&2; }

criu_major() {
	command -v criu >/dev/null 2>&1 || { echo 0; return; }
	criu --version 2>/dev/null | sed -n 's/^Version: *\([0-9]*\).*/\1/p' | head -1
}

have_all() {
	[ "$(criu_major)" -ge 4 ] 2>/dev/null || return 1
	command -v runc >/dev/null 2>&1 || return 1
	command -v crit >/dev/null 2>&1 || return 1
	if [ "$want_podman" = 1 ]; then command -v podman >/dev/null 2>&1 || return 1; fi
	criu check >/dev/null 2>&1 || return 1
}

if have_all; then
	say "ok: $(criu --version | head -1 | tr -s ' '), $(runc --version | head -1)"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	say "must run as root to install CRIU >= 4.0 and runc (try: sudo make deps)"
	exit 1
fi

if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
	cat >&2 <<'MSG'
deps: this is not a Debian system. Install by hand, then run `make deps` again:
  - CRIU 4.0 or newer (criu and crit), and check it with `criu check`
  - runc 1.1 or newer
  - optionally podman 5 (for bench/)
MSG
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
pkgs=(criu runc)
[ "$want_podman" = 1 ] && pkgs+=(podman)
# crit ships in its own package on newer Debian releases.

apt_update() { apt-get update -qq -o Acquire::Retries=3 >/dev/null; }

candidate_major() {
	apt-cache policy criu 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*\).*/\1/p' | head -1
}

apt_update
suite_opt=()
if [ "$(candidate_major)" -lt 4 ] 2>/dev/null || [ -z "$(candidate_major)" ]; then
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	next=""
	case "$codename" in
	bookworm) next=trixie ;;
	*) say "Debian $codename offers no CRIU >= 4.0 and no newer suite is known; install CRIU 4 by hand"; exit 1 ;;
	esac
	src=/etc/apt/sources.list.d/ckpt-$next.sources
	if [ ! -f "$src" ]; then
		# Derive the entry from the machine's own main Debian source: same
		# URIs and keyring, the next suite.
		uris="" keyring=""
		if [ -f /etc/apt/sources.list.d/debian.sources ]; then
			uris=$(awk -v c="$codename" '
				/^URIs:/ {u=$2} /^Suites:/ {s=$0}
				/^$/ {if (s ~ (" " c "( |$)") && u != "") {print u; exit} u=""; s=""}
				END {if (s ~ (" " c "( |$)") && u != "") print u}' /etc/apt/sources.list.d/debian.sources | head -1)
			keyring=$(sed -n 's/^Signed-By: *//p' /etc/apt/sources.list.d/debian.sources | head -1)
		fi
		if [ -z "$uris" ] && [ -f /etc/apt/sources.list ]; then
			uris=$(awk -v c="$codename" '$1=="deb" && $3==c {print $2; exit}' /etc/apt/sources.list)
		fi
		[ -n "$uris" ] || { say "cannot find the Debian mirror in /etc/apt/sources.list{,.d}; add a $next source by hand"; exit 1; }
		[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
		say "adding $next (from $uris) as a low-priority source for CRIU >= 4.0"
		printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$uris" "$next" "$keyring" >"$src.tmp"
		mv "$src.tmp" "$src"
		# Nothing comes from the next suite unless asked for by name.
		printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n' "$next" >/etc/apt/preferences.d/ckpt-$next
		apt_update
	fi
	suite_opt=(-t "$next")
fi

# crit is packaged separately (python3-pycriu / criu) depending on release.
if apt-cache "${suite_opt[@]/-t/--target-release}" show crit >/dev/null 2>&1 || apt-cache show crit >/dev/null 2>&1; then
	pkgs+=(crit)
fi
say "installing ${pkgs[*]} ${suite_opt[*]}"
apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${suite_opt[@]}" "${pkgs[@]}" >/tmp/ckpt-deps-apt.log 2>&1 || {
	tail -20 /tmp/ckpt-deps-apt.log >&2
	say "apt-get install failed (full log: /tmp/ckpt-deps-apt.log)"
	exit 1
}
if ! criu check >/tmp/ckpt-deps-criu-check.log 2>&1; then
	say "criu check failed after install:"
	tail -5 /tmp/ckpt-deps-criu-check.log >&2
	exit 1
fi
say "ok: $(criu --version | head -1 | tr -s ' '), $(runc --version | head -1)"
