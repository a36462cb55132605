#!/usr/bin/env bash
# pristine-check.sh checks the README's promise on a Debian 12 that never
# had CRIU, runc or iptables: it builds a debootstrap bookworm chroot, gives
# it what a fresh machine of the project's kind has, and runs, as a new user
# would, `scripts/deps.sh --plan`, `make deps` (twice, timed), `make demo`
# and `make test` in it; then it checks that apt, dpkg, libc6, python3,
# systemd and openssh-client are unchanged and that every package the plan
# names is in the README's system-package table. Not part of `make test`.
#
#	scripts/pristine-check.sh [--keep] [--no-test] [--from DIR]
#
# It needs root and debootstrap (apt-get install debootstrap), and checks
# the committed HEAD (a clone of it). The chroot lives under /var/tmp and
# is removed at the end unless --keep. --from DIR copies DIR, a bookworm
# debootstrap made before, instead of running debootstrap (which takes
# minutes), for iterating on this script.
#
# What the chroot gets besides debootstrap's default set (required and
# important priorities, systemd among them), as the machine kind has them:
#   gcc, make, libc6-dev  ckpt's own prerequisites (cgo, the Makefile)
#   git                   `make fmt-check` lists the files with git
#   dpkg-dev, pkg-config  present on the machine kind
#   ca-certificates       the Go module proxy is HTTPS (the host's bundle
#                         is copied in: the machine kind's proxy CA is in it)
#   python3, openssh-client  present on the machine kind; checked unchanged
#   /etc/apt/apt.conf.d files that set Acquire:: options  the machine
#                         kind's mirror is a frozen snapshot whose Release
#                         files have expired; its apt accepts them
# and, bind-mounted from the host: the Go toolchain (/usr/local/go), /proc,
# /sys with the cgroup hierarchy, /dev.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0 run_test=1 from=""
while [ $# -gt 0 ]; do
	case "$1" in
	--keep) keep=1 ;;
	--no-test) run_test=0 ;;
	--from) from=${2:?--from needs a directory}; shift ;;
	*) echo "usage: pristine-check.sh [--keep] [--no-test] [--from DIR]" >&2; exit 2 ;;
	esac
	shift
done
say() { printf '\n== %s\n' "$*"; }
die() { echo "pristine-check: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
[ -x /usr/local/go/bin/go ] || die "no Go toolchain at /usr/local/go"

mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/ckpt-pristine.XXXXXX)
chmod 755 "$root"
cleanup() {
	local rc=$?
	set +e
	# Everything mounted below the chroot, deepest first.
	grep -o " $root[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
	# Never remove through a mount: /dev and /sys are the host's.
	if grep -q " $root" /proc/self/mounts; then
		echo "pristine-check: mounts remain under $root; not removing it" >&2
	elif [ "$keep" = 1 ]; then
		echo "kept $root"
	else
		rm -rf --one-file-system "$root"
	fi
	exit "$rc"
}
trap cleanup EXIT

if [ -n "$from" ]; then
	say "copy $from into $root"
	cp -a "$from/." "$root/"
else
	say "debootstrap bookworm into $root (from $mirror)"
	t0=$SECONDS
	debootstrap --include=ca-certificates,gcc,make,libc6-dev,git,dpkg-dev,pkg-config,python3,openssh-client \
		bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || { tail -20 "$root.debootstrap.log"; die "debootstrap failed"; }
	rm -f "$root.debootstrap.log"
	echo "done in $((SECONDS - t0)) s"
