#!/bin/sh
# Builds one of skarnet's packages from its source into .cache/NAME/VERSION (gitignored),
# against Debian bookworm's libraries, for the benchmarks that run the real s6 beside t6:
#
#   apt-get install -y skalibs-dev libexecline-dev libs6-dev
#   (skalibs 2.13.1.1, execline 2.9.3.0, s6 2.11.3.2)
#
# Usage: scripts/bench/build-skarnet.sh NAME VERSION COMMIT BUILT SOURCE [CONFIGURE-ARG…]
#   NAME     the package: s6-rc, s6-linux-init
#   COMMIT   the commit its tag vVERSION must name (a tag moved elsewhere is refused)
#   BUILT    a file under the prefix whose presence means the build is done (bin/…)
#   SOURCE   a git directory of skarnet/NAME (bare or not) holding the tag, an unpacked
#            NAME-VERSION source tree, its .tar.gz, or empty: the tag is cloned from GitHub
# Prints the installation prefix. Idempotent: an existing build is reused
# (T6_SKARNET_REBUILD=1 builds again). Nothing of the source enters the repository.
# build-s6-rc.sh and build-s6-linux-init.sh say which version each benchmark wants.
set -eu
name=$1 version=$2 commit=$3 built=$4 src=$5
shift 5
here=$(cd "$(dirname "$0")" && pwd)
cache=$(mkdir -p "$here/../../.cache/$name" && cd "$here/../../.cache/$name" && pwd)
prefix="$cache/$version"
if [ "${T6_SKARNET_REBUILD:-}" != 1 ] && [ -e "$prefix/$built" ]; then
  echo "$prefix"
  exit 0
fi
fail() { echo "build-$name: $*" >&2; exit 1; }

# The Debian multiarch directories of the -dev packages (headers, libraries, sysdeps).
arch=$(gcc -print-multiarch 2>/dev/null || true)
[ -n "$arch" ] || arch=$(uname -m)-linux-gnu
sysdeps="/usr/lib/$arch/skalibs/sysdeps"
for need in "$sysdeps/sysdeps" "/usr/include/$arch/skalibs/skalibs.h" "/usr/include/$arch/execline/execline.h" "/usr/include/$arch/s6/s6.h"; do
  [ -e "$need" ] || fail "$need is missing: apt-get install -y skalibs-dev libexecline-dev libs6-dev"
done

work="$cache/.build.$$"
rm -rf "$work" && mkdir -p "$work/src"
trap 'rm -rf "$work"' EXIT
if [ -z "$src" ]; then
  git clone -q --depth 1 --branch "v$version" "https://github.com/skarnet/$name.git" "$work/git" >&2
  src="$work/git"
fi
if [ -f "$src" ]; then
  tar -xzf "$src" -C "$work/src" --strip-components=1
elif git --git-dir="$src" rev-parse -q --verify "v$version^{commit}" >/dev/null 2>&1 \
  || git --git-dir="$src/.git" rev-parse -q --verify "v$version^{commit}" >/dev/null 2>&1; then
  gitdir=$src
  [ -d "$src/.git" ] && gitdir="$src/.git"
  got=$(git --git-dir="$gitdir" rev-parse "v$version^{commit}")
  [ "$got" = "$commit" ] || fail "tag v$version is $got in $src, not $commit"
  git --git-dir="$gitdir" archive "$commit" | tar -x -C "$work/src"
elif [ -f "$src/package/info" ]; then
  cp -R "$src/." "$work/src"
else
  fail "$src is neither a git directory with v$version, a source tree nor a tarball"
fi
grep -qx "version=$version" "$work/src/package/info" \
  || fail "$src is not $name $version ($(grep '^version=' "$work/src/package/info" || echo 'no package/info'))"

jobs=$(nproc 2>/dev/null || echo 2)
(
  cd "$work/src"
  ./configure --prefix="$prefix" "$@" --with-sysdeps="$sysdeps" \
    --with-include="/usr/include/$arch" --with-lib="/usr/lib/$arch" --with-dynlib="/usr/lib/$arch"
  make -j"$jobs"
  make install
) >"$cache/build.log" 2>&1 || fail "the build failed; see $cache/build.log"
echo "$prefix"
