#!/usr/bin/env bash
# One preset of the paper's grid (results/run_paper_grid.sh) on a CUDA machine, within a time budget:
# the 11 σtrain models trained together (--batch-models; same settings as the grid script), then
# evaluated at 11 σval × 40 repeats on the GPU. Written for the device tool (a bare machine with
# torch, no network): the result file, the checkpoints (one tar) and the log go to $OUT.
#
#   results/run_preset_gpu.sh PRESET [BUDGET_SECONDS]
#
# Needs, beside the repository: .whl/ with the wheels the machine lacks (h5netcdf, platformdirs)
# and .gpu/data/MNIST/{raw/*.gz, strokes/*.npz} (MNIST gzipped to fit the transfer, and the
# converted pen strokes); results/README.md says how they were made. If the budget runs out during
# training, the models that converged are kept (saved as each converges) and evaluated; the grid
# script on the CPU trains and evaluates the rest, reusing both.
set -uo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: results/run_preset_gpu.sh PRESET [BUDGET_SECONDS]}
budget=${2:-540}
device=${DNI_DEVICE:-cuda}  # DNI_DEVICE=cpu DNI_DATA=subset: a dry run of this script's steps
data=${DNI_DATA:-mnist}
out=${OUT:?set OUT to the folder for the results}
settings=$(grep -o "\b$preset:[^ ;]*" results/run_paper_grid.sh | head -1)
[ -n "$settings" ] || { echo "no settings for $preset in results/run_paper_grid.sh"; exit 2; }
IFS=: read -r _ lr epochs patience lr_patience <<< "$settings"
schedule=()
[ "$lr_patience" = - ] || schedule=(--lr-patience "$lr_patience")

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
mkdir -p "$checkpoints"
started=$SECONDS

sweep() {  # sweep SECONDS SIGMA_TRAIN
  timeout -s INT "$1" python3 -m dni.cli sweep --data "$data" --preset "$preset" --lr "$lr" --sigma-train "$2" \
    --sigma-val 0:1:0.1 --repeats 40 --epochs "$epochs" --patience "$patience" ${schedule[@]+"${schedule[@]}"} \
    --device "$device" --batch-models \
    --out "$out/$preset.nc" --checkpoint-dir "$checkpoints" 2>&1 | tr '\r' '\n' >> "$out/sweep.log"
}

sweep $((budget - 60)) 0:1:0.1
status=$?
echo "all 11 σtrain: exit $status after $((SECONDS - started)) s"
if [ "$status" != 0 ]; then  # out of time: evaluate the models that converged
  trained=$(ls "$checkpoints" | sed -n "s/^${preset}_sigma\([0-9.]*\)_seed0\.pt$/\1/p" | paste -sd, -)
  left=$((budget - (SECONDS - started) - 10))
  if [ -n "$trained" ] && [ "$left" -gt 10 ]; then
    sweep "$left" "$trained"
    echo "σtrain $trained: exit $? after $((SECONDS - started)) s"
  fi
fi
tar cf "$out/checkpoints.tar" -C "$checkpoints" .
grep -a "reusing\|resuming\|error\|Error" "$out/sweep.log" | tail -5
grep -a "σtrain\|^evaluate" "$out/sweep.log" | grep -av "batch/s\|s/batch" | tail -4
ls -la "$checkpoints" "$out"
