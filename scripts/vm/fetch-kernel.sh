#!/bin/sh
# Fetches the Debian cloud kernel for the boot test and `npm run demo:vm`, without
# installing it: `apt-get download`s the package linux-image-cloud-amd64 depends on and
# extracts only boot/vmlinuz-* into a cache directory. Installing linux-image-* would pull
# in systemd-sysv and initramfs-tools and write to /boot (BOOT-LAB.md).
#
# Usage: scripts/vm/fetch-kernel.sh [cachedir]     (default: .cache/vm in the repository)
# Prints the path of the vmlinuz file. Idempotent: a kernel already in the cache is reused
# (set T6_VM_REFRESH=1 to ask apt again for the newest ABI).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-"$here/../../.cache/vm"}
mkdir -p "$cache/kernel"
cache=$(cd "$cache" && pwd)

# Reuse the newest kernel already extracted (with its modules), unless a refresh is asked for.
if [ "${T6_VM_REFRESH:-}" != 1 ]; then
  found=$(ls -1 "$cache"/kernel/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -d "$cache/kernel/modules-${found##*/vmlinuz-}" ]; then echo "$found"; exit 0; fi
fi

command -v apt-cache >/dev/null 2>&1 || { echo "fetch-kernel: apt-cache not found (Debian/Ubuntu only)" >&2; exit 1; }
# The meta package's dependency names the current ABI, e.g. linux-image-6.1.0-56-cloud-amd64.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
  echo "fetch-kernel: apt-cache does not know linux-image-cloud-amd64 (run apt-get update?)" >&2
  exit 1
fi
version=${pkg#linux-image-}
if [ ! -f "$cache/kernel/vmlinuz-$version" ] || [ ! -d "$cache/kernel/modules-$version" ]; then
  deb=$(ls -1 "$cache"/"$pkg"_*.deb 2>/dev/null | tail -n 1 || true)
  if [ -z "$deb" ]; then
    # apt-get download writes into the current directory. As root it warns that the
    # download is unsandboxed (no _apt user access to the folder): harmless.
    (cd "$cache" && apt-get download -q "$pkg" >&2)
    deb=$(ls -1 "$cache"/"$pkg"_*.deb | tail -n 1)
  fi
  tmp="$cache/kernel/.extract.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # The kernel, its config, and the virtio block driver's modules (the cloud kernel builds
  # virtio as modules; the boot test's disk needs them, loaded by a oneshot in the guest).
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*' \
    "./lib/modules/$version/kernel/drivers/virtio/*" "./lib/modules/$version/kernel/drivers/block/virtio_blk.ko*"
  mv "$tmp/boot/vmlinuz-$version" "$cache/kernel/vmlinuz-$version"
  mv "$tmp/boot/config-$version" "$cache/kernel/config-$version"
  rm -rf "$cache/kernel/modules-$version"
  mkdir -p "$cache/kernel/modules-$version"
  find "$tmp/lib/modules" -name '*.ko*' -exec mv {} "$cache/kernel/modules-$version/" \;
  rm -rf "$tmp" "$deb"
fi
echo "$cache/kernel/vmlinuz-$version"
