#!/bin/sh
# Builds the real s6-linux-init 1.1.1.0 from skarnet's source into .cache/s6-linux-init/
# (gitignored), so bench/boot.mjs can boot the real s6 stack beside t6
# (scripts/bench/build-s6-image.mjs). Debian bookworm does not package s6-linux-init, but it
# has the libraries s6-linux-init 1.1.1.0 is built against:
#
#   apt-get install -y skalibs-dev libexecline-dev libs6-dev s6 execline
#   (skalibs 2.13.1.1, execline 2.9.3.0, s6 2.11.3.2)
#
# Usage: scripts/bench/build-s6-linux-init.sh [SOURCE]
#   SOURCE (or $S6_LINUX_INIT_SRC): a git directory of skarnet/s6-linux-init (bare or not)
#   holding the tag v1.1.1.0, or an unpacked s6-linux-init-1.1.1.0 source tree, or its
#   .tar.gz. Without one, the tag is cloned from https://github.com/skarnet/s6-linux-init.
# Prints the installation prefix (bin/s6-linux-init-maker is under it). Idempotent: an
# existing build of this version is reused (T6_S6LI_REBUILD=1 builds again). Nothing is
# installed outside .cache/s6-linux-init; nothing of its source enters the repository.
#
# Built with --enable-absolute-paths: the boot tree's bin/init runs before any PATH is set
# (the kernel gives init none), so it must name s6-linux-init by its full path; the image
# carries this prefix at the same path.
set -eu
version=1.1.1.0
commit=d6a69ea429b367524f5776c3b7a4caa286c6a8c9 # the commit tagged v1.1.1.0
here=$(cd "$(dirname "$0")" && pwd)
cache=$(mkdir -p "$here/../../.cache/s6-linux-init" && cd "$here/../../.cache/s6-linux-init" && pwd)
prefix="$cache/$version"
if [ "${T6_S6LI_REBUILD:-}" != 1 ] && [ -x "$prefix/bin/s6-linux-init-maker" ]; then
  echo "$prefix"
  exit 0
fi

# The Debian multiarch directories of the -dev packages (headers, libraries, sysdeps).
arch=$(gcc -print-multiarch 2>/dev/null || true)
[ -n "$arch" ] || arch=$(uname -m)-linux-gnu
sysdeps="/usr/lib/$arch/skalibs/sysdeps"
for need in "$sysdeps/sysdeps" "/usr/include/$arch/skalibs/skalibs.h" "/usr/include/$arch/execline/execline.h" "/usr/include/$arch/s6/s6.h"; do
  if [ ! -e "$need" ]; then
    echo "build-s6-linux-init: $need is missing: apt-get install -y skalibs-dev libexecline-dev libs6-dev" >&2
    exit 1
  fi
done

src=${1:-${S6_LINUX_INIT_SRC:-}}
work="$cache/.build.$$"
rm -rf "$work" && mkdir -p "$work/src"
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
  git clone -q --depth 1 --branch "v$version" https://github.com/skarnet/s6-linux-init.git "$work/git" >&2
  src="$work/git"
fi
if [ -f "$src" ]; then
  tar -xzf "$src" -C "$work/src" --strip-components=1
elif git --git-dir="$src" rev-parse -q --verify "v$version^{commit}" >/dev/null 2>&1 \
  || git --git-dir="$src/.git" rev-parse -q --verify "v$version^{commit}" >/dev/null 2>&1; then
  gitdir=$src
  [ -d "$src/.git" ] && gitdir="$src/.git"
  got=$(git --git-dir="$gitdir" rev-parse "v$version^{commit}")
  if [ "$got" != "$commit" ]; then
    echo "build-s6-linux-init: tag v$version is $got in $src, not $commit" >&2
    exit 1
  fi
  git --git-dir="$gitdir" archive "$commit" | tar -x -C "$work/src"
elif [ -f "$src/package/info" ]; then
  cp -R "$src/." "$work/src"
else
  echo "build-s6-linux-init: $src is neither a git directory with v$version, a source tree nor a tarball" >&2
  exit 1
fi
if ! grep -qx "version=$version" "$work/src/package/info"; then
  echo "build-s6-linux-init: $src is not s6-linux-init $version ($(grep '^version=' "$work/src/package/info" || echo 'no package/info'))" >&2
  exit 1
fi

jobs=$(nproc 2>/dev/null || echo 2)
(
  cd "$work/src"
  ./configure --prefix="$prefix" --enable-absolute-paths --with-sysdeps="$sysdeps" \
    --with-include="/usr/include/$arch" --with-lib="/usr/lib/$arch" --with-dynlib="/usr/lib/$arch"
  make -j"$jobs"
  make install
) >"$cache/build.log" 2>&1 || { echo "build-s6-linux-init: the build failed; see $cache/build.log" >&2; exit 1; }
echo "$prefix"
