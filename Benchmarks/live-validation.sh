#!/usr/bin/env bash
# Live validation of the cost model and simulator: a real local cluster
# (controller, one agent running a prefill and a decode instance of the native
# engine, gateway with the AMPD dispatcher) driven by `ampd loadgen` with
# multi-round sessions at several rates; each run prints what was measured and,
# for the same sessions as served, what the planner's analytic model and the
# simulator predicted (SmolLM2-135M on the fitted cpu-1core profile: each instance runs one kernel thread).
#   Benchmarks/live-validation.sh [RATES] [SECONDS] [debug|release]
#   (default "0.02 0.05 0.1" sessions/s, 60 s each, release)
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-"0.02 0.05 0.1"}; DURATION=${2:-60}; CONFIG=${3:-release}
PORT=${PORT:-8090}
swift build -c "$CONFIG" --product ampd >/dev/null
BIN=".build/$CONFIG/ampd"
DIR=$(mktemp -d /tmp/ampd-live-XXXX)
"$BIN" up --agents 1 --slots 2 --port "$PORT" --dir "$DIR" >"$DIR/up.log" 2>&1 &
UP=$!
trap 'kill -TERM $UP 2>/dev/null; wait $UP 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null || { echo "cluster did not start; see $DIR"; exit 1; }
echo "# Live validation: $(nproc) cores, $(date -u +%Y-%m-%d), $CONFIG build"
seed=11
for rate in $RATES; do
  echo
  echo "## $rate sessions/s for $DURATION s (3 rounds of 200 then 60 prompt tokens, 32 decode tokens, think 1 s)"
  "$BIN" loadgen --url "http://127.0.0.1:$PORT" --rate "$rate" --duration "$DURATION" --seed "$seed" \
    --predict-prefill 1x1 --predict-decode 1x1 --records "$DIR/rounds-$rate.jsonl"
  seed=$((seed + 1))
done
echo
echo "(cluster logs and per-round records: $DIR)"
