#!/usr/bin/env bash
# Dispatcher decision latency, planner solve time (8, 64, 512 devices) and
# simulator speed (one simulated hour of a 64-accelerator cluster).
#   Benchmarks/policy.sh [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-release}
swift build -c "$CONFIG" --product ampd >/dev/null
".build/$CONFIG/ampd" policy-bench
