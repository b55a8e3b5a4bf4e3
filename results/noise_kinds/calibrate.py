"""Calibrate the strengths of the noise-kind experiment (issue 19, item 5).

Each kind's strength σ means something different (additive: σ; output_relative: σ·max|x|;
weight_read and programming: σ·max|W| per weight), so "the same σ" does not compare kinds. We
calibrate on the committed conventional model (lstm28, σtrain 0, full MNIST): for each kind, the
three strengths at which that model loses as much accuracy as under the paper's additive noise at
σval 0.5, 0.7 and 1.0 (committed: 98.0 %, 95.7 %, 86.2 %, from 99.1 % clean). Method: evaluate the
model under the kind on a grid of strengths (5 repeats, 10k test digits, per-point draws), then
interpolate the mean accuracy linearly in log σ to each target; the strengths are rounded to two
significant digits. Writes ``calibration.nc`` (resumable: rerun after an interruption) and
``strengths.json``.

    DNI_DATA_DIR=... OMP_NUM_THREADS=1 python results/noise_kinds/calibrate.py
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from dni.evaluation.evaluate import evaluate_into  # noqa: E402
from dni.util.io import atomic_path  # noqa: E402
from dni.store.results import load_results  # noqa: E402
from dni.store.checkpoints import load_checkpoint  # noqa: E402

CHECKPOINT = HERE.parent / "dni_paper_checkpoints" / "lstm28_sigma0.00_seed0.pt"
PAPER = HERE.parent / "dni_paper.nc"
ADDITIVE_LEVELS = (0.5, 0.7, 1.0)
"""The additive σval whose accuracy loss (on the conventional model) each calibrated strength matches."""
GRIDS = {
    "output_relative": [0.4, 0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.5],
    "weight_read": [0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3],
    "programming": [0.04, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2],
}
"""Strength grids found by a probe on the shipped subset (2 repeats): each spans the three targets."""
REPEATS = 5


def targets() -> dict[float, float]:
    paper = load_results(PAPER).accuracy.sel(arch="lstm28", sigma_train=0.0).mean("seed")
    return {s: float(paper.sel(sigma_val=s)) for s in ADDITIVE_LEVELS}


def strength_for(sigmas, accuracy, target: float) -> float:
    """The σ where accuracy (falling with σ) crosses ``target``, linear in log σ between grid points."""
    sigmas, accuracy = np.asarray(sigmas, float), np.asarray(accuracy, float)
    below = np.flatnonzero(accuracy <= target)
    if len(below) == 0 or below[0] == 0:
        raise SystemExit(f"target {target:.4f} outside the grid's accuracies {np.round(accuracy, 4).tolist()}: widen the grid")
    i = below[0]
    f = (accuracy[i - 1] - target) / (accuracy[i - 1] - accuracy[i])
    return float(f"{np.exp(np.log(sigmas[i - 1]) + f * (np.log(sigmas[i]) - np.log(sigmas[i - 1]))):.2g}")


def main():
    model = load_checkpoint(CHECKPOINT)
    goal = targets()
    found = {"method": __doc__.split("\n\n")[1].replace("\n", " "), "additive_levels": list(ADDITIVE_LEVELS),
             "target_accuracy": {f"{k:g}": v for k, v in goal.items()}, "strengths": {"additive": list(ADDITIVE_LEVELS)}}
    for kind, grid in GRIDS.items():
        out = HERE / f"calibration_{kind}.nc"
        evaluate_into(out, [model], grid, REPEATS, data="mnist", seed=0, eval_noise=kind, draws="per-point")
        acc = load_results(out).accuracy.sel(arch="lstm28", sigma_train=0.0).mean("seed").sel(sigma_val=grid).values
        found["strengths"][kind] = [strength_for(grid, acc, goal[s]) for s in ADDITIVE_LEVELS]
        found.setdefault("grid_accuracy", {})[kind] = {f"{s:g}": round(float(a), 4) for s, a in zip(grid, acc)}
        print(kind, found["strengths"][kind], flush=True)
    with atomic_path(HERE / "strengths.json") as tmp:
        tmp.write_text(json.dumps(found, indent=1) + "\n")
    print(json.dumps(found["strengths"]))


if __name__ == "__main__":
    main()
