#!/bin/sh
# Builds the real s6-linux-init 1.1.1.0 from skarnet's source into .cache/s6-linux-init/
# (gitignored), so bench/boot.mjs can boot the real s6 stack beside t6
# (scripts/bench/build-s6-image.mjs). Debian bookworm does not package s6-linux-init;
# build-skarnet.sh builds it against the libraries Debian has (skalibs-dev
# libexecline-dev libs6-dev; the image also needs `s6 execline`).
#
# Usage: scripts/bench/build-s6-linux-init.sh [SOURCE]
#   SOURCE (or $S6_LINUX_INIT_SRC): a git directory of skarnet/s6-linux-init (bare or not)
#   holding the tag v1.1.1.0, or an unpacked s6-linux-init-1.1.1.0 source tree, or its
#   .tar.gz. Without one, the tag is cloned from https://github.com/skarnet/s6-linux-init.
# Prints the installation prefix (bin/s6-linux-init-maker is under it; T6_SKARNET_REBUILD=1
# builds again).
#
# Built with --enable-absolute-paths: the boot tree's bin/init runs before any PATH is set
# (the kernel gives init none), so it must name s6-linux-init by its full path; the image
# carries this prefix at the same path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/build-skarnet.sh" s6-linux-init 1.1.1.0 d6a69ea429b367524f5776c3b7a4caa286c6a8c9 bin/s6-linux-init-maker "${1:-${S6_LINUX_INIT_SRC:-}}" \
  --enable-absolute-paths
