#!/usr/bin/env bash
# Issue 34: evaluate the independently trained models of every headline setting (training seeds 0 1 2,
# trained by results/run_seeds.sh) on the full 10k MNIST test digits, σval 0:1:0.1, 40 repeats with
# shared draws (every model of a file sees the same noise at each (σval, repeat) for a given training
# seed, so settings compare paired), into results/seeds/<name>.nc with a train_seed dim.
# A model whose checkpoint is missing is trained first (same recipe as run_seeds.sh), so run a stage
# only once run_seeds.sh has finished its models, or let it train them here. Resumable: the same
# command keeps every finished point of its --out and evaluates the rest.
#   lstm28 | rnn28 | lstm_stroke50 | wd — the settings of run_seeds.sh's `paper` and `wd` stages (wd = wd0,
#   the conventional model, then wd1, σtrain 1.0)
#   kinds     the models of the noise-kinds answers — the conventional model and additive σtrain 0.5, 0.7, 1.0
#             (the paper's noise), and the other kinds' middle-strength models: output_relative 0.78, programming
#             0.1, weight_read 0.15 selected on clean validation — noiseless and under each kind at its middle
#             strength (results/noise_kinds/strengths.json), into results/seeds/kinds/<train>__<eval>.nc
#             KINDS="additive output_relative" limits it to those training kinds (whose seeds are all trained)
#   control   the fixed-length weight-power control (σval 0, one pass: the weight power and clean accuracy)
#   SIGMAS overrides the σtrain list of the one stage given (lstm28, rnn28 or lstm_stroke50), e.g.
#   SIGMAS=0,0.5 results/run_seeds_eval.sh lstm28 while σtrain 1's seeds still train; with several stages
#   it would reach each of them.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DNI_DATA_DIR:?set DNI_DATA_DIR to the folder holding MNIST/raw (torchvision layout)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
TRAIN_SEEDS="${TRAIN_SEEDS:-0,1,2}"
LSTM="--lr 2e-3 --epochs 100 --patience 10 --lr-patience 5"
RNN="--lr 5e-4 --epochs 300 --patience 20 --lr-patience 10"
EVAL="--sigma-val 0:1:0.1 --repeats 40 --draws shared --train-seeds $TRAIN_SEEDS"
P=results/dni_paper_checkpoints
sweep() {  # sweep OUT CHECKPOINT_DIR DEFAULT_SIGMAS FLAGS...
  # A new file is written in <folder>/in_progress/ and moved beside the others once its sweep has finished, so that
  # dni reproduction (which reads every *.nc of results/seeds and results/seeds/kinds) never quotes a half-run file;
  # an existing file is extended in place (resume keeps its finished points).
  local final=$1 dir=$2 sigmas=${SIGMAS:-$3}; shift 3
  local out=$final
  [ -e "$final" ] || { out="$(dirname "$final")/in_progress/$(basename "$final")"; mkdir -p "$(dirname "$out")"; }
  echo "=== $* σtrain $sigmas → $final ($(date -u +%FT%TZ))"
  dni --quiet sweep --data mnist ${EVAL_OVERRIDE:-$EVAL} --out "$out" --checkpoint-dir "$dir" --sigma-train "$sigmas" "$@"
  [ "$out" = "$final" ] || mv "$out" "$final"
}
mkdir -p results/seeds
middle() {  # middle KIND: the middle of its three calibrated strengths (results/noise_kinds/strengths.json; additive: 0.7)
  python -c "import json; print(f\"{json.load(open('results/noise_kinds/strengths.json'))['strengths'].get('$1', [0.5, 0.7, 1.0])[1]:g}\")"
}
stage() {
  case "$1" in
    lstm28) sweep results/seeds/lstm28.nc "$P" 0,0.5,1 --preset lstm28 $LSTM ;;
    rnn28) sweep results/seeds/rnn28.nc "$P" 0,0.5,0.9,1 --preset rnn28 $RNN ;;
    lstm_stroke50) sweep results/seeds/lstm_stroke50.nc "$P" 0,0.9 --preset lstm_stroke50 $LSTM ;;
    wd) stage wd0; stage wd1 ;;
    wd0) SIGMAS= sweep results/seeds/weight_decay_1e-3.nc results/paper_recipe/weight_decay_1e-3_checkpoints 0 \
        --preset lstm28 $LSTM --weight-decay 1e-3 ;;
    wd1) SIGMAS= sweep results/seeds/weight_decay_1e-3_dni.nc results/paper_recipe/dni/weight_decay_1e-3_checkpoints 1 \
        --preset lstm28 $LSTM --weight-decay 1e-3 ;;
    kinds)
      mkdir -p results/seeds/kinds
      local models=("additive 0,0.5,0.7,1 $P" "output_relative 0.78 results/noise_kinds/checkpoints"
                    "programming 0.1 results/noise_kinds/checkpoints" "weight_read 0.15 results/noise_kinds/weight_read_clean_checkpoints")
      for model in "${models[@]}"; do
        read -r t st dir <<< "$model"
        [[ " ${KINDS:-additive output_relative programming weight_read} " == *" $t "* ]] || continue
        local select=(); [ "$t" = weight_read ] && select=(--select-on clean)
        for e in additive output_relative programming weight_read; do
          EVAL_OVERRIDE="--sigma-val 0,$(middle "$e") --repeats 40 --draws shared --train-seeds $TRAIN_SEEDS" SIGMAS= \
            sweep "results/seeds/kinds/${t}__${e}.nc" "$dir" "$st" --preset lstm28 $LSTM --train-noise "$t" "${select[@]}" --eval-noise "$e"
        done
      done ;;
    control)
      EVAL_OVERRIDE="--sigma-val 0 --repeats 1 --train-seeds $TRAIN_SEEDS" SIGMAS= sweep results/seeds/control_lstm_stroke50.nc \
        results/seeds_control/checkpoints 0,0.5,1 --preset lstm_stroke50 --lr 2e-3 --epochs 30 --lr-patience 5 ;;
    *) echo "unknown stage '$1'; the stages are: lstm28 rnn28 lstm_stroke50 wd (= wd0 wd1) kinds control" >&2; exit 2 ;;
  esac
}
for s in "$@"; do case "$s" in lstm28|rnn28|lstm_stroke50|wd|wd0|wd1|kinds|control) ;; *) echo "unknown stage '$s'; the stages are: lstm28 rnn28 lstm_stroke50 wd (= wd0 wd1) kinds control" >&2; exit 2 ;; esac; done
[ $# -gt 0 ] || set -- lstm28 wd rnn28 lstm_stroke50 kinds control
for s in "$@"; do stage "$s"; done
