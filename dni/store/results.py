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
import functools
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from dni._version import __version__
from dni.errors import (
    DniError,
    InvalidArgumentError,
    ResultConflictError,
    ResultSchemaError,
)
from dni.util.io import atomic_path

DIMS = ("arch", "sigma_train", "sigma_val", "seed")
NOISE_DESCRIPTION = "additive Gaussian N(0, sigma^2) after every matrix-vector product (paper eq. 2)"
NOISE_ATTRS = ("train_noise", "eval_noise")
"""The noise specs (:mod:`dni.noise.kinds` labels) a result was trained and evaluated under; a file
without them (written before noise specs) is the paper's additive noise for both."""


def noise_of(ds: xr.Dataset) -> dict[str, str]:
    """{"train_noise": label, "eval_noise": label} of a one-pair result (the paper's "additive" where unrecorded)."""
    return {k: str(ds.attrs.get(k, "additive")) for k in NOISE_ATTRS}


def with_noise_dims(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its noise pair as dims ``train_noise``, ``eval_noise`` (the mismatch grid's schema).

    A one-pair result keeps the paper's schema (arch, sigma_train, sigma_val, seed) and names its
    pair in attrs; results of several pairs carry the pair as two more dims, so that
    ``ds.accuracy.sel(train_noise="weight_read", eval_noise="additive")`` is a paper-style view.
    """
    if all(d in ds.dims for d in NOISE_ATTRS):
        return ds
    noise = noise_of(ds)
    out = ds.copy()
    per_point = [v for v in out.data_vars if "sigma_val" in out[v].dims]
    per_model = [v for v in out.data_vars if v not in per_point]
    for v in per_point:
        out[v] = out[v].expand_dims(train_noise=[noise["train_noise"]], eval_noise=[noise["eval_noise"]])
    for v in per_model:  # a model belongs to its train noise only
        out[v] = out[v].expand_dims(train_noise=[noise["train_noise"]])
    out = out.assign_coords(train_noise=[noise["train_noise"]], eval_noise=[noise["eval_noise"]])
    for k in (*NOISE_ATTRS, "noise_model"):
        out.attrs.pop(k, None)
    return out


def noise_pairs(ds: xr.Dataset) -> list[tuple[str, str]]:
    """The (train noise, eval noise) pairs ``ds`` holds points of."""
    if not all(d in ds.dims for d in NOISE_ATTRS):
        n = noise_of(ds)
        return [(n["train_noise"], n["eval_noise"])]
    return [(str(t), str(e)) for t in ds.train_noise.values for e in ds.eval_noise.values
            if bool(ds.accuracy.sel(train_noise=t, eval_noise=e).notnull().any())]


def select_noise(ds: xr.Dataset, train_noise: str, eval_noise: str) -> xr.Dataset:
    """The paper-style view (arch, sigma_train, sigma_val, seed) of one noise pair of ``ds``."""
    if not all(d in ds.dims for d in NOISE_ATTRS):
        if (train_noise, eval_noise) not in noise_pairs(ds):
            raise InvalidArgumentError(f"the result holds {noise_pairs(ds)[0]}, not ({train_noise}, {eval_noise})")
        return ds
    view = ds.sel(train_noise=train_noise, eval_noise=eval_noise, drop=True)
    return view.assign_attrs(train_noise=train_noise, eval_noise=eval_noise)
NETCDF_ENGINE = "h5netcdf"


def make_results(results, sigma_val, repeats, *, dataset: str, eval_seed: int, test_size: int | None,
                 train_noise: str = "additive", eval_noise: str = "additive", draws: str = "per-point") -> xr.Dataset:
    """Assemble ``[(TrainedModel, σval, accuracy (R,), loss (R,)), ...]`` into the schema above.

    ``test_size`` None (nothing was evaluated) leaves the attribute out, so a merge keeps another run's.
    ``draws``: the evaluation's draw scheme (:mod:`dni.noise.draws`), recorded as ``attrs["draws"]``.
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
            "noise_model": NOISE_DESCRIPTION if (train_noise, eval_noise) == ("additive", "additive") else
                           f"trained under {train_noise} at sigma_train, evaluated under {eval_noise} at sigma_val (dni.noise.kinds)",
            "train_noise": train_noise,
            "eval_noise": eval_noise,
            "draws": draws,
            "dni_version": __version__,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
        },
    )
    return with_model_variables(ds, list({id(m): m for m, *_ in results}.values()))  # each model once


MODEL_VARIABLES = ("weight_power", "epochs", "best_epoch", "train_seconds", "train_seed", "model_crc")
TIMING_VARIABLES = ("train_seconds",)
"""Per-model variables that say how long, not what: they never make two results disagree (:func:`merge_results`)."""


