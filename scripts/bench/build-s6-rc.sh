#!/bin/sh
# Builds the real s6-rc 0.5.4.1 from skarnet's source into .cache/s6-rc/ (gitignored), so
# bench/rc-compile.mjs can run s6-rc-compile beside t6-rc-compile. Debian bookworm does
# not package s6-rc, but it has the libraries s6-rc 0.5.4.1 is built against:
#
#   apt-get install -y skalibs-dev libexecline-dev libs6-dev
#   (skalibs 2.13.1.1, execline 2.9.3.0, s6 2.11.3.2)
#
# Usage: scripts/bench/build-s6-rc.sh [SOURCE]
#   SOURCE (or $S6_RC_SRC): a git directory of skarnet/s6-rc (bare or not) holding the tag
#   v0.5.4.1, or an unpacked s6-rc-0.5.4.1 source tree, or its .tar.gz. Without one, the
#   tag is cloned from https://github.com/skarnet/s6-rc.
# Prints the path of the installed s6-rc-compile. Idempotent: an existing build of this
# version is reused (T6_S6RC_REBUILD=1 builds again). Nothing is installed outside
# .cache/s6-rc; nothing of s6-rc's source enters the repository.
set -eu
version=0.5.4.1
commit=5847de2ceed355a9ac7d1fe7e16c28de1dd99c32 # the commit tagged v0.5.4.1
here=$(cd "$(dirname "$0")" && pwd)
cache=$(mkdir -p "$here/../../.cache/s6-rc" && cd "$here/../../.cache/s6-rc" && pwd)
prefix="$cache/$version"
if [ "${T6_S6RC_REBUILD:-}" != 1 ] && [ -x "$prefix/bin/s6-rc-compile" ]; then
  echo "$prefix/bin/s6-rc-compile"
  exit 0
fi

# The Debian multiarch directories of the -dev packages (headers, libraries, sysdeps).
arch=$(gcc -print-multiarch 2>/dev/null || true)
[ -n "$arch" ] || arch=$(uname -m)-linux-gnu
sysdeps="/usr/lib/$arch/skalibs/sysdeps"
for need in "$sysdeps/sysdeps" "/usr/include/$arch/skalibs/skalibs.h" "/usr/include/$arch/execline/execline.h" "/usr/include/$arch/s6/s6.h"; do
  if [ ! -e "$need" ]; then
    echo "build-s6-rc: $need is missing: apt-get install -y skalibs-dev libexecline-dev libs6-dev" >&2
    exit 1
  fi
done

src=${1:-${S6_RC_SRC:-}}
work="$cache/.build.$$"
rm -rf "$work" && mkdir -p "$work/src"
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
  git clone -q --depth 1 --branch "v$version" https://github.com/skarnet/s6-rc.git "$work/git" >&2
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
    echo "build-s6-rc: tag v$version is $got in $src, not $commit" >&2
    exit 1
  fi
  git --git-dir="$gitdir" archive "$commit" | tar -x -C "$work/src"
elif [ -f "$src/package/info" ]; then
  cp -R "$src/." "$work/src"
else
  echo "build-s6-rc: $src is neither a git directory with v$version, a source tree nor a tarball" >&2
  exit 1
fi
if ! grep -qx "version=$version" "$work/src/package/info"; then
  echo "build-s6-rc: $src is not s6-rc $version ($(grep '^version=' "$work/src/package/info" || echo 'no package/info'))" >&2
  exit 1
fi

jobs=$(nproc 2>/dev/null || echo 2)
(
  cd "$work/src"
  ./configure --prefix="$prefix" --livedir="$prefix/run" --with-sysdeps="$sysdeps" \
    --with-include="/usr/include/$arch" --with-lib="/usr/lib/$arch" --with-dynlib="/usr/lib/$arch"
  make -j"$jobs"
  make install
) >"$cache/build.log" 2>&1 || { echo "build-s6-rc: the build failed; see $cache/build.log" >&2; exit 1; }
"$prefix/bin/s6-rc-compile" -h >/dev/null 2>&1 || true # only that it runs at all
echo "$prefix/bin/s6-rc-compile"
