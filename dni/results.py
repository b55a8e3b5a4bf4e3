"""The result store: one ``xarray.Dataset`` over (arch, sigma_train, sigma_val, seed), as NetCDF.

Schema (labelled dimensions are the interface — select by name, never by position)::

    accuracy      (arch, sigma_train, sigma_val, seed)  float64, test accuracy of one noisy pass
    loss          (arch, sigma_train, sigma_val, seed)  float64, mean test cross-entropy
    weight_power  (arch, sigma_train)                   mean(w²) over all weights and biases (Figs 5, 9)
    epochs        (arch, sigma_train)                   training epochs that model ran (the convergence criterion may stop it early)
    best_epoch    (arch, sigma_train)                   the epoch whose weights it keeps
    train_seconds (arch, sigma_train)                   its training wall time
    train_seed    (arch, sigma_train)                   training seed of that model
    model_crc     (arch, sigma_train)                   CRC-32 of the model's weights: which model was evaluated

``seed`` r is the r-th independent noisy repeat (the paper's "40 independent tests");
``ds.accuracy.sel(arch="lstm28", sigma_train=1.0).mean("seed")`` is the paper's curve.
attrs: dataset, test_size, eval_seed, noise_model, dni_version, created; a sweep's file also has
sweep_seconds, its wall time summed over the runs that resumed it. Missing grid points (e.g.
after merging runs over different σtrain) are NaN.
"""

from __future__ import annotations

import datetime
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .errors import DniError, InvalidArgumentError
from .io import atomic_path

DIMS = ("arch", "sigma_train", "sigma_val", "seed")
NETCDF_ENGINE = "h5netcdf"


def make_results(results, sigma_val, repeats, *, dataset: str, eval_seed: int, test_size: int | None) -> xr.Dataset:
    """Assemble ``[(TrainedModel, σval, accuracy (R,), loss (R,)), ...]`` into the schema above.

    ``test_size`` None (nothing was evaluated) leaves the attribute out, so a merge keeps another run's.
    """
    archs = list(dict.fromkeys(m.arch for m, *_ in results))
    sigma_train = sorted({m.sigma_train for m, *_ in results})
    sigma_val = sorted(sigma_val)
    shape = (len(archs), len(sigma_train), len(sigma_val), repeats)
    accuracy, loss = np.full(shape, np.nan), np.full(shape, np.nan)
    for m, s, acc, lo in results:
        a, t = archs.index(m.arch), sigma_train.index(m.sigma_train)
        accuracy[a, t, sigma_val.index(s)] = acc
        loss[a, t, sigma_val.index(s)] = lo
    ds = xr.Dataset(
        {
            "accuracy": (DIMS, accuracy, {"long_name": "test accuracy", "units": "1"}),
            "loss": (DIMS, loss, {"long_name": "mean test cross-entropy"}),
        },
        coords={
            "arch": archs,
            "sigma_train": ("sigma_train", np.array(sigma_train, float), {"long_name": "σtrain, training noise std"}),
            "sigma_val": ("sigma_val", np.array(sigma_val, float), {"long_name": "σval, inference noise std"}),
            "seed": ("seed", np.arange(repeats), {"long_name": "noisy evaluation repeat"}),
        },
        attrs={
            "dataset": dataset,
            **({"test_size": int(test_size)} if test_size is not None else {}),
            "eval_seed": int(eval_seed),
            "noise_model": "additive Gaussian N(0, sigma^2) after every matrix-vector product (paper eq. 2)",
            "dni_version": __version__,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
        },
    )
    return with_model_variables(ds, list({id(m): m for m, *_ in results}.values()))  # each model once


MODEL_VARIABLES = ("weight_power", "epochs", "best_epoch", "train_seconds", "train_seed", "model_crc")