def with_model_variables(ds: xr.Dataset, models) -> xr.Dataset:
    """``ds`` with the per-model variables (:data:`MODEL_VARIABLES`) set from ``models`` (TrainedModel objects).

    Models outside ``ds``'s (arch, sigma_train) grid are ignored; grid cells without a model keep the
    values ``ds`` has there (NaN if none).
    """
    shape = (ds.sizes["arch"], ds.sizes["sigma_train"])
    # models not given keep the values ds has for them (a result file holds other runs' models too)
    values = {k: ds[k].transpose(*DIMS[:2]).values.astype(float).copy() if k in ds and ds[k].dims == DIMS[:2] else np.full(shape, np.nan)
              for k in MODEL_VARIABLES}
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


def without_incomplete_points(existing: xr.Dataset, models: set[tuple[str, float]], repeats: int,
                              sigma_val: Iterable[float] | None = None) -> xr.Dataset:
    """``existing`` with the points of ``models`` ((arch, σtrain) pairs) at ``sigma_val`` (None: every
    σval) that lack some of ``repeats`` repeats set to NaN (they are evaluated again); every other
    point is kept as it is — also one of another repeat count outside the run's σval grid (issue 36)."""
    points = complete_points(existing, repeats)
    grid = None if sigma_val is None else {float(v) for v in sigma_val}
    redo = lambda a, st, sv: (a, st) in models and (grid is None or sv in grid)  # noqa: E731
    mask = xr.DataArray([[[not redo(a, st, sv) or (a, st, sv) in points for sv in existing.sigma_val.values.tolist()]
                          for st in existing.sigma_train.values.tolist()] for a in existing.arch.values.tolist()],
                        dims=("arch", "sigma_train", "sigma_val"), coords={k: existing[k] for k in ("arch", "sigma_train", "sigma_val")})
    kept = existing.copy()
    for var in ("accuracy", "loss"):
        if var in kept:
            kept[var] = kept[var].where(mask)
    return kept


def forget_models(ds: xr.Dataset, models: set[tuple[str, float]], points: bool = False) -> xr.Dataset:
    """``ds`` with the per-model variables of ``models`` ((arch, σtrain) pairs) set to NaN, to be set
    afresh from the models themselves; with ``points`` their accuracy and loss too."""
    ds = ds.copy(deep=True)  # the caller's dataset stays as it was
    names = [v for v in (*MODEL_VARIABLES, *(("accuracy", "loss") if points else ())) if v in ds]
    for arch, st in models:
        if arch in ds.arch.values and st in ds.sigma_train.values:
            for v in names:
                ds[v].loc[{"arch": arch, "sigma_train": st}] = np.nan
    return ds


def save_results(ds: xr.Dataset, path) -> Path:
    """Write ``ds`` to NetCDF at ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        # encodings carried over from a loaded file (e.g. a fixed string width '<U6' for arch)
        # would truncate longer values merged in since: let xarray choose afresh
        ds.drop_encoding().to_netcdf(tmp, engine=NETCDF_ENGINE)
    return Path(path)


def load_results(path, need: Iterable[str] = ("accuracy",)) -> xr.Dataset:
    """Read a result file fully into memory (the file is closed afterwards).

    ``need``: the variables the caller uses; a file that lacks them, or the dims of the schema,
    fails as one line naming what is missing (:func:`require_schema`).
    """
    try:
        ds = xr.load_dataset(path).drop_encoding()
    except FileNotFoundError:
        raise DniError(f"result file {path} does not exist; create one with `dni sweep` or `dni evaluate`") from None
    except (OSError, ValueError) as err:
        raise DniError(f"{path} is not a readable NetCDF result file ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    require_schema(ds, path, need)
    if "accuracy" in ds and str(ds.attrs.get("metric", "accuracy")) == "accuracy":  # a fraction: never printed as found (issue 36)
        outside = ds.accuracy.where((ds.accuracy < 0) | (ds.accuracy > 1))
        if bool(outside.notnull().any()):
            raise ResultSchemaError(f"{path} holds {int(outside.notnull().sum())} accuracies outside [0, 1] (e.g. {float(outside.max() if outside.max() > 1 else outside.min()):g}): "
                                    "a damaged file or not dni's; re-run the evaluation that wrote it")
    return ds


def read_existing_results(path) -> xr.Dataset | None:
    """The result file at ``path`` that a run would extend; None if there is none. A file dni cannot
    read as a result is never replaced: :class:`ResultConflictError` says so in one line."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load_results(path)
    except DniError as err:
        raise ResultConflictError(f"{path} exists but is not a dni result file ({err}); it is not replaced: "
                                  "write to another --out, or move it away") from None


