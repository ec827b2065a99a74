#!/usr/bin/env bash
# On the GPU machine, from the repository root (the device tool's working directory):
#   bash benchmarks/accelerator/run.sh [accelerator.py run options, e.g. --budget-s 300]
# with `benchmarks/accelerator/carry` carried (built here by `accelerator.py pack`).
# Uses the Python packages the machine has and installs from the carried wheels only the missing
# ones; runs keras_electra from the carried source; writes metrics.json, weights/ and log.txt to $OUT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CARRY="${CARRY:-$HERE/carry}"
OUT="${OUT:-$REPO/runs/accelerator_out}"
PYTHON="${PYTHON:-python3}"
# The dry run points this at a wrapper that blocks TensorFlow before running accelerator.py.
SCRIPT="${ACCELERATOR_PYTHON_SCRIPT:-$HERE/accelerator.py}"
mkdir -p "$OUT"

if [ ! -f "$CARRY/shards/metadata.json" ]; then
    echo "run.sh: no shards in $CARRY (run \`accelerator.py pack\` here and carry benchmarks/accelerator/carry)" >&2
    exit 2
fi

# Wheels: install only what the machine lacks (module name = the wheel's name).
missing=()
for wheel in "$CARRY"/wheels/*.whl; do
    [ -e "$wheel" ] || continue
    module="$(basename "$wheel" | cut -d- -f1)"
    if ! "$PYTHON" -c "import $module" 2>/dev/null; then
        missing+=("$wheel")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "run.sh: installing ${#missing[@]} carried wheel(s): $(for w in "${missing[@]}"; do basename "$w"; done | tr '\n' ' ')"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "${missing[@]}"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# keras_electra: the carried source first (what pack saw), else the working tree.
export PYTHONPATH="$CARRY/src:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
export PYTHONUNBUFFERED=1
export TF_CPP_MIN_LOG_LEVEL=2

"$PYTHON" "$SCRIPT" run --carry "$CARRY" --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
