#!/usr/bin/env bash
# The paper's full experiment on full MNIST (issue 6): lstm28, rnn28 and lstm_stroke50, each
# 11 σtrain (0.0…1.0) × 11 σval × 40 repeats, then the merged result set and REPRODUCTION.md.
#
# Resumable: run it again after an interruption; finished checkpoints and (model, σval) points are
# kept. Needs full MNIST in torchvision layout under $DNI_DATA_DIR (e.g. ../shared/data).
# Takes many CPU-hours on 2 cores (see results/README.md); run it in the background, e.g.
#   nohup results/run_paper_grid.sh > paper_grid.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DNI_DATA_DIR:?set DNI_DATA_DIR to the folder holding MNIST/raw (torchvision layout)}"
mkdir -p results/sweeps
# Per preset: Adam learning rate, most epochs, patience (the convergence criterion) and lr patience
# (halve the rate after that many epochs without a new best; "-" keeps it constant). Validation
# accuracy swings from epoch to epoch, so a short patience stops models that are still learning
# (results/README.md): the LSTMs start at 2e-3, halve it after 5 epochs without a new best and stop
# after 10; the vanilla RNN learns slowly and swings more: 5e-4, halved after 10, stop after 20.
GRID=(rnn28:5e-4:300:20:10 lstm28:2e-3:100:10:5 lstm_stroke50:2e-3:100:10:5)

# --draws per-point: the committed numbers were evaluated with fresh noise per (σval, repeat); new
# results default to ε shared across σval (issue 22, dni/draws.py), which a resumed file would refuse.
quiet=()
sweep() {  # sweep SETTINGS [extra dni sweep arguments]
  local preset lr epochs patience lr_patience schedule=()
  IFS=: read -r preset lr epochs patience lr_patience <<< "$1"
  shift
  [ "$lr_patience" = - ] || schedule=(--lr-patience "$lr_patience")
  dni ${quiet[@]+"${quiet[@]}"} sweep --data mnist --preset "$preset" --lr "$lr" --sigma-train 0:1:0.1 --sigma-val 0:1:0.1 --repeats 40 \
    --epochs "$epochs" --patience "$patience" ${schedule[@]+"${schedule[@]}"} --draws per-point \
    --out "results/sweeps/$preset.nc" --checkpoint-dir results/dni_paper_checkpoints "$@"
}

# One process per core, one torch thread each: on 2 cores this trains more per hour than one
# process on both (README, Speed). With 2 cores or more each sweep runs on a Dask LocalCluster of
# that many worker processes (--workers; README, "Three ways to run a sweep"), which split its
# training and evaluation; this process alone writes the checkpoints and the result file.
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"  # (nproc itself obeys OMP_NUM_THREADS)
workers=()
[ "$cores" -lt 2 ] || workers=(--workers "$cores")
for settings in "${GRID[@]}"; do
  sweep "$settings" ${workers[@]+"${workers[@]}"}
done
dni merge results/sweeps/lstm28.nc results/sweeps/rnn28.nc results/sweeps/lstm_stroke50.nc --out results/dni_paper.nc
dni reproduction results/dni_paper.nc --doc REPRODUCTION.md
