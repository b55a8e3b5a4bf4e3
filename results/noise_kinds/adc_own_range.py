"""The ADC sweep with each model's own range beside the fixed ±16 (issue 34; dni.evaluation.adc_range).

    DNI_DATA_DIR=../shared/data python results/noise_kinds/adc_own_range.py [--force]

Models: the committed additive lstm28 models σtrain 0, 0.5, 0.7, 1.0 of every training seed present in
results/dni_paper_checkpoints/ (seed 0 the grid's, seeds 1, 2 from results/run_seeds.sh). Each is quantised at
4–10 bits over ±16 and over its own range, the 99.9th percentile of its clean absolute pre-activations on the
first 1000 full-MNIST training digits, and scored on the 10,000 test digits (no noise drawn: one pass each).
Writes results/noise_kinds/adc_own_range.nc atomically after every model, so a run cut off resumes: models
already in the file with the same weights (model_crc) are kept, and so are models whose checkpoint is not here;
one with other weights, or a file made with other settings, is refused unless --force.
"""

import argparse
import sys
from pathlib import Path

import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from dni.data import load_sequences  # noqa: E402
from dni.evaluation.adc_range import BITS, FIXED_BOUND, QUANTILE, adc_resolution, model_label  # noqa: E402
from dni.store.checkpoints import load_checkpoint  # noqa: E402
from dni.store.results import NETCDF_ENGINE, model_crc  # noqa: E402
from dni.util.io import atomic_path  # noqa: E402

OUT = ROOT / "results" / "noise_kinds" / "adc_own_range.nc"
SIGMA_TRAIN = (0.0, 0.5, 0.7, 1.0)
CALIBRATION_DIGITS = 1000
SETTINGS = {"quantile": QUANTILE, "fixed_bound": FIXED_BOUND, "calibration_digits": CALIBRATION_DIGITS, "test_size": 10000}


def checkpoints() -> list[Path]:
    folder = ROOT / "results" / "dni_paper_checkpoints"
    return [p for st in SIGMA_TRAIN for p in sorted(folder.glob(f"lstm28_sigma{st:.2f}_seed*.pt"))]


def save(ds: xr.Dataset) -> None:
    with atomic_path(OUT) as tmp:
        ds.sortby(["sigma_train", "train_seed"]).to_netcdf(tmp, engine=NETCDF_ENGINE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="re-evaluate models whose weights differ from the file's")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    models = {model_label(m): m for m in map(load_checkpoint, checkpoints())}
    crcs = {label: model_crc(m.model) for label, m in models.items()}
    out = xr.load_dataset(OUT, engine=NETCDF_ENGINE) if OUT.is_file() else None
    if out is not None:
        other = {k: out.attrs.get(k) for k, v in SETTINGS.items() if out.attrs.get(k) != v}
        if other or out.bits.values.tolist() != list(BITS):
            if not args.force:
                sys.exit(f"{OUT} was made with other settings ({other or 'bits ' + str(out.bits.values.tolist())}): "
                         "rerun with --force to replace it")
            out = None
    if out is not None:
        stale = [label for label, crc in zip(out.model.values.tolist(), out.model_crc.values.tolist())
                 if label in crcs and crcs[label] != int(crc)]
        if stale and not args.force:
            sys.exit(f"{OUT} holds {', '.join(stale)} with other weights than the checkpoints: rerun with --force to re-evaluate")
        out = out.drop_sel(model=stale)
    done = set(out.model.values.tolist()) if out is not None else set()
    todo = [m for label, m in models.items() if label not in done]
    if not todo:
        print(f"{OUT}: every model already evaluated")
        return 0
    test = load_sequences("mnist", "test", progress=False)
    calibration = load_sequences("mnist", "train", progress=False).take(slice(0, CALIBRATION_DIGITS))
    for m in todo:
        new = adc_resolution([m], test, calibration, progress=False)
        new = new.assign_coords(model_crc=("model", [crcs[model_label(m)]]))
        out = new if out is None else xr.concat([out, new], "model", combine_attrs="override")
        save(out)
        print(f"{model_label(m)}: own range ±{float(new.bound.sel(range='own')[0]):.4g}", flush=True)
    print(f"wrote {OUT}: {out.sizes['model']} models ({len(todo)} new)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
