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

Training seeds (issue 34): a file written by dni since then carries a ``train_seed`` dim (int: the
:class:`dni.store.recipe.TrainConfig` seed of the model) — accuracy and loss over
(arch, train_seed, sigma_train, sigma_val, seed), every per-model variable over (arch, train_seed, sigma_train).
A result of one training seed keeps the schema above (a ``train_seed`` *variable* over (arch, sigma_train):
0, or 1 in the replicate file), on disk and as :func:`load_results` returns it, so every file written
before and every reader of one model per setting stays as it was (:func:`compact_train_seed`); code that
combines seeds reads any file as a train_seed dim of its one value (:func:`with_train_seed_dim`,
``load_results(..., train_seed_dim=True)``); nothing is rewritten. A sweep works on one training seed
at a time in the one-seed schema (:func:`seed_slice`) and puts it back (:func:`with_seed_slice`).

``seed`` r is the r-th independent noisy repeat (the paper's "40 independent tests");
``ds.accuracy.sel(arch="lstm28", sigma_train=1.0).mean("seed")`` is the paper's curve.
attrs: dataset, test_size, eval_seed, noise_model, dni_version, created; a sweep's file also has
sweep_seconds, its wall time summed over the runs that resumed it. Missing grid points (e.g.
after merging runs over different σtrain) are NaN.

The grid of noise kinds (issue 19) adds dims ``train_noise`` and ``eval_noise`` (labels of
:mod:`dni.noise.kinds`) before ``arch``; the per-model variables get ``train_noise`` only. Each kind has its
own strengths, so σtrain and σval are shared axes of which a pair uses a few: read one pair with
:func:`pair_results`, which keeps only the σ values measured for it. On disk a grid may be stored in the
**kinds layout** (``attrs["layout"] = "kinds"``, :func:`to_kinds_layout`; ``dni merge --kinds-layout``):
dims ``train_level``, ``eval_level`` in place of ``sigma_train``, ``sigma_val``, the strengths as
coordinates ``sigma_train (train_noise, train_level)`` and ``sigma_val (eval_noise, eval_level)`` —
no NaN for the strengths of other kinds. :func:`load_results` reads it as the shared-axes grid
(bit for bit), so every reader (merge, table, report, the explorer) works on either. A **fixed kind** (no strength:
``adc``, ``dac``, ``pcm(t=…)``, a kind with its own sigma) is one point of the grid, at σval 0, beside
the σ-kinds (``dni sweep --eval-noise additive --eval-noise "adc(bits=4,bound=16)"`` writes both).
A file may also have a ``train_seed`` dim (issue 34: several independently trained models per
setting); one without it holds training seed 0 only.
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
TRAIN_SEED = "train_seed"
DRAW_KEY = "train_seed appended when not 0"
"""``attrs["draw_key"]`` of results evaluated since issue 34 (:func:`dni.noise.draws.train_seed_key`); a file
without it that holds a training seed ≠ 0 (the replicate file) was drawn without the seed in the key."""


def _per_model_or_point(ds: xr.Dataset) -> list[str]:
    return [v for v in ds.data_vars if "sigma_train" in ds[v].dims and "arch" in ds[v].dims]


def tag_train_seed(ds: xr.Dataset, train_seed: int) -> xr.Dataset:
    """One training seed's dataset (no train_seed dim) with the dim ``train_seed`` = [``train_seed``]
    on every variable over (arch, sigma_train, …), placed right after ``arch``."""
    out = ds.drop_vars(TRAIN_SEED, errors="ignore")
    for v in _per_model_or_point(out):
        out[v] = out[v].expand_dims({TRAIN_SEED: [int(train_seed)]}, axis=out[v].dims.index("arch") + 1)
    if TRAIN_SEED not in out.coords:  # a dataset without any variable over arch
        out = out.assign_coords({TRAIN_SEED: [int(train_seed)]})
    out[TRAIN_SEED].attrs["long_name"] = "training seed (initialisation and shuffling) of the model"
    return out


def with_train_seed_dim(ds: xr.Dataset, path="result") -> xr.Dataset:
    """``ds`` with a ``train_seed`` dim: as it is if it has one, else the one seed of its ``train_seed``
    variable (uniform over its non-NaN entries; 0 if it has none); a file mixing seeds in that variable
    is refused in one line."""
    if TRAIN_SEED in ds.dims:
        return ds
    seeds = []
    if TRAIN_SEED in ds.data_vars:
        values = np.asarray(ds[TRAIN_SEED].values, dtype=float)
        seeds = sorted({int(v) for v in values[~np.isnan(values)].ravel()})
    if len(seeds) > 1:
        raise ResultSchemaError(f"{path} holds models of training seeds {seeds} in one train_seed variable; "
                                "dni cannot tell their points apart: split it by seed, or re-run with --train-seeds")
    return tag_train_seed(ds, seeds[0] if seeds else 0)


def compact_train_seed(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` in the one-seed schema (train_seed a per-model variable) if it holds one training seed;
    as it is with several (or none as a dim)."""
    if TRAIN_SEED not in ds.dims or ds.sizes[TRAIN_SEED] != 1:
        return ds
    return seed_slice(ds, int(ds[TRAIN_SEED].values[0]))


def train_seeds_of(ds: xr.Dataset) -> list[int]:
    """The training seeds ``ds`` holds (after :func:`with_train_seed_dim`)."""
    return [int(k) for k in with_train_seed_dim(ds)[TRAIN_SEED].values]


def seed_slice(ds: xr.Dataset | None, train_seed: int) -> xr.Dataset | None:
    """The points and models of one training seed in the one-seed schema (train_seed a per-model
    variable), or None if ``ds`` holds none of that seed."""
    if ds is None:
        return None
    ds = with_train_seed_dim(ds)
    if int(train_seed) not in ds[TRAIN_SEED].values:
        return None
    view = ds.sel({TRAIN_SEED: int(train_seed)}, drop=True)
    view = view.transpose(*[d for d in (*NOISE_ATTRS, *DIMS) if d in view.dims], ...)
    if "model_crc" in view:
        view[TRAIN_SEED] = view.model_crc.notnull() * 0 + float(train_seed)
        view[TRAIN_SEED] = view[TRAIN_SEED].where(view.model_crc.notnull())
    return view


def with_seed_slice(full: xr.Dataset | None, train_seed: int, part: xr.Dataset) -> xr.Dataset:
    """``full`` (any seeds) with its training seed ``train_seed`` replaced by ``part`` (one-seed schema);
    ``part``'s attrs are kept (it is the newer)."""
    part = tag_train_seed(part, train_seed)
    if full is None:
        return part
    others = with_train_seed_dim(full).drop_sel({TRAIN_SEED: [int(train_seed)]}, errors="ignore")
    if others.sizes[TRAIN_SEED] == 0:
        return part
    merged = xr.merge([part, others], compat="no_conflicts", join="outer", combine_attrs="override")
    return merged.sortby(TRAIN_SEED)


def _check_same_weights(datasets: list[xr.Dataset]) -> None:
    """Refuse to merge two files that hold the same (arch, train_seed, σtrain) model with other weights."""
    crcs = [(i, ds.model_crc) for i, ds in enumerate(datasets) if "model_crc" in ds]
    for n, (i, a) in enumerate(crcs):
        for j, b in crcs[n + 1:]:
            a2, b2 = xr.align(a, b, join="inner")
            differ = (a2.notnull() & b2.notnull() & (a2 != b2))
            if differ.size and bool(differ.any()):
                where = differ.where(differ, drop=True).stack(model=differ.dims).dropna("model").model.values[0]
                at = dict(zip(differ.dims, where))
                raise InvalidArgumentError(
                    f"cannot merge: training seed {int(at[TRAIN_SEED])} of {at.get('arch')} σtrain {float(at['sigma_train']):g} "
                    f"has other weights in input {j + 1} than in input {i + 1} (model_crc differs); "
                    "re-evaluate one of them, or merge files of different training seeds")


def per_seed_means(da: xr.DataArray) -> xr.DataArray:
    """Each model's mean over the evaluation repeats (``seed``): the samples of an interval across training seeds."""
    return da.mean("seed")


KINDS_LAYOUT = "kinds"
"""``attrs["layout"]`` of a grid of kinds stored compactly (:func:`to_kinds_layout`)."""


def _measured_levels(ds: xr.Dataset, kind_dim: str, sigma_dim: str, variables) -> list[list[int]]:
    """Per kind of ``kind_dim``: the indices along ``sigma_dim`` where any of ``variables`` has a value."""
    out = []
    for k in range(ds.sizes[kind_dim]):
        has = np.zeros(ds.sizes[sigma_dim], bool)
        for v in variables:
            da = ds[v]
            if kind_dim in da.dims and sigma_dim in da.dims:
                da = da.isel({kind_dim: k}).notnull()
                has |= da.any([d for d in da.dims if d != sigma_dim]).values
        out.append(np.flatnonzero(has).tolist())
    return out


def _gather(da: xr.DataArray, kind_dim: str, sigma_dim: str, level_dim: str, levels: list[list[int]]) -> xr.DataArray:
    """``da`` with ``sigma_dim`` replaced by ``level_dim``: level l of kind k is σ index ``levels[k][l]`` (NaN past the end)."""
    rest = [d for d in da.dims if d not in (kind_dim, sigma_dim)]
    arr = da.transpose(kind_dim, sigma_dim, *rest).values
    n = max((len(x) for x in levels), default=0)
    out = np.full((arr.shape[0], n, *arr.shape[2:]), np.nan)
    for k, idx in enumerate(levels):
        out[k, :len(idx)] = arr[k, idx]
    return xr.DataArray(out, dims=(kind_dim, level_dim, *rest), attrs=da.attrs).transpose(
        *[level_dim if d == sigma_dim else d for d in da.dims])


def to_kinds_layout(ds: xr.Dataset) -> xr.Dataset:
    """A grid of kinds (dims train_noise, eval_noise, sigma_train, sigma_val) without its sea of NaN: each
    kind's own strengths as levels.

    Layout (``attrs["layout"] = "kinds"``): dims ``train_level`` and ``eval_level`` (0, 1, …) replace
    ``sigma_train`` and ``sigma_val``; the strengths are coordinates ``sigma_train (train_noise, train_level)``
    and ``sigma_val (eval_noise, eval_level)`` (NaN past a kind's last strength). A train kind's levels
    are the σtrain values it has a point or a model at, an eval kind's the σval values it has a point at;
    a fixed eval kind has one level (σval 0). :func:`from_kinds_layout` gives the shared-axes schema back,
    the same numbers bit for bit (tested); :func:`load_results` does so on reading.
    """
    if not all(d in ds.dims for d in NOISE_ATTRS):
        raise InvalidArgumentError("the kinds layout is for a grid of noise kinds (dims train_noise and eval_noise)")
    point = [v for v in ds.data_vars if "sigma_val" in ds[v].dims]
    per_model = [v for v in ds.data_vars if v not in point]
    train = _measured_levels(ds, "train_noise", "sigma_train", list(ds.data_vars))
    evals = _measured_levels(ds, "eval_noise", "sigma_val", point)
    out = xr.Dataset(attrs={**ds.attrs, "layout": KINDS_LAYOUT})
    for v in list(point) + list(per_model):
        da = ds[v]
        if "sigma_train" in da.dims:
            da = _gather(da, "train_noise", "sigma_train", "train_level", train)
        if "sigma_val" in da.dims:
            da = _gather(da, "eval_noise", "sigma_val", "eval_level", evals)
        out[v] = da
    st = _gather(xr.DataArray(np.broadcast_to(ds.sigma_train.values, (ds.sizes["train_noise"], ds.sizes["sigma_train"])),
                              dims=("train_noise", "sigma_train"), attrs=ds.sigma_train.attrs), "train_noise", "sigma_train", "train_level", train)
    sv = _gather(xr.DataArray(np.broadcast_to(ds.sigma_val.values, (ds.sizes["eval_noise"], ds.sizes["sigma_val"])),
                              dims=("eval_noise", "sigma_val"), attrs=ds.sigma_val.attrs), "eval_noise", "sigma_val", "eval_level", evals)
    coords = {d: ds[d] for d in ds.coords if d not in ("sigma_train", "sigma_val")}
    return out.assign_coords(coords).assign_coords(sigma_train=st, sigma_val=sv,
                                                   train_level=np.arange(st.sizes["train_level"]),
                                                   eval_level=np.arange(sv.sizes["eval_level"]))


def _scatter(da: xr.DataArray, kind_dim: str, level_dim: str, sigma_dim: str, sigmas: np.ndarray, wide: np.ndarray) -> xr.DataArray:
    rest = [d for d in da.dims if d not in (kind_dim, level_dim)]
    arr = da.transpose(kind_dim, level_dim, *rest).values
    out = np.full((arr.shape[0], len(wide), *arr.shape[2:]), np.nan)
    for k in range(arr.shape[0]):
        for level, value in enumerate(sigmas[k]):
            if value == value:
                out[k, int(np.searchsorted(wide, value))] = arr[k, level]
    return xr.DataArray(out, dims=(kind_dim, sigma_dim, *rest), attrs=da.attrs).transpose(
        *[sigma_dim if d == level_dim else d for d in da.dims])


def from_kinds_layout(ds: xr.Dataset) -> xr.Dataset:
    """The shared-axes schema (dims sigma_train, sigma_val; NaN where a pair has no point) of a file in the
    kinds layout (:func:`to_kinds_layout`); any other dataset is returned as it is."""
    if ds.attrs.get("layout") != KINDS_LAYOUT:
        return ds
    st, sv = ds.sigma_train.transpose("train_noise", "train_level").values, ds.sigma_val.transpose("eval_noise", "eval_level").values
    wide_st, wide_sv = np.unique(st[~np.isnan(st)]), np.unique(sv[~np.isnan(sv)])
    out = xr.Dataset(attrs={k: v for k, v in ds.attrs.items() if k != "layout"})
    for v in ds.data_vars:
        da = ds[v].drop_vars([c for c in ("sigma_train", "sigma_val", "train_level", "eval_level") if c in ds[v].coords])
        if "train_level" in da.dims:
            da = _scatter(da, "train_noise", "train_level", "sigma_train", st, wide_st)
        if "eval_level" in da.dims:
            da = _scatter(da, "eval_noise", "eval_level", "sigma_val", sv, wide_sv)
        out[v] = da
    coords = {d: ds[d] for d in ds.coords if d not in ("sigma_train", "sigma_val", "train_level", "eval_level")}
    return out.assign_coords(coords).assign_coords(sigma_train=("sigma_train", wide_st, ds.sigma_train.attrs),
                                                   sigma_val=("sigma_val", wide_sv, ds.sigma_val.attrs))


def save_kinds_results(ds: xr.Dataset, path) -> Path:
    """The writer of the kinds layout: ``ds`` (a grid of kinds, shared-axes schema) saved as :func:`to_kinds_layout`."""
    return save_results(to_kinds_layout(ds), path)


def pair_results(ds: xr.Dataset, train_noise: str, eval_noise: str) -> xr.Dataset:
    """:func:`select_noise` without the σtrain and σval values the pair has no point at (a grid of kinds
    shares its σ axes between kinds with different strengths): what a view of the pair offers."""
    view = select_noise(ds, train_noise, eval_noise)
    measured = view.accuracy.notnull()
    other = [d for d in measured.dims if d not in ("sigma_train", "sigma_val")]
    measured = measured.any(other)
    return view.isel(sigma_train=measured.any("sigma_val").values, sigma_val=measured.any("sigma_train").values)


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
            "draw_key": DRAW_KEY,
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
    ds = compact_train_seed(ds)  # one training seed: the schema every earlier file has
    with atomic_path(path) as tmp:
        # encodings carried over from a loaded file (e.g. a fixed string width '<U6' for arch)
        # would truncate longer values merged in since: let xarray choose afresh
        ds.drop_encoding().to_netcdf(tmp, engine=NETCDF_ENGINE)
    return Path(path)


def load_results(path, need: Iterable[str] = ("accuracy",), train_seed_dim: bool = False) -> xr.Dataset:
    """Read a result file fully into memory (the file is closed afterwards).

    A file of one training seed comes in the one-seed schema, one of several with the ``train_seed``
    dim; ``train_seed_dim``: always with the dim (:func:`with_train_seed_dim`: an old file is its one seed).

    ``need``: the variables the caller uses; a file that lacks them, or the dims of the schema,
    fails as one line naming what is missing (:func:`require_schema`).
    """
    try:
        ds = from_kinds_layout(xr.load_dataset(path).drop_encoding())  # a grid stored compactly: the shared-axes schema
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
    return with_train_seed_dim(ds, path) if train_seed_dim else compact_train_seed(ds)


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
    extra = [d for v in ("accuracy", "loss") if v in ds.data_vars for d in ds[v].dims if d not in (*DIMS, *NOISE_ATTRS, TRAIN_SEED)]
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
    old_key = [k for k in _nonzero_train_seeds(existing)] if existing.attrs.get("draw_key") != DRAW_KEY else []
    if old_key:
        problems.append(f"training seed {old_key[0]} evaluated before the training seed entered the draw key (issue 34), "
                        "so new points would be drawn otherwise")
    problems += [f"{m.arch} σtrain {m.sigma_train:g} evaluated with other weights" for m in evaluated_with_other_weights(existing, models)]
    return problems


def _nonzero_train_seeds(ds: xr.Dataset) -> list[int]:
    if TRAIN_SEED not in ds:
        return []
    values = np.ravel(ds[TRAIN_SEED].values).astype(float)
    return sorted({int(v) for v in values[~np.isnan(values)] if v != 0})


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
    seeds_held = {k for ds in datasets for k in (ds[TRAIN_SEED].values.tolist() if TRAIN_SEED in ds.dims else
                                                 [v for v in np.ravel(ds[TRAIN_SEED].values) if v == v] if TRAIN_SEED in ds else [0])}
    if len(seeds_held) > 1 or any(TRAIN_SEED in ds.dims for ds in datasets):  # training seeds as a dim (issue 34)
        datasets = [with_train_seed_dim(ds, f"input {i + 1}") for i, ds in enumerate(datasets)]
        _check_same_weights(datasets)
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


def accuracy_table(ds: xr.Dataset, arch: str | None = None, interval: bool | None = None) -> str:
    """Mean accuracy (%): σtrain rows × σval columns, one block per arch (and noise pair).

    One training seed: each model's mean over the evaluation repeats (the table as it always was).
    Several (issue 34): the mean over training seeds ± the half width of the 95 % Student-t interval
    across models (:func:`dni.util.intervals.t_interval` of the per-seed means, n − 1 dof), with n,
    and below it the evaluation repeats' standard error (inference noise, mean over the models) apart.
    ``interval`` True asks for the interval: with one seed the block says "1 seed: no interval".
    """
    if all(d in ds.dims for d in NOISE_ATTRS):
        return "\n\n".join(f"trained under {t}, evaluated under {e}:\n" + accuracy_table(select_noise(ds, t, e), arch, interval)
                           for t, e in noise_pairs(ds))
    ds = with_train_seed_dim(ds)
    blocks = []
    metric = str(ds.attrs.get("metric", "accuracy"))  # dni.robustness may store another metric in ``accuracy``
    scale, width, cell, what = (100, 5, ".1f", "test accuracy (%)") if metric == "accuracy" else (1, 7, ".3g", f"test {metric}")
    for a in ([arch] if arch else list(ds.arch.values)):
        acc = ds.accuracy.sel(arch=a)
        held = acc.notnull().any(("sigma_val", "seed"))  # (train_seed, sigma_train): the models that have points
        seeds = [int(k) for k in ds[TRAIN_SEED].values if bool(held.sel({TRAIN_SEED: k}).any())] or [int(ds[TRAIN_SEED].values[0])]
        if len(seeds) < 2:
            blocks.append(_one_seed_block(acc.sel({TRAIN_SEED: seeds[0]}), a, ds, scale, width, cell, what, seeds[0], interval))
        else:
            blocks.append(_interval_block(acc.sel({TRAIN_SEED: seeds}), a, ds, scale, cell, what, seeds))
    return "\n\n".join(blocks)


def _one_seed_block(acc, a, ds, scale, width, cell, what, seed, interval) -> str:
    mean = acc.mean("seed") * scale
    header = "σtrain\\σval " + " ".join(f"{v:>{width}.2g}" for v in ds.sigma_val.values)
    lines = [f"{a}: {what}, mean of {repeats_held(acc)} repeat(s) on {ds.attrs.get('dataset', '?')}", header]
    for st in ds.sigma_train.values:
        row = mean.sel(sigma_train=st).values
        if np.all(np.isnan(row)):
            continue
        lines.append(f"{st:>11.2g} " + " ".join(f"{'-':>{width}}" if np.isnan(v) else f"{v:{width}{cell}}" for v in row))
    if interval:
        lines.append(f"1 seed: no interval (training seed {seed} only; train more with --train-seeds)")
    return "\n".join(lines)


def _interval_block(acc, a, ds, scale, cell, what, seeds) -> str:
    from dni.util.intervals import standard_error, t_interval

    per_model = acc.mean("seed") * scale  # (train_seed, sigma_train, sigma_val)
    ci = t_interval(per_model.transpose(..., TRAIN_SEED).values)  # across models, per (σtrain, σval)
    se = standard_error(acc.transpose(..., "seed").values * scale)  # (train_seed, σtrain, σval): one model's repeats
    with np.errstate(all="ignore"):
        se_mean = np.nanmean(se, axis=0) if se.size else se
    width = 13
    header = "σtrain\\σval " + " ".join(f"{v:>{width}.2g}" for v in ds.sigma_val.values)
    lines = [f"{a}: {what}, mean over {len(seeds)} training seeds ({', '.join(map(str, seeds))}) ± 95 % Student-t interval "
             f"across models (n−1 dof; n per cell in brackets where fewer), each model the mean of {repeats_held(acc)} "
             f"repeat(s) on {ds.attrs.get('dataset', '?')}", header]
    se_lines = [f"evaluation-repeat standard error (inference noise, mean over the models; not in the interval):",
                "σtrain\\σval " + " ".join(f"{v:>{width}.2g}" for v in ds.sigma_val.values)]

    def fmt(m, h, n):
        if np.isnan(m):
            return f"{'-':>{width}}"
        text = f"{m:{cell}}" + ("±" + f"{h:{cell}}" if n >= 2 else " (1 seed)") + (f" ({int(n)})" if 2 <= n < len(seeds) else "")
        return f"{text:>{width}}"

    for t, st in enumerate(ds.sigma_train.values):
        if np.all(np.isnan(ci.mean[t])):
            continue
        lines.append(f"{st:>11.2g} " + " ".join(fmt(m, h, n) for m, h, n in zip(ci.mean[t], ci.half_width[t], ci.n[t])))
        se_lines.append(f"{st:>11.2g} " + " ".join(f"{'-':>{width}}" if np.isnan(v) else f"{v:>{width}{'.2f' if cell == '.1f' else cell}}"
                                                for v in se_mean[t]))
    return "\n".join(lines + [""] + se_lines)


def repeats_held(accuracy: xr.DataArray) -> str:
    """How many repeats the points of ``accuracy`` (over ``seed``) hold: "5", or "1 to 3" where a file
    extended with another repeat count holds points of both (issue 36: a label claims no more than the data)."""
    counts = accuracy.notnull().sum("seed").values
    counts = counts[counts > 0]
    if counts.size == 0:
        return "0"
    low, high = int(counts.min()), int(counts.max())
    return f"{low}" if low == high else f"{low} to {high}"
