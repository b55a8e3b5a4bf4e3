#!/usr/bin/env bash
# Presets of the paper's grid (results/run_paper_grid.sh) on a CUDA machine, within a time budget:
# per preset, the 11 σtrain models trained together (--batch-models; the grid script's settings),
# then evaluated at 11 σval × 40 repeats on the GPU. Several presets run at once, one process each:
# each process is bound by Python launching small kernels, so the GPU has room for all of them.
# Written for the device tool (a bare machine with torch, no network): the result files, the
# checkpoints (one tar) and the logs go to $OUT.
#
#   BUDGET=540 results/run_preset_gpu.sh PRESET [PRESET...]
#
# It starts from the repository's checkpoints and result files (results/dni_paper_checkpoints,
# results/sweeps): trained models are reused and evaluated points kept, so a preset whose models the
# CPUs trained is only evaluated here (about 1-2 s per point against a minute or more on 2 cores).
# Copy what comes back into those folders while no grid script works on the same preset.
#
# Needs, beside the repository: .whl/ with the wheels the machine lacks (h5netcdf, platformdirs)
# and .gpu/data/MNIST/{raw/*.gz, strokes/*.npz} (MNIST gzipped to fit the transfer, and the
# converted pen strokes); results/README.md says how they were made. If the budget runs out during
# training, the models that converged are kept (saved as each converges) and evaluated, and the run's
# state after its last epoch comes back in checkpoints.tar (PRESET_batched_seed0.pt.partial): put it in
# results/dni_paper_checkpoints and carry it to the next call, which continues the training from there.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: BUDGET=540 results/run_preset_gpu.sh PRESET [PRESET...]"; exit 2; }
budget=${BUDGET:-540}
[ "$budget" -ge 120 ] || { echo "BUDGET must be at least 120 seconds, got $budget"; exit 2; }
device=${DNI_DEVICE:-cuda}  # DNI_DEVICE=cpu DNI_DATA=subset: a dry run of this script's steps
data=${DNI_DATA:-mnist}
out=${OUT:?set OUT to the folder for the results}
for preset in "$@"; do
  grep -q "\b$preset:[^ ;]*" results/run_paper_grid.sh || { echo "no settings for $preset in results/run_paper_grid.sh"; exit 2; }
done

if [ "$device" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
  export PYTHONPATH=/tmp/site
  root=/tmp/dni_data/MNIST
  mkdir -p "$root/raw" && cp -r .gpu/data/MNIST/strokes "$root/"
  for f in .gpu/data/MNIST/raw/*.gz; do gunzip -c "$f" > "$root/raw/$(basename "$f" .gz)"; done
  export DNI_DATA_DIR=/tmp/dni_data
  nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
fi
export PYTHONUNBUFFERED=1
checkpoints=/tmp/dni_gpu_checkpoints
started=$SECONDS

run_preset() {  # run_preset PRESET: the sweep in the budget, then the converged models if time ran out
  local preset=$1 lr epochs patience lr_patience schedule=() status trained left
  IFS=: read -r _ lr epochs patience lr_patience <<< "$(grep -o "\b$preset:[^ ;]*" results/run_paper_grid.sh | head -1)"
  [ "$lr_patience" = - ] || schedule=(--lr-patience "$lr_patience")
  mkdir -p "$checkpoints/$preset" && rm -f "/tmp/$preset.log"
  # start from what the repository holds: its trained models are reused, its evaluated points kept
  cp results/dni_paper_checkpoints/"$preset"_sigma*_seed0.pt "$checkpoints/$preset/" 2>/dev/null
  # and a batched run cut off by an earlier call's budget goes on from its last epoch (when carried here)
  cp results/dni_paper_checkpoints/"$preset"_batched_seed0.pt.partial "$checkpoints/$preset/" 2>/dev/null
  [ ! -f "results/sweeps/$preset.nc" ] || cp "results/sweeps/$preset.nc" "$out/$preset.nc"
  sweep() {  # sweep SECONDS SIGMA_TRAIN
    timeout -s INT "$1" python3 -m dni.cli sweep --data "$data" --preset "$preset" --lr "$lr" --sigma-train "$2" \
      --sigma-val 0:1:0.1 --repeats 40 --epochs "$epochs" --patience "$patience" ${schedule[@]+"${schedule[@]}"} \
      --device "$device" --batch-models --out "$out/$preset.nc" --checkpoint-dir "$checkpoints/$preset" \
      2>&1 | tr '\r' '\n' >> "/tmp/$preset.log"
  }
  sweep $((budget - 60)) 0:1:0.1
  status=$?
  echo "$preset, all 11 σtrain: exit $status after $((SECONDS - started)) s"
  if [ "$status" != 0 ]; then  # out of time: evaluate the models that converged
    trained=$(ls "$checkpoints/$preset" | sed -n "s/^${preset}_sigma\([0-9.]*\)_seed0\.pt$/\1/p" | paste -sd, -)
    left=$((budget - (SECONDS - started) - 10))
    if [ -n "$trained" ] && [ "$left" -gt 10 ]; then
      sweep "$left" "$trained"
      echo "$preset, σtrain $trained: exit $? after $((SECONDS - started)) s"
    fi
  fi
}

for preset in "$@"; do run_preset "$preset" & done
wait
tar cf "$out/checkpoints.tar" -C "$checkpoints" .
for preset in "$@"; do
  echo "== $preset"; grep -a "reusing\|resuming\|rror" "/tmp/$preset.log" | tail -3
  grep -a "σtrain:\|^evaluate" "/tmp/$preset.log" | grep -av "batch/s\|s/batch" | tail -2
  { echo "== $preset"; cat "/tmp/$preset.log"; } >> "$out/sweeps.log"
done
tar tvf "$out/checkpoints.tar"; ls -la "$out"
