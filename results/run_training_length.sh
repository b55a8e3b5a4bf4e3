#!/usr/bin/env bash
# A controlled check for REPRODUCTION.md ("Where we differ"): does the conventional lstm28 model
# (σtrain 0) grow more robust to inference noise the longer it trains, as its weights grow?
# The same model (seed 0, same data order) trained for 1, 2, 4 and 8 epochs with no early stop,
# each evaluated at σval 0, 0.5 and 1 with 40 repeats on the full MNIST test set.
# About 16 min on 2 cores. Resumable like any sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DNI_DATA_DIR:?set DNI_DATA_DIR to the folder holding MNIST/raw (torchvision layout)}"
for epochs in 1 2 4 8; do
  dni sweep --data mnist --preset lstm28 --sigma-train 0 --sigma-val 0,0.5,1 --repeats 40 \
    --epochs "$epochs" --out "results/training_length/lstm28_epochs$epochs.nc"
done
