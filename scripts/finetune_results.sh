#!/usr/bin/env bash
# The README's results table: fine-tune every evaluation task from one starting point.
#
#   scripts/finetune_results.sh random      runs/results   # random initialisation (tiny)
#   scripts/finetune_results.sh pretrained  runs/results   # saved_models/electra-tiny-{novels,chinese}
#   scripts/finetune_results.sh pretrained  runs/results en   # only the English tasks (or: zh)
#
# Both starts use the same data, lengths, epochs, seed and the paper's recipe (LR 3e-4, layer-wise
# decay 0.8, 10% warm-up, batch 32); then `python scripts/results_table.py runs/results` prints the table.
set -euo pipefail
start=${1:?random or pretrained}
out=${2:-runs/results}
languages=${3:-en zh}
data=${KERAS_ELECTRA_SHARED_DATA:-../shared/data}
cli=${KERAS_ELECTRA_CLI:-keras-electra}
# The pretrained starts (override to try another pretraining run before it replaces saved_models/).
init_en=${KERAS_ELECTRA_INIT_EN:-saved_models/electra-tiny-novels}
init_zh=${KERAS_ELECTRA_INIT_ZH:-saved_models/electra-tiny-chinese}

init() {  # init LANGUAGE -> the --init arguments for this start
    if [[ $start == random ]]; then
        local vocab=bert_uncased_vocab.txt
        [[ $1 == zh ]] && vocab=bert_chinese_vocab.txt
        echo "--init random --preset tiny --vocab $data/vocab/$vocab"
    elif [[ $1 == zh ]]; then
        echo "--init $init_zh"
    else
        echo "--init $init_en"
    fi
}

run() {  # run LANGUAGE TASK DATA [options...]
    local language=$1 task=$2 path=$3
    shift 3
    local dir=$out/$task-$start
    if [[ -f $dir/results.json ]]; then echo "skip $task ($dir/results.json exists)"; return; fi
    # shellcheck disable=SC2046
    # The recipe the README's table was made with (before the official defaults of issue 13).
    $cli finetune --task "$task" --data "$path" $(init "$language") --output "$dir" --overwrite --seed 0 --quiet \
        --protocol best-dev --adam-bias-correction --default-initializer truncated_normal --no-double-unordered "$@"
}

for language in $languages; do
    if [[ $language == en ]]; then
        run en sst2 "$data/glue/SST-2" --seq-length 64 --max-train-examples 8000
        run en cola "$data/glue/CoLA" --seq-length 64
        run en mrpc "$data/glue/MRPC" --seq-length 128
        run en stsb "$data/glue/STS-B" --seq-length 64
        run en conll2003 "$data/conll2003" --seq-length 128 --evaluate-test
        run en semeval "$data/semeval2010_task8" --seq-length 128
        run en xquad "$data/xquad" --seq-length 256 --doc-stride 128 --epochs 10 --head huggingface
    else
        run zh chnsenticorp "$data/chnsenticorp" --seq-length 128
        run zh cluener "$data/cluener2020" --seq-length 64
    fi
done
