#!/bin/bash
# build.sh: configures (once) and builds mxlane out of tree in ./build (or $MXLANE_BUILD).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MXLANE_BUILD:-$top/build}
cd "$top"
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
  "$top/configure" --enable-werror ${MXLANE_CONFIGURE_FLAGS:-} > configure.out 2>&1 || { cat configure.out; exit 1; }
  sed -n '/configured$/,$p' configure.out
fi
make -j"$(nproc)" >make.out 2>&1 || { tail -40 make.out; echo "build failed (full log: $build/make.out)"; exit 1; }
echo "build: ok ($build)"
