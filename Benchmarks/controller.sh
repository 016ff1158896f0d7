#!/usr/bin/env bash
# Controller under load: N nodes heart-beating at 1 Hz over HTTPS, applies, scales and list
# calls, against real `ampd controller` processes; prints p50/p99 per call and each process's
# CPU and peak RSS. Two configurations in one run: one replica on SQLite, then (with etcd
# installed: apt install etcd-server) three replicas on one etcd member, measured with etcd.
#   Benchmarks/controller.sh [NODES] [SECONDS] [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${1:-1000}; SECONDS_=${2:-30}; CONFIG=${3:-release}
swift build -c "$CONFIG" --product ampd >/dev/null
AMPD=".build/$CONFIG/ampd"
"$AMPD" controller-bench --nodes "$NODES" --duration "$SECONDS_"
echo
if ! command -v etcd >/dev/null; then
  echo "etcd not installed: skipping the three replicas on etcd (apt install etcd-server)"
  exit 0
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d); CLIENT=$(free_port); PEER=$(free_port)
etcd --name bench --data-dir "$DIR/etcd" --log-level warn \
  --listen-client-urls "http://127.0.0.1:$CLIENT" --advertise-client-urls "http://127.0.0.1:$CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PEER" \
  --initial-cluster "bench=http://127.0.0.1:$PEER" >"$DIR/etcd.log" 2>&1 &
ETCD=$!
trap 'kill $ETCD 2>/dev/null; wait $ETCD 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$CLIENT/health" && break; sleep 0.1; done
"$AMPD" controller-bench --nodes "$NODES" --duration "$SECONDS_" --store "etcd://127.0.0.1:$CLIENT/bench" --replicas 3 --measure-pid "etcd=$ETCD"
