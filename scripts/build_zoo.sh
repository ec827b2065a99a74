#!/usr/bin/env bash
# Rebuild the MiniLM SST-2 classifier of saved_models/minilm-sst2 and its TF Serving SavedModel.
#
#   scripts/build_zoo.sh [RUN_DIR]          # default runs/minilm-sst2
#
# 1. fetches MiniLM (keras_electra.utils.minilm; cached), 2. fine-tunes it on SST-2 with the
# command in saved_models/minilm-sst2/README.md (skipped when RUN_DIR already holds a model),
# 3. writes the TF Serving SavedModel to RUN_DIR/serving/minilm-sst2/1 (176 MiB: not committed),
# 4. re-exports saved_models/minilm-sst2/model.tflite (dynamic-range int8, tokenises on the device)
#    and recomputes the slice score in its card.json.
# Fine-tuning takes ~9 min on 2 CPU cores (load ~3); with seed 0 it reproduces the shipped model up to
# the CPU's rounding.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/minilm-sst2}
PY=${PYTHON:-python}
DATA=${KERAS_ELECTRA_SHARED_DATA:-../shared/data}
KE=("$PY" -m keras_electra.cli)
MINILM=$("$PY" -m keras_electra.utils.minilm | tail -n 1)
if [ ! -f "$RUN/model.keras" ]; then
  "${KE[@]}" finetune --task sst2 --data "$DATA/glue/SST-2" --init "$MINILM" --output "$RUN" \
    --seq-length 64 --max-train-examples 8000 --epochs 1 --batch-size 16 --learning-rate 6e-4 \
    --adam-bias-correction --seed 0 --quiet
fi
"${KE[@]}" export --model "$RUN" --format saved_model --output "$RUN/serving/minilm-sst2"
"${KE[@]}" export --model "$RUN" --format tflite --tflite-input text --quantize dynamic \
  --output saved_models/minilm-sst2/model.tflite
"$PY" -m keras_electra.export.zoo saved_models/minilm-sst2 --update