def with_model_variables(ds: xr.Dataset, models) -> xr.Dataset:
    """``ds`` with the per-model variables (:data:`MODEL_VARIABLES`) set from ``models`` (TrainedModel objects).

    Models outside ``ds``'s (arch, sigma_train) grid are ignored; grid cells without a model are NaN.
    """
    values = {k: np.full((ds.sizes["arch"], ds.sizes["sigma_train"]), np.nan) for k in MODEL_VARIABLES}
    archs, sigma_train = ds.arch.values.tolist(), ds.sigma_train.values.tolist()
    for m in models:
        if m.arch not in archs or m.sigma_train not in sigma_train:
            continue
        a, t = archs.index(m.arch), sigma_train.index(m.sigma_train)
        values["weight_power"][a, t] = float((m.model.weights() ** 2).mean())
        values["epochs"][a, t] = m.meta.get("epochs_run", len(m.history) or m.config.epochs)
        values["best_epoch"][a, t] = m.meta.get("best_epoch") or values["epochs"][a, t]
        values["train_seconds"][a, t] = m.meta.get("train_seconds", np.nan)
        values["train_seed"][a, t] = m.config.seed
        values["model_crc"][a, t] = model_crc(m.model)
    ds = ds.drop_vars([k for k in MODEL_VARIABLES if k in ds])
    for k, v in values.items():
        ds[k] = (DIMS[:2], v)
    ds["weight_power"].attrs["long_name"] = "expected weight power mean(w^2)"
    ds["epochs"].attrs["long_name"] = "training epochs run"
    ds["train_seconds"].attrs["units"] = "s"
    return ds


def model_crc(model) -> int:
    """CRC-32 of all parameter bytes: identifies the exact weights a result was computed with."""
    crc = 0
    for p in model.parameters():
        crc = zlib.crc32(p.detach().cpu().contiguous().numpy().tobytes(), crc)
    return crc


def complete_points(ds: xr.Dataset, repeats: int) -> set[tuple[str, float, float]]:
    """(arch, σtrain, σval) points of ``ds`` whose ``repeats`` repeats are all present."""
    if ds.sizes.get("seed", 0) < repeats:
        return set()
    finite = ds.accuracy.isel(seed=slice(0, repeats)).notnull().all("seed")
    return {(str(a), float(st), float(sv)) for a in ds.arch.values for st in ds.sigma_train.values for sv in ds.sigma_val.values
            if bool(finite.sel(arch=a, sigma_train=st, sigma_val=sv))}


def save_results(ds: xr.Dataset, path) -> Path:
    """Write ``ds`` to NetCDF at ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        # encodings carried over from a loaded file (e.g. a fixed string width '<U6' for arch)
        # would truncate longer values merged in since: let xarray choose afresh
        ds.drop_encoding().to_netcdf(tmp, engine=NETCDF_ENGINE)
    return Path(path)


def load_results(path) -> xr.Dataset:
    """Read a result file fully into memory (the file is closed afterwards)."""
    try:
        return xr.load_dataset(path).drop_encoding()
    except FileNotFoundError:
        raise DniError(f"result file {path} does not exist; create one with `dni sweep` or `dni evaluate`") from None
    except (OSError, ValueError) as err:
        raise DniError(f"{path} is not a readable NetCDF result file ({err})") from None


def merge_results(datasets: Iterable[xr.Dataset]) -> xr.Dataset:
    """Merge runs over other presets / σtrain / σval / repeats into one dataset.

    Grid points present in several runs must agree exactly; all runs must be on the same data
    set. attrs are kept where they agree; ``created`` becomes the merge time.
    """
    datasets = list(datasets)
    if not datasets:
        raise InvalidArgumentError("nothing to merge; give at least one result file")
    sources = {ds.attrs.get("dataset") for ds in datasets}
    if len(sources) > 1:
        raise InvalidArgumentError(f"cannot merge results of different data sets: {sorted(map(str, sources))}")
    try:
        merged = xr.merge(datasets, compat="no_conflicts", join="outer", combine_attrs="drop_conflicts")
    except xr.MergeError as err:
        raise InvalidArgumentError(f"results disagree where they overlap; re-run one of them ({str(err).splitlines()[0]})") from None
    merged.attrs["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    merged.attrs["dni_version"] = __version__
    return merged


def accuracy_table(ds: xr.Dataset, arch: str | None = None) -> str:
    """Mean accuracy (%) over repeats: σtrain rows × σval columns, one block per arch."""
    blocks = []
    for a in ([arch] if arch else list(ds.arch.values)):
        mean = ds.accuracy.sel(arch=a).mean("seed") * 100
        header = "σtrain\\σval " + " ".join(f"{v:>5.2g}" for v in ds.sigma_val.values)
        lines = [f"{a}: test accuracy (%), mean of {ds.sizes['seed']} repeat(s) on {ds.attrs.get('dataset', '?')}", header]
        for st in ds.sigma_train.values:
            row = mean.sel(sigma_train=st).values
            if np.all(np.isnan(row)):
                continue
            lines.append(f"{st:>11.2g} " + " ".join("    -" if np.isnan(v) else f"{v:5.1f}" for v in row))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
