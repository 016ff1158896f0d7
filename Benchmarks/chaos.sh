#!/usr/bin/env bash
# ampd's standing fault suite: a local cluster (`ampd up --agents 3`: one prefill and two decode
# instances) serving 8 multi-round sessions while agents and the gateway are SIGKILLed; every
# answered round checked against the same messages sent fresh; 150 concurrent clients; malformed
# requests to the gateway and the controller; a matrix of certificates and tokens against the
# instance API, the KV endpoint, the controller and the gateway; then a controller SIGKILLed every
# 4 s under a minute of writes, its acknowledged writes checked. Prints a table and one headline:
# lost, silently wrong, accepted-unauthorized, crashed, 5xx.
#   Benchmarks/chaos.sh [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-debug}
swift build -c "$CONFIG" --product ampd >/dev/null
DIR=$(mktemp -d /tmp/ampd-chaos-XXXX)
echo "# ampd chaos, $(date -u +%Y-%m-%d), $CONFIG build (work directory: $DIR)"
python3 Benchmarks/chaos.py ".build/$CONFIG/ampd" "$DIR"
