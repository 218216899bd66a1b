#!/bin/bash
# demo.sh: installs what is missing, builds, and runs the main job on loopback.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/deps.sh"
bash "$top/scripts/build.sh"
build=${MXLANE_BUILD:-$top/build}
echo "== mxlanectl config (the effective configuration with conf/mxlane.conf)"
"$build/qrunner/mxlanectl" -c "$top/conf/mxlane.conf" config
