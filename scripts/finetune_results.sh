#!/usr/bin/env bash
# The README's results table: fine-tune every evaluation task from one starting point.
#
#   scripts/finetune_results.sh random      runs/results   # random initialisation (tiny)
#   scripts/finetune_results.sh pretrained  runs/results   # saved_models/electra-tiny-{novels,chinese}
#   scripts/finetune_results.sh minilm      runs/results   # the released MiniLM encoder (`make minilm`)
#   scripts/finetune_results.sh continued   runs/results   # MiniLM after continued ELECTRA pretraining
#   scripts/finetune_results.sh pretrained  runs/results en   # only the English tasks (or: zh)
#
# Every start uses the official recipe (`keras-electra finetune`'s defaults: LR 3e-4, layer-wise decay
# 0.8, 10% warm-up, batch 32, last epoch), seed 0 and the same data and lengths, with two exceptions the
# README's measurements support: the tiny pretrained models fine-tune at LR 1.2e-3 (the LR grid), and the
# two 22M-parameter real-weight starts see 2,000 training examples for one epoch (XQuAD: all 885
# questions, two epochs) so that a column fits about half an hour of two CPU cores. Their vocabulary is
# English, so they skip the Chinese tasks. Then `python scripts/results_table.py runs/results`.
set -euo pipefail
start=${1:?random, pretrained, minilm or continued}
out=${2:-runs/results}
languages=${3:-en zh}
data=${KERAS_ELECTRA_SHARED_DATA:-../shared/data}
cli=${KERAS_ELECTRA_CLI:-keras-electra}
# The starting points (override to try another run before it replaces saved_models/).
init_en=${KERAS_ELECTRA_INIT_EN:-saved_models/electra-tiny-novels}
init_zh=${KERAS_ELECTRA_INIT_ZH:-saved_models/electra-tiny-chinese}
minilm=${KERAS_ELECTRA_MINILM:-$HOME/.cache/keras_electra/minilm/hf}
continued=${KERAS_ELECTRA_CONTINUED:-runs/continued-novels}
real_weights=false
[[ $start == minilm || $start == continued ]] && real_weights=true

options() {  # options LANGUAGE -> the --init (and recipe) arguments for this start
    case $start in
        random)
            local vocab=bert_uncased_vocab.txt
            [[ $1 == zh ]] && vocab=bert_chinese_vocab.txt
            echo "--init random --preset tiny --vocab $data/vocab/$vocab" ;;
        pretrained)
            local init=$init_en
            [[ $1 == zh ]] && init=$init_zh
            echo "--init $init --learning-rate 1.2e-3" ;;
        minilm) echo "--init $minilm" ;;
        continued) echo "--init $continued" ;;
        *) echo "unknown start '$start': random, pretrained, minilm or continued" >&2; exit 2 ;;
    esac
}

budget() {  # budget TASK -> the real-weight starts' smaller budget (later options win)
    $real_weights || return 0
    if [[ $1 == xquad ]]; then echo "--epochs 2"; else echo "--max-train-examples 2000 --epochs 1"; fi
}

run() {  # run LANGUAGE TASK DATA [options...]
    local language=$1 task=$2 path=$3
    shift 3
    local dir=$out/$task-$start
    if [[ -f $dir/results.json ]]; then echo "skip $task ($dir/results.json exists)"; return; fi
    # shellcheck disable=SC2046
    $cli finetune --task "$task" --data "$path" $(options "$language") --output "$dir" --overwrite --seed 0 \
        --quiet "$@" $(budget "$task")
}

for language in $languages; do
    if [[ $language == en ]]; then
        run en sst2 "$data/glue/SST-2" --seq-length 64 --max-train-examples 8000
        run en cola "$data/glue/CoLA" --seq-length 64
        run en mrpc "$data/glue/MRPC" --seq-length 128
        run en stsb "$data/glue/STS-B" --seq-length 64
        run en conll2003 "$data/conll2003" --seq-length 128 --evaluate-test
        run en semeval "$data/semeval2010_task8" --seq-length 128
        run en xquad "$data/xquad" --seq-length 256 --doc-stride 128 --epochs 10
    elif ! $real_weights; then
        run zh chnsenticorp "$data/chnsenticorp" --seq-length 128
        run zh cluener "$data/cluener2020" --seq-length 64
    fi
done
