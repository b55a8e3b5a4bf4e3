#!/usr/bin/env bash
# Issue 22, item 3: re-evaluate the committed lstm28 models (results/dni_paper_checkpoints) with the
# shared draw scheme (ε shared across σval, dni/draws.py) into results/sweeps/lstm28_shared_draws.nc,
# for REPRODUCTION.md's comparison with the committed per-point numbers (results/dni_paper.nc):
# every (σtrain, σval) point should agree within |Δ| < 3 standard errors of the difference
# (SE² = s²_shared/40 + s²_committed/40), see results/compare_shared_draws.py.
#
# ~11 models × 10 noisy σval × 40 repeats × 10k digits: many hours on 2 cores. Resumable: run it
# again after an interruption; finished points are kept. The shared scheme evaluates the σval of one
# `dni evaluate` call together per model (one ε for all of them), and an interrupted model's points
# of that call start again; so the grid goes in groups of two σval: points land every model × group,
# at the cost of drawing ε five times per model instead of once. The numbers are the same either way
# (ε depends on (model, repeat, chunk) only; tests/test_eval_draws.py). Run it in the background:
#   OMP_NUM_THREADS=1 nohup results/reevaluate_shared_draws.sh > reeval.log 2>&1 &
# On two cores, run two halves side by side, the second into its own file, and merge them after:
#   OUT=results/sweeps/lstm28_shared_draws_b.nc results/reevaluate_shared_draws.sh 0.9,1 0.7,0.8
#   dni merge results/sweeps/lstm28_shared_draws.nc results/sweeps/lstm28_shared_draws_b.nc \
#       --out results/sweeps/lstm28_shared_draws.nc
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DNI_DATA_DIR:?set DNI_DATA_DIR to the folder holding MNIST/raw (torchvision layout)}"
mkdir -p results/sweeps
OUT="${OUT:-results/sweeps/lstm28_shared_draws.nc}"
GROUPS_OF_SIGMA=("$@")
[ ${#GROUPS_OF_SIGMA[@]} -gt 0 ] || GROUPS_OF_SIGMA=(0,0.1,0.2 0.3,0.4 0.5,0.6 0.7,0.8 0.9,1)
for sigmas in "${GROUPS_OF_SIGMA[@]}"; do
  dni --quiet evaluate results/dni_paper_checkpoints/lstm28_sigma*_seed0.pt --data mnist --sigma-val "$sigmas" --repeats 40 \
    --draws shared --out "$OUT"
done
python results/compare_shared_draws.py "$OUT" results/dni_paper.nc
