#!/usr/bin/env bash
# KV pool block transfer on loopback: mutual TLS beside plain TCP (same frames, same
# store, same run), with and without the pool's AES-256-GCM sealing, and the probe-hit
# path (a prefix the pool already holds is leased instead of sent). Writes
# Benchmarks/results/kvpool.md.
#   Benchmarks/kvpool.sh [SECONDS_PER_CASE] [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE=${1:-3}
CONFIG=${2:-release}
swift build -c "$CONFIG" --product ampd >/dev/null
OUT=Benchmarks/results/kvpool.md
{
  echo "# KV pool transfer: mutual TLS vs plain TCP ($(date -u +%Y-%m-%d), $(nproc) cores, $CONFIG build)"
  echo
  echo '```'
  ".build/$CONFIG/ampd" kvpool-bench --seconds "$SECONDS_PER_CASE"
  echo '```'
} | tee "$OUT"