fi
# The machine's sources (deb822, like the machine kind's) and CA bundle.
rm -f "$root/etc/apt/sources.list"
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	"$mirror" "${mirror%/debian}/debian-security" >"$root/etc/apt/sources.list.d/debian.sources"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
for f in $(grep -l '^Acquire::' /etc/apt/apt.conf.d/* 2>/dev/null); do cp "$f" "$root/etc/apt/apt.conf.d/"; done
cp /etc/resolv.conf "$root/etc/resolv.conf"

# pivot_root needs the root to be a mount point; /sys and /dev are slaves
# so that unmounting them here never reaches the host's.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
for d in sys dev; do
	mount --rbind "/$d" "$root/$d"
	mount --make-rslave "$root/$d"
done
mount -t tmpfs tmpfs "$root/run"
mkdir -p "$root/usr/local/go"
mount --bind -o ro /usr/local/go "$root/usr/local/go"
git clone -q . "$root/ckpt"
git -C "$root/ckpt" log -1 --format='checking %h %s'

# in_chroot CMD runs CMD as root of the chroot: in a private mount
# namespace whose root it is (pivot_root, not chroot: CRIU refuses to dump
# a task whose root is not its mount namespace's, and under chroot(2) the
# container's root looks that way to it). Mounts made in there vanish
# with the namespace. Descriptors inherited from the caller are closed (a
# new user's shell has none beyond stdio), and stdin is the chroot's
# /dev/null: CRIU cannot dump a descriptor of a mount the namespace lacks.
in_chroot() {
	unshare --mount --propagation private /bin/bash -c '
		cd "$1" && mkdir -p .oldroot && pivot_root . .oldroot && cd / &&
		umount -l /.oldroot && rmdir /.oldroot || exit
		for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
		exec </dev/null /usr/bin/env -i HOME=/root TERM=dumb CI=true \
			PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/bash -c "cd /ckpt && $2"' bash "$root" "$1"
}
core="apt dpkg libc6 python3 python3.11 systemd openssh-client"
# shellcheck disable=SC2086
in_chroot "dpkg-query -W $core" >"$root/core-before.txt"

say "scripts/deps.sh --plan"
in_chroot "bash scripts/deps.sh --plan" | tee "$root/plan.txt"

say "make deps (nothing installed yet)"
t0=$SECONDS
in_chroot "make deps"
first=$((SECONDS - t0))
t0=$SECONDS
in_chroot "make deps"
second=$((SECONDS - t0))
echo "make deps: ${first} s on the pristine system, ${second} s when everything is there"

say "what make deps did (the chroot's /var/log/apt/history.log)"
grep -E '^(Commandline|Install|Upgrade|Remove|Purge):' "$root/var/log/apt/history.log" | cut -c1-600 || true
in_chroot "dpkg-query -W -f='\${db:Status-Abbrev} \${Package} \${Version}\n' criu runc iptables"
# shellcheck disable=SC2086
in_chroot "dpkg-query -W $core" >"$root/core-after.txt"
if diff "$root/core-before.txt" "$root/core-after.txt"; then
	echo "unchanged: $(tr '\t' ' ' <"$root/core-after.txt" | paste -sd, | sed 's/,/, /g')"
else
	die "core packages changed (above)"
fi

say "make demo"
t0=$SECONDS
in_chroot "make demo"
echo "make demo: $((SECONDS - t0)) s (including the build)"

say "the plan against the README's table"
cp "$root/plan.txt" "$root/ckpt/plan.txt"
in_chroot "CKPT_DEPS_PLAN=/ckpt/plan.txt go test -count=1 -run TestDepsPlan ./internal/sysdeps/"

if [ "$run_test" = 1 ]; then
	say "make test (CI=true)"
	t0=$SECONDS
	rc=0
	in_chroot "make test" >"$root/test.log" 2>&1 || rc=$?
	cp "$root/test.log" /var/tmp/ckpt-pristine-test.log
	{ grep -E '^(ok|FAIL|---|panic|make)' "$root/test.log" || tail -30 "$root/test.log"; } | tail -60
	echo "make test: exit $rc in $((SECONDS - t0)) s (log: /var/tmp/ckpt-pristine-test.log)"
	[ "$rc" = 0 ] || die "make test failed in the chroot"
fi
say "pristine check passed"
