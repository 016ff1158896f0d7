#!/usr/bin/env bash
# Controller under load: N nodes heart-beating at 1 Hz over HTTPS, applies,
# scales and list calls, against a real `ampd controller` process; prints
# p50/p99 per call and the controller's CPU and peak RSS.
#   Benchmarks/controller.sh [NODES] [SECONDS] [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${1:-1000}; SECONDS_=${2:-30}; CONFIG=${3:-release}
swift build -c "$CONFIG" --product ampd >/dev/null
".build/$CONFIG/ampd" controller-bench --nodes "$NODES" --duration "$SECONDS_"
