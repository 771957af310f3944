#!/usr/bin/env bash
# Makes a base image locally, for machines that reach package mirrors but no image registry (CI):
# a minimal Debian with Python, imported into the container engine. It stands in for both
# production bases of the Dockerfile, so it carries what each of them brings that the Dockerfile
# relies on: pip (python:3.12-slim's build stage runs `pip wheel`), venv and CA certificates.
# Needs root (debootstrap); about a minute and 300 MB.
set -euo pipefail
image="${1:?usage: make-local-base.sh IMAGE [ENGINE]}"
engine="${2:-podman}"
suite=bookworm

if "$engine" image inspect "$image" >/dev/null 2>&1; then
    echo "$image: already made"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "making $image needs root (debootstrap)" >&2
    exit 2
fi
# The mirror apt already uses on this machine: the only one a locked-down CI may reach.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs=$(mktemp -d /var/tmp/edgevision-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
echo "debootstrap $suite from $mirror into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; exit 1; }

# apt's lists are not part of an image (the production bases ship without them too).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
tar -C "$rootfs" -c . | "$engine" import --quiet --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "$image: made"
