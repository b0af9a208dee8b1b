#!/usr/bin/env bash
# Installs Debian's linux-source-6.12 and unpacks it into the racejudge cache, once.
#
# Prints the path of the unpacked tree on stdout (and nothing else), so callers can do
#   KERNEL=$(scripts/fetch-kernel-source.sh)
# The unpack is atomic: the tree is extracted into a temporary sibling directory and
# renamed into place, so an interrupted run never leaves a half tree that looks complete.
set -euo pipefail

cache_root="${RACEJUDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/racejudge}"
dest="$cache_root/kernels/linux-source-6.12"
tarball=/usr/src/linux-source-6.12.tar.xz

if [ -f "$dest/Makefile" ] && [ -d "$dest/kernel" ]; then
    echo "$dest"
    exit 0
fi

if [ ! -f "$tarball" ]; then
    echo "installing linux-source-6.12 from Debian ..." >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: $tarball is missing and installing it needs root (apt-get install linux-source-6.12)" >&2
        exit 3
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq linux-source-6.12 >&2
fi

mkdir -p "$cache_root/kernels"
tmp=$(mktemp -d "$cache_root/kernels/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "unpacking $tarball into $dest ..." >&2
tar -xJf "$tarball" -C "$tmp"
# The tarball holds a single top-level directory (linux-source-6.12/).
top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)
rm -rf "$dest"
mv "$top" "$dest"
echo "$dest"
