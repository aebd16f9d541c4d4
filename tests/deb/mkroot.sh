#!/bin/bash
# Makes (once) and caches a pristine Debian root for `make test-deb`, as a
# tarball, and prints its path. Each test run unpacks a fresh copy of it.
#
# The cache key is the suite, architecture, mirror and package list, so a
# change to any of them makes a new root. The mirror defaults to the first
# Debian mirror in this machine's apt sources.
#
# Environment: PBS_DEB_TEST_CACHE (default /var/cache/pbs-keystore/test-deb),
# PBS_DEB_TEST_SUITE (default: this machine's codename, else bookworm),
# PBS_DEB_TEST_MIRROR.
set -euo pipefail

cache="${PBS_DEB_TEST_CACHE:-/var/cache/pbs-keystore/test-deb}"
# shellcheck disable=SC1091
suite="${PBS_DEB_TEST_SUITE:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}"
suite="${suite:-bookworm}"
arch="$(dpkg --print-architecture)"

# the packages the test needs beyond minbase: the .deb's run-time
# dependencies (so installing it needs no network) and systemd, so the unit
# can be checked with systemd-analyze against a real systemd tree
include="adduser,libssl3,ca-certificates,systemd"

find_mirror() {
    local uri
    # deb822 sources first, then one-line sources
    uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
        awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)"
    if [ -z "$uri" ]; then
        uri="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' |
            grep -E '/debian/?$' | head -n1 || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
mirror="${PBS_DEB_TEST_MIRROR:-$(find_mirror)}"

key="$(printf '%s\n' "$suite" "$arch" "$mirror" "$include" | sha256sum | cut -c1-12)"
tarball="$cache/$suite-$arch-$key.tar"

if [ -s "$tarball" ]; then
    echo "$tarball"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "mkroot: debootstrap is missing - apt-get install debootstrap" >&2
    exit 1
fi

mkdir -p "$cache"
work="$(mktemp -d "$cache/root.XXXXXX")"
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT

echo "mkroot: debootstrap $suite ($arch) from $mirror into $work (once; cached as $tarball)" >&2
if ! debootstrap --variant=minbase --arch="$arch" --include="$include" \
    "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    echo "mkroot: debootstrap failed, last lines of its log:" >&2
    tail -n 30 "$work/debootstrap.log" >&2
    tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
    exit 1
fi
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*_Packages
tar -C "$work/root" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
# roots made for an older package list or mirror are of no more use
for old in "$cache/$suite-$arch-"*.tar; do
    [ "$old" = "$tarball" ] || rm -f "$old"
done
echo "$tarball"