def require_schema(ds: xr.Dataset, path, need: Iterable[str] = ("accuracy",)) -> None:
    """Raise :class:`ResultSchemaError` naming the dims and variables of dni's schema that ``ds`` lacks."""
    need = list(need)
    missing_dims = [d for d in DIMS if d not in ds.dims]
    extra = [d for v in ("accuracy", "loss") if v in ds.data_vars for d in ds[v].dims if d not in (*DIMS, *NOISE_ATTRS)]
    missing_vars = [v for v in need if v not in ds.data_vars]
    wrong = [v for v in need if v in ds.data_vars and v in ("accuracy", "loss") and extra]
    if missing_dims or missing_vars or wrong:
        parts = ([f"dims {', '.join(missing_dims)}"] if missing_dims else []) + \
                ([f"variables {', '.join(missing_vars)}"] if missing_vars else []) + \
                [f"{v} over {tuple(ds[v].dims)} instead of {DIMS}" for v in wrong]
        raise ResultSchemaError(f"{path} is not a dni result file: it lacks {'; '.join(parts)} "
                                "(dni writes them with `dni sweep` / `dni evaluate`)")


def conflicts_with(existing: xr.Dataset, *, dataset: str, eval_seed: int, models, train_noise: str = "additive",
                   eval_noise: str = "additive", draws: str | None = None, grid: bool = False) -> list[str]:
    """Why results of ``models`` evaluated on ``dataset`` with ``eval_seed`` cannot join ``existing`` ([] if they can).

    They can when the data and evaluation seed agree and every one of ``models`` that ``existing``
    already holds points of has the very weights those points were computed with (``model_crc``).
    ``draws`` (None: not checked): the draw scheme must be the file's (:func:`draws_of`; issue 22).
    ``grid``: the run writes a grid of noise pairs; one pair cannot extend a file of such a grid (issue 36).
    """
    if not grid and all(d in existing.dims for d in NOISE_ATTRS):
        return ["a grid of noise pairs (dims train_noise, eval_noise), which a run of one pair cannot extend; "
                "`dni merge` the two files afterwards"]
    problems = []
    if existing.attrs.get("dataset") != dataset:
        problems.append(f"data {existing.attrs.get('dataset')!r}, not {dataset!r}")
    if str(existing.attrs.get("eval_seed")) != str(int(eval_seed)):
        problems.append(f"eval seed {existing.attrs.get('eval_seed')}, not {eval_seed}")
    noise = noise_of(existing)
    for name, wanted in (("train_noise", train_noise), ("eval_noise", eval_noise)):
        if noise[name] != wanted:
            problems.append(f"{name.replace('_', ' ')} {noise[name]}, not {wanted}")
    if draws is not None and draws_of(existing) != draws:
        problems.append(f"draws {draws_of(existing)}, not {draws} (pass --draws {draws_of(existing)} to extend it)")
    problems += [f"{m.arch} σtrain {m.sigma_train:g} evaluated with other weights" for m in evaluated_with_other_weights(existing, models)]
    return problems


def draws_of(ds: xr.Dataset) -> str:
    """The draw scheme a result was evaluated with (:mod:`dni.noise.draws`): ``attrs["draws"]``, "per-point" where unrecorded."""
    return str(ds.attrs.get("draws", "per-point"))


def evaluated_with_other_weights(existing: xr.Dataset, models) -> list:
    """Those of ``models`` whose points in ``existing`` were computed with other weights (or with unknown ones)."""
    stale = []
    for m in models:
        if m.arch not in existing.arch.values or m.sigma_train not in existing.sigma_train.values:
            continue
        if not bool(existing.accuracy.sel(arch=m.arch, sigma_train=m.sigma_train).notnull().any()):
            continue
        crc = existing.model_crc.sel(arch=m.arch, sigma_train=m.sigma_train).item() if "model_crc" in existing else np.nan
        if crc != crc or int(crc) != model_crc(m.model):
            stale.append(m)
    return stale


def check_joinable(existing: xr.Dataset | None, path, *, dataset: str, eval_seed: int, models, hint: str = "",
                   train_noise: str = "additive", eval_noise: str = "additive", draws: str | None = None, grid: bool = False) -> None:
    """:class:`ResultConflictError` if :func:`conflicts_with` finds a reason; the message says what to do."""
    if existing is None:
        return
    problems = conflicts_with(existing, dataset=dataset, eval_seed=eval_seed, models=models, train_noise=train_noise,
                              eval_noise=eval_noise, draws=draws, grid=grid)
    if problems:
        raise ResultConflictError(f"{path} holds other results ({'; '.join(problems)}); it is not replaced: "
                                  f"write to another --out{hint}")


