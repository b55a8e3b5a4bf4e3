#!/usr/bin/env bash
# Issue 19, item 5: does Deep Noise Injection with the paper's additive noise transfer to the noise
# analog tiles really have? Full MNIST, lstm28:
#   0. calibrate each kind's three strengths on the committed conventional model so that each costs
#      it as much accuracy as additive σval 0.5, 0.7, 1.0 (results/noise_kinds/calibrate.py);
#   1. train lstm28 under output_relative, weight_read and programming noise at its three strengths
#      (the committed grid's recipe: Adam 2e-3, halved after 5 epochs without a new best, stop after 10);
#   2. cross-evaluate: every train kind's models (and the committed additive σtrain 0, 0.5, 0.7, 1.0
#      models) under every eval kind at that kind's three strengths, 40 repeats each;
#   3. an ADC resolution sweep (4–10 bits over ±16, which holds 99.9 % of every model's
#      pre-activations; no other noise) of the additive-trained models;
#   4. merge everything into results/noise_kinds.nc (dims train_noise × eval_noise) and render
#      REPRODUCTION.md's tables of it (dni reproduction: the noise-kinds-* and adc-bits blocks).
# Resumable: run it again after an interruption; finished checkpoints (and per-epoch training
# states) and finished points are kept. Many CPU-hours (9 trainings of about an hour, 16 × 40
# noisy evaluations of 10k digits per model): run it in the background, one thread per process:
#   OMP_NUM_THREADS=1 nohup results/run_noise_kinds.sh > noise_kinds.log 2>&1 &
# Stages one at a time, to spread the work over cores (one process per core; DNI_PREFETCH=0 then, as every
# core is busy): `train KIND...`, `cross TRAIN_KIND...` (its rows of the cross grid; "additive" = the
# committed models), `adc`, `merge`. Two cores, e.g.:
#   DNI_PREFETCH=0 nohup results/run_noise_kinds.sh train output_relative weight_read \; cross output_relative weight_read &
#   DNI_PREFETCH=0 nohup results/run_noise_kinds.sh cross additive \; adc \; train programming \; cross programming &
# and, when both are done, `results/run_noise_kinds.sh merge`. EVAL_KINDS="additive output_relative" limits
# `cross` to those eval kinds, so that one train kind's row can be split over two processes. A stage's arguments end at a ";" argument.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DNI_DATA_DIR:?set DNI_DATA_DIR to the folder holding MNIST/raw (torchvision layout)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
D=results/noise_kinds
KINDS=(output_relative weight_read programming)
ADDITIVE=(results/dni_paper_checkpoints/lstm28_sigma{0.00,0.50,0.70,1.00}_seed0.pt)
BOUND=16

[ -f "$D/strengths.json" ] || python "$D/calibrate.py"
strengths() { python -c "import json; print(','.join(f'{s:g}' for s in json.load(open('$D/strengths.json'))['strengths']['$1']))"; }

# 1. training (a sweep evaluating only σval 0 once: the models, in dni's checkpoint layout)
train() {
  for k in "$@"; do
    dni --quiet sweep --data mnist --preset lstm28 --lr 2e-3 --epochs 100 --patience 10 --lr-patience 5 \
      --train-noise "$k" --sigma-train "$(strengths "$k")" --sigma-val 0 --repeats 1 \
      --out "$D/train_$k.nc" --checkpoint-dir "$D/checkpoints"
  done
}

# 2. the cross grid: the rows of the given train kinds
cross() {
  for t in "$@"; do
    if [ "$t" = additive ]; then models=("${ADDITIVE[@]}"); else models=("$D"/checkpoints/lstm28_"$t"_sigma*_seed0.pt); fi
    for e in ${EVAL_KINDS:-additive ${KINDS[*]}}; do  # EVAL_KINDS="a b": only those columns (to split a row over cores)
      if [ "$t" = additive ] && [ "$e" = additive ]; then  # the committed grid's points: the same seeds, the same numbers
        [ -f "$D/additive__additive.nc" ] || python "$D/committed_points.py" results/dni_paper.nc "$D/additive__additive.nc" 0,0.5,0.7,1
        continue
      fi
      dni --quiet evaluate "${models[@]}" --data mnist --eval-noise "$e" --sigma-val "0,$(strengths "$e")" --repeats 40 \
        --draws per-point --out "$D/${t}__${e}.nc"
    done
  done
}

# 3. ADC resolution (deterministic: one repeat)
adc() {
  for bits in 4 5 6 7 8 9 10; do
    dni --quiet evaluate "${ADDITIVE[@]}" --data mnist --eval-noise "adc(bits=$bits,bound=$BOUND)" --sigma-val 0 --repeats 1 \
      --draws per-point --out "$D/adc_bits$bits.nc"
  done
}

# 4. one file (the cross grid and the ADC sweep), then REPRODUCTION.md's tables of it (dni.paper.cross_grid)
merge() {  # extends an existing noise_kinds.nc (its points must agree); parts still being filled add what they hold
  shopt -s nullglob
  local parts=("$D"/*__*.nc "$D"/adc_bits*.nc)
  if [ -f results/noise_kinds.nc ]; then dni merge results/noise_kinds.nc "${parts[@]}" --out results/noise_kinds.nc --kinds-layout
  else dni merge "${parts[@]}" --out results/noise_kinds.nc --kinds-layout; fi
  dni reproduction --no-figures
}

if [ $# -eq 0 ]; then
  train "${KINDS[@]}"; cross additive "${KINDS[@]}"; adc; merge
  exit 0
fi
while [ $# -gt 0 ]; do  # stage ARGS... [; stage ARGS...]
  stage=$1; shift
  args=()
  while [ $# -gt 0 ] && [ "$1" != ";" ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  case $stage in
    train|cross) "$stage" "${args[@]}" ;;
    adc|merge) "$stage" ;;
    *) echo "unknown stage $stage; stages: train KIND..., cross TRAIN_KIND..., adc, merge" >&2; exit 2 ;;
  esac
done
