#!/usr/bin/env bash
# Live validation of the cost model and simulator, per routing policy: a real local cluster
# (controller, one agent with two one-core engine slots, gateway) serving the quickstart
# manifest with each `spec.routing.policy` in turn, driven by `ampd loadgen` with multi-round
# sessions at several rates; each run prints what was measured and, for the same sessions as
# served, what the planner's analytic model and the simulator (the same round engine as the
# gateway, same policy) predicted on the fitted cpu-1core profile. Co-located serving gets the
# same two slots as two decode instances, as the simulator's co-located baseline does.
#   Benchmarks/live-validation.sh [RATES] [SECONDS] [debug|release]
#   POLICIES="ampd static-pd" Benchmarks/live-validation.sh ...   (default: all five)
#   SLOWDOWN=2 CALIBRATE=1 Benchmarks/live-validation.sh ...
# SLOWDOWN runs every engine step that many times as long (`ampd up --engine-slowdown`): a
# machine slower than the one the profile was fitted on. CALIBRATE=1 predicts with the
# profile the controller calibrates from the engines' timed steps (`ampd get profile`) while
# the run goes on, as the live planner does (refreshed every 5 s; loadgen reads it when the
# load ends; a 40 s warm-up at the highest rate calibrates it first).
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-"0.1 0.3"}; DURATION=${2:-60}; CONFIG=${3:-release}
POLICIES=${POLICIES:-"ampd ampd-paper conditional-pd static-pd colocated"}
SLOWDOWN=${SLOWDOWN:-1}; CALIBRATE=${CALIBRATE:-0}
PORT=${PORT:-8090}
swift build -c "$CONFIG" --product ampd >/dev/null
BIN=".build/$CONFIG/ampd"
DIR=$(mktemp -d /tmp/ampd-live-XXXX)
UP=
trap '[ -n "$UP" ] && kill -TERM $UP 2>/dev/null; wait 2>/dev/null || true' EXIT
echo "# Live validation: $(nproc) cores, $(date -u +%Y-%m-%d), $CONFIG build, engine slowdown $SLOWDOWN, calibrated prediction $CALIBRATE"
for policy in $POLICIES; do
  manifest="$DIR/manifest-$policy.yaml"
  python3 - "$policy" Manifests/quickstart-cpu.yaml "$manifest" <<'PY'
import sys
policy, src, dst = sys.argv[1:]
s = open(src).read()
block = "  routing:\n    policy: ampd\n    alpha: 0.9\n    beta: 0.85\n    reorderWindow: 3\n"
assert block in s, "the quickstart's routing block changed"
if policy in ("ampd", "ampd-paper"):
    s = s.replace(block, block.replace("policy: ampd", "policy: " + policy))
else:
    s = s.replace(block, "  routing:\n    policy: %s\n" % policy)
if policy == "colocated":
    prefill = "  prefill:\n    replicas: 1\n    parallelism: {tensor: 1}\n    resources: {accelerator: cpu, count: 1}\n"
    assert prefill in s
    s = s.replace(prefill, "").replace("  decode:\n    replicas: 1\n", "  decode:\n    replicas: 2\n")
open(dst, "w").write(s)
PY
  "$BIN" up -f "$manifest" --agents 1 --slots 2 --port "$PORT" --dir "$DIR/$policy" --engine-slowdown "$SLOWDOWN" >"$DIR/up-$policy.log" 2>&1 &
  UP=$!
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && [ -f "$DIR/$policy/api-keys.csv" ] && break; sleep 1; done
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "cluster did not start; see $DIR"; exit 1; }
  export AMPD_API_KEY=$(grep -v '^#' "$DIR/$policy/api-keys.csv" | head -1 | cut -d, -f1)
  seed=11
  profile=()
  if [ "$CALIBRATE" = 1 ]; then
    # At the highest rate, long enough for 20 steps of each phase.
    "$BIN" loadgen --url "http://127.0.0.1:$PORT" --rate "${RATES##* }" --duration 40 --seed 99 >"$DIR/warmup-$policy.log"
  fi
  REFRESH=
  if [ "$CALIBRATE" = 1 ]; then
    profile=(--profiles "$DIR/profile-$policy.yaml" --hardware cpu-1core@default.smollm2)
    "$BIN" get profile smollm2 --config "$DIR/$policy/controller/client.json" >"$DIR/profile-$policy.yaml"
    ( while sleep 5; do
        "$BIN" get profile smollm2 --config "$DIR/$policy/controller/client.json" >"$DIR/profile-$policy.next" 2>/dev/null \
          && mv "$DIR/profile-$policy.next" "$DIR/profile-$policy.yaml"
      done ) &
    REFRESH=$!
  fi
  for rate in $RATES; do
    echo
    echo "## $policy, $rate sessions/s for $DURATION s (3 rounds of 200 then 60 prompt tokens, 32 decode tokens, think 1 s)"
    "$BIN" loadgen --url "http://127.0.0.1:$PORT" --rate "$rate" --duration "$DURATION" --seed "$seed" \
      --predict-prefill 1x1 --predict-decode 1x1 --predict-policy "$policy" --records "$DIR/rounds-$policy-$rate.jsonl" "${profile[@]}"
    if [ "$CALIBRATE" = 1 ]; then
      echo "Calibrated profile the prediction used:"; sed 's/^/    /' "$DIR/profile-$policy.yaml" | grep -E "name: cpu|TimeScale|kvHandling"
    fi
    seed=$((seed + 1))
  done
  [ -n "$REFRESH" ] && kill $REFRESH 2>/dev/null
  kill -TERM $UP; wait $UP || true; UP=
done
echo
echo "(cluster logs and per-round records: $DIR)"
