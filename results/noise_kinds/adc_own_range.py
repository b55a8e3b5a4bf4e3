"""The ADC sweep with each model's own range beside the fixed ±16 (issue 34; dni.evaluation.adc_range).

    DNI_DATA_DIR=../shared/data python results/noise_kinds/adc_own_range.py [--force]

Models: the committed additive lstm28 models σtrain 0, 0.5, 0.7, 1.0 of every training seed present in
results/dni_paper_checkpoints/ (seed 0 the grid's, seeds 1, 2 from results/run_seeds.sh). Each is quantised at
4–10 bits over ±16 and over its own range, the 99.9th percentile of its clean |pre-activation| on the first
1000 full-MNIST training digits, and scored on the 10,000 test digits (no noise drawn: one pass each).
Writes results/noise_kinds/adc_own_range.nc (atomically). Resumable: models already in the file with the
same weights (model_crc) are kept; one with other weights is refused unless --force.
"""

import argparse
import sys
from pathlib import Path

import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from dni.data import load_sequences  # noqa: E402
from dni.evaluation.adc_range import adc_resolution  # noqa: E402
from dni.store.checkpoints import load_checkpoint  # noqa: E402
from dni.store.results import model_crc  # noqa: E402
from dni.util.io import atomic_path  # noqa: E402

OUT = ROOT / "results" / "noise_kinds" / "adc_own_range.nc"
SIGMA_TRAIN = (0.0, 0.5, 0.7, 1.0)
CALIBRATION_DIGITS = 1000


def checkpoints() -> list[Path]:
    folder = ROOT / "results" / "dni_paper_checkpoints"
    return [p for st in SIGMA_TRAIN for p in sorted(folder.glob(f"lstm28_sigma{st:.2f}_seed*.pt"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="re-evaluate models whose weights differ from the file's")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    models = [load_checkpoint(p) for p in checkpoints()]
    crcs = {f"additive {m.sigma_train:g} seed {m.config.seed}": model_crc(m.model) for m in models}
    old = xr.load_dataset(OUT) if OUT.is_file() else None
    keep = []
    if old is not None:
        for label, crc in zip(old.model.values.tolist(), old.model_crc.values.tolist()):
            if label in crcs and crcs[label] != int(crc) and not args.force:
                sys.exit(f"{OUT} holds {label} with other weights (model_crc {int(crc)}, the checkpoint's {crcs[label]}): "
                         "rerun with --force to re-evaluate it")
            if crcs.get(label) == int(crc):
                keep.append(label)
    todo = [m for m in models if f"additive {m.sigma_train:g} seed {m.config.seed}" not in keep]
    if not todo:
        print(f"{OUT}: every model already evaluated")
        return 0
    test = load_sequences("mnist", "test", progress=False)
    calibration = load_sequences("mnist", "train", progress=False).take(slice(0, CALIBRATION_DIGITS))
    new = adc_resolution(todo, test, calibration)
    new = new.assign_coords(model_crc=("model", [crcs[label] for label in new.model.values.tolist()]))
    out = new if old is None else xr.concat([old.sel(model=keep), new], "model")
    out = out.sortby(["sigma_train", "train_seed"])
    with atomic_path(OUT) as tmp:
        out.to_netcdf(tmp)
    print(f"wrote {OUT}: {out.sizes['model']} models ({len(todo)} new)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
