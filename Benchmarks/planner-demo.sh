#!/usr/bin/env bash
# The closed-loop planner on a machine slower than its profile: `ampd up` with the autoscaled
# quickstart on one agent with four one-core slots, every engine step stretched SLOWDOWN× (a
# slower machine), driven by `ampd loadgen` at RATE sessions/s with a 1 s TTFT / 50 ms TPOT SLO.
# Prints a row per planner run: seconds since the load started, the running plan, its
# predicted round attainment beside the one the gateway observed, the calibration, and what
# the planner concluded; then the load's summary and the planner's decision records.
#   Benchmarks/planner-demo.sh [RATE] [SECONDS] [debug|release]      (SLOWDOWN=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-0.4}; DURATION=${2:-75}; CONFIG=${3:-release}; SLOWDOWN=${SLOWDOWN:-2}; PORT=${PORT:-8095}
swift build -c "$CONFIG" --product ampd >/dev/null
BIN=".build/$CONFIG/ampd"
DIR=$(mktemp -d /tmp/ampd-planner-XXXX)
UP=; LOAD=
trap '[ -n "$LOAD" ] && kill $LOAD 2>/dev/null; [ -n "$UP" ] && kill -TERM $UP 2>/dev/null; wait 2>/dev/null || true' EXIT
"$BIN" up -f Manifests/quickstart-autoscaled.yaml --agents 1 --slots 4 --engine-slowdown "$SLOWDOWN" --port "$PORT" --dir "$DIR/up" >"$DIR/up.log" 2>&1 &
UP=$!
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && [ -f "$DIR/up/api-keys.csv" ] && break; sleep 1; done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "cluster did not start; see $DIR"; exit 1; }
export AMPD_API_KEY=$(grep -v '^#' "$DIR/up/api-keys.csv" | head -1 | cut -d, -f1)
export AMPD_CONFIG="$DIR/up/controller/client.json"
echo "# Planner demo: $(nproc) cores, $(date -u +%Y-%m-%d), $CONFIG build, engine slowdown $SLOWDOWN, $RATE sessions/s for $DURATION s"
echo
"$BIN" loadgen --url "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" --ttft-ms 1000 --tpot-ms 50 >"$DIR/loadgen.md" 2>&1 &
LOAD=$!
START=$(date +%s)
echo "| s | running | predicted (running plan) | observed | prefill × (steps) | decode × (steps) | cores shared | outcome | SLO / mismatch |"
echo "|---|---|---|---|---|---|---|---|---|"
last=
while kill -0 $LOAD 2>/dev/null; do
  "$BIN" get deployment smollm2-auto -o json >"$DIR/d.json" 2>/dev/null || true
  row=$(python3 - "$DIR/d.json" "$START" <<'PY'
import json, sys, time
try: d = json.load(open(sys.argv[1]))
except Exception: sys.exit(0)
p = (d.get("status") or {}).get("planner")
if not p: sys.exit(0)
def pct(x): return "-" if x is None else "%.1f%%" % (100 * x)
c = p.get("calibration") or {}
def ph(k):
    x = c.get(k) or {}
    return "%.2f (%d%s)" % (x.get("scale", 1), x.get("samples", 0), "" if x.get("inForce") else ", profile") if x else "-"
note = p.get("sloShortfall") or ""
if p.get("mismatch"): note = (note + "; " if note else "") + "MISMATCH " + p["mismatch"]
print(p["lastUpdateTime"] + "\t| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
    int(time.time()) - int(sys.argv[2]), p.get("plan") or "-", pct(p.get("runningPredictedRoundAttainment")),
    pct(p.get("observedRoundAttainment")), ph("prefill"), ph("decode"), c.get("coreSharing", "-"), p["outcome"], note))
PY
)
  if [ -n "$row" ] && [ "${row%%	*}" != "$last" ]; then last=${row%%	*}; echo "${row#*	}"; fi
  sleep 2
done
LOAD=
echo
cat "$DIR/loadgen.md"
echo
"$BIN" decisions smollm2-auto | grep -i planner | tail -12
echo
echo "(logs: $DIR)"
