#!/bin/sh
# Builds the real s6-rc 0.5.4.1 from skarnet's source into .cache/s6-rc/ (gitignored), so
# bench/rc-compile.mjs can run s6-rc-compile beside t6-rc-compile and bench/boot.mjs can boot
# the real s6 stack. Debian bookworm does not package s6-rc; build-skarnet.sh builds it
# against the libraries Debian has (skalibs-dev libexecline-dev libs6-dev).
#
# Usage: scripts/bench/build-s6-rc.sh [SOURCE]
#   SOURCE (or $S6_RC_SRC): a git directory of skarnet/s6-rc (bare or not) holding the tag
#   v0.5.4.1, or an unpacked s6-rc-0.5.4.1 source tree, or its .tar.gz. Without one, the
#   tag is cloned from https://github.com/skarnet/s6-rc.
# Prints the path of the installed s6-rc-compile (T6_SKARNET_REBUILD=1 builds again).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# --livedir under the prefix: nothing of the benchmark's s6-rc touches the machine's /run.
prefix=$("$here/build-skarnet.sh" s6-rc 0.5.4.1 5847de2ceed355a9ac7d1fe7e16c28de1dd99c32 bin/s6-rc-compile "${1:-${S6_RC_SRC:-}}" \
  --livedir="$(cd "$here/../.." && pwd)/.cache/s6-rc/0.5.4.1/run")
echo "$prefix/bin/s6-rc-compile"