def merge_results(datasets: Iterable[xr.Dataset], allow_different_eval_seeds: bool = False) -> xr.Dataset:
    """Merge runs over other presets / σtrain / σval / repeats into one dataset.

    Grid points present in several runs must agree exactly; all runs must be on the same data
    set and, unless ``allow_different_eval_seeds``, made with the same evaluation seed. attrs are
    kept where they agree; ``created`` becomes the merge time.
    """
    datasets = list(datasets)
    if not datasets:
        raise InvalidArgumentError("nothing to merge; give at least one result file")
    for i, ds in enumerate(datasets):
        require_schema(ds, f"input {i + 1}")
    sources = {ds.attrs.get("dataset") for ds in datasets}
    if len(sources) > 1:
        raise InvalidArgumentError(f"cannot merge results of different data sets: {sorted(map(str, sources))}")
    metrics = {str(ds.attrs.get("metric", "accuracy")) for ds in datasets}
    if len(metrics) > 1:
        raise InvalidArgumentError(f"cannot merge results of different metrics {sorted(metrics)} (dni.robustness); keep them in separate files")
    schemes = {draws_of(ds) for ds in datasets}
    if len(schemes) > 1:
        raise InvalidArgumentError(f"cannot merge results of different draw schemes {sorted(schemes)}: re-evaluate with one --draws")
    pairs = {p for ds in datasets for p in noise_pairs(ds)}
    if len(pairs) > 1 or any(all(d in ds.dims for d in NOISE_ATTRS) for ds in datasets):
        datasets = [with_noise_dims(ds) for ds in datasets]  # the mismatch grid: noise pairs as dims
    seeds = {ds.attrs.get("eval_seed") for ds in datasets}
    if len(seeds) > 1 and not allow_different_eval_seeds:
        raise InvalidArgumentError(f"cannot merge results of different evaluation seeds {sorted(map(str, seeds))}: their noise draws differ; "
                                   "re-evaluate with one --seed, or pass --allow-different-eval-seeds (the merged file then records eval_seed 'mixed')")
    # timing is metadata, not a result: two runs of the same model that took different wall times merge,
    # keeping the first file's time where both have one (issue 36)
    timing = [ds[v] for ds in datasets for v in TIMING_VARIABLES if v in ds]
    datasets = [ds.drop_vars([v for v in TIMING_VARIABLES if v in ds]) for ds in datasets]
    try:
        merged = xr.merge(datasets, compat="no_conflicts", join="outer", combine_attrs="drop_conflicts")
    except xr.MergeError as err:
        raise InvalidArgumentError(f"results disagree where they overlap; re-run one of them ({str(err).splitlines()[0]})") from None
    for v in TIMING_VARIABLES:
        parts = [t for t in timing if t.name == v]
        if parts:
            merged[v] = functools.reduce(lambda a, b: a.combine_first(b), parts)  # aligned to the merged grid
    if len(seeds) > 1:
        merged.attrs["eval_seed"] = "mixed: " + ", ".join(sorted(map(str, seeds)))
    merged.attrs["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    merged.attrs["dni_version"] = __version__
    return merged


def accuracy_table(ds: xr.Dataset, arch: str | None = None) -> str:
    """Mean accuracy (%) over repeats: σtrain rows × σval columns, one block per arch (and noise pair)."""
    if all(d in ds.dims for d in NOISE_ATTRS):
        return "\n\n".join(f"trained under {t}, evaluated under {e}:\n" + accuracy_table(select_noise(ds, t, e), arch)
                           for t, e in noise_pairs(ds))
    blocks = []
    metric = str(ds.attrs.get("metric", "accuracy"))  # dni.robustness may store another metric in ``accuracy``
    scale, width, cell, what = (100, 5, ".1f", "test accuracy (%)") if metric == "accuracy" else (1, 7, ".3g", f"test {metric}")
    for a in ([arch] if arch else list(ds.arch.values)):
        mean = ds.accuracy.sel(arch=a).mean("seed") * scale
        header = "σtrain\\σval " + " ".join(f"{v:>{width}.2g}" for v in ds.sigma_val.values)
        lines = [f"{a}: {what}, mean of {repeats_held(ds.accuracy.sel(arch=a))} repeat(s) on {ds.attrs.get('dataset', '?')}", header]
        for st in ds.sigma_train.values:
            row = mean.sel(sigma_train=st).values
            if np.all(np.isnan(row)):
                continue
            lines.append(f"{st:>11.2g} " + " ".join(f"{'-':>{width}}" if np.isnan(v) else f"{v:{width}{cell}}" for v in row))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def repeats_held(accuracy: xr.DataArray) -> str:
    """How many repeats the points of ``accuracy`` (over ``seed``) hold: "5", or "1 to 3" where a file
    extended with another repeat count holds points of both (issue 36: a label claims no more than the data)."""
    counts = accuracy.notnull().sum("seed").values
    counts = counts[counts > 0]
    if counts.size == 0:
        return "0"
    low, high = int(counts.min()), int(counts.max())
    return f"{low}" if low == high else f"{low} to {high}"
