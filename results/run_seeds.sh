#!/usr/bin/env bash
# Issue 34: independently trained replicates (training seeds 1, 2, …) of the models behind every
# headline claim, so that each claim can carry an interval across models, not one draw.
# Training only (--train-only), with each setting's committed recipe, into the folder where its
# seed-0 model lives (names end in _seed<k>.pt, so seed 0 is never touched); the evaluation of all
# seeds follows with `dni sweep --train-seeds …` once every model of a setting exists.
#   paper     lstm28 σtrain {0, 0.5, 1}; rnn28 {0, 0.5, 0.9, 1}; lstm_stroke50 {0, 0.9}
#   wd        the collapse explanation: lstm28 under weight decay 1e-3, σtrain 0 and 1.0
#   kinds     the noise-kinds answers' middle strengths: output_relative 0.78, programming 0.1
#             (additive 0.7 is in `paper`'s folder and trained there)
#   weight_read  the weight_read-trained middle model (σtrain 0.15) retrained with early stopping and
#             model selection on *clean* validation accuracy (--select-on clean), seeds 0 1 2 (SEEDS
#             ignored) → results/noise_kinds/weight_read_clean_checkpoints: selected under its own
#             training noise, seed 0 kept epoch 5 (0.15) and 3 (0.2), i.e. it was stopped before it
#             had learnt; clean selection lets it train until clean accuracy stops improving
#   weight_read_lr  the check that followed: the clean-selected weight_read models still stop at epoch 3–4,
#             because their training loss rises after it; one model (seed 0) at a quarter of the learning rate
#             (5e-4) → results/noise_kinds/weight_read_lr5e-4_checkpoints, to tell the noise from the step size
#   control   the weight-power control: lstm_stroke50 σtrain {0, 0.5, 1} at one fixed length, 30 epochs, no
#             early stopping (last weights kept), seeds 0 1 2 (SEEDS ignored: seed 0 is not committed for
#             this recipe) → results/seeds_control/checkpoints; noisier models also trained longer in the
#             grid, so only this separates σtrain from training length
# Resumable: the same command continues (finished checkpoints are reused; a model in training goes
# on from <checkpoint>.partial after its last finished epoch). One process per core, one thread:
#   SEEDS="1 2" OMP_NUM_THREADS=1 nohup results/run_seeds.sh paper wd kinds > /tmp/seeds.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DNI_DATA_DIR:?set DNI_DATA_DIR to the folder holding MNIST/raw (torchvision layout)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
SEEDS="${SEEDS:-1 2}"
LSTM="--lr 2e-3 --epochs 100 --patience 10 --lr-patience 5"
RNN="--lr 5e-4 --epochs 300 --patience 20 --lr-patience 10"
train() {  # train OUT CHECKPOINT_DIR FLAGS...: every seed of SEEDS, training only
  local out=$1 dir=$2; shift 2
  for s in $SEEDS; do
    echo "=== seed $s: $* → $dir ($(date -u +%FT%TZ))"
    dni --quiet sweep --data mnist --seed "$s" --train-only --out "$out" --checkpoint-dir "$dir" "$@"
  done
}
P=results/dni_paper_checkpoints
stage() {
  case "$1" in
    paper)
      train results/sweeps/seeds_lstm28.nc "$P" --preset lstm28 $LSTM --sigma-train 0,0.5,1
      train results/sweeps/seeds_lstm28.nc "$P" --preset lstm28 $LSTM --sigma-train 0.7
      train results/sweeps/seeds_rnn28.nc "$P" --preset rnn28 $RNN --sigma-train 0,0.5,0.9,1
      train results/sweeps/seeds_lstm_stroke50.nc "$P" --preset lstm_stroke50 $LSTM --sigma-train 0,0.9 ;;
    wd)
      train results/paper_recipe/seeds_wd.nc results/paper_recipe/weight_decay_1e-3_checkpoints --preset lstm28 $LSTM --weight-decay 1e-3 --sigma-train 0
      train results/paper_recipe/seeds_wd_dni.nc results/paper_recipe/dni/weight_decay_1e-3_checkpoints --preset lstm28 $LSTM --weight-decay 1e-3 --sigma-train 1 ;;
    kinds)
      train results/noise_kinds/seeds_train.nc results/noise_kinds/checkpoints --preset lstm28 $LSTM --train-noise output_relative --sigma-train 0.78
      train results/noise_kinds/seeds_train.nc results/noise_kinds/checkpoints --preset lstm28 $LSTM --train-noise programming --sigma-train 0.1 ;;
    weight_read)
      SEEDS="0 1 2" train results/noise_kinds/seeds_weight_read_clean.nc results/noise_kinds/weight_read_clean_checkpoints \
        --preset lstm28 $LSTM --train-noise weight_read --sigma-train 0.15 --select-on clean ;;
    weight_read_lr)
      SEEDS="0" train results/noise_kinds/seeds_weight_read_lr.nc results/noise_kinds/weight_read_lr5e-4_checkpoints \
        --preset lstm28 --lr 5e-4 --epochs 100 --patience 10 --lr-patience 5 --train-noise weight_read --sigma-train 0.15 --select-on clean ;;
    control)
      mkdir -p results/seeds_control
      SEEDS="0 1 2" train results/seeds_control/control.nc results/seeds_control/checkpoints --preset lstm_stroke50 \
        --lr 2e-3 --epochs 30 --lr-patience 5 --sigma-train 0,0.5,1 ;;
    *) echo "unknown stage '$1'; the stages are: paper wd kinds weight_read weight_read_lr control" >&2; exit 2 ;;
  esac
}
for s in "$@"; do case "$s" in paper|wd|kinds|weight_read|weight_read_lr|control) ;; *) echo "unknown stage '$s'; the stages are: paper wd kinds weight_read weight_read_lr control" >&2; exit 2 ;; esac; done
[ $# -gt 0 ] || set -- paper wd kinds weight_read weight_read_lr control
for s in "$@"; do stage "$s"; done
