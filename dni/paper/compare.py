"""Paired comparison of two models or training settings across training seeds (issue 34).

What is paired: for every training seed k that both A and B hold, the difference
d_k = ā_k − b̄_k of the two models' accuracies, each the mean over its evaluation repeats at one σval.
The claim's interval is the Student-t 95 % interval of the mean of d_k over the n seeds
(:func:`dni.util.intervals.paired_interval`, n − 1 dof): the model-to-model spread of the
*difference*, so what the two settings share per seed (the initialisation and shuffling of seed k,
which the TrainConfig seed fixes for any σtrain or recipe) cancels.

The evaluation noise is shared too — the same ε met A's and B's model of seed k, repeat r — exactly
when the draw keys agree (:func:`dni.evaluation.evaluate.repeat_seed`, :func:`dni.noise.draws.chunk_seed`):
same arch, σtrain, training seed, eval seed, train and eval noise specs, draw scheme and test set. That
holds for two recipes of one (arch, σtrain) in two files; it does not for two σtrain of one file (σtrain
is in the key), which are then paired by training seed only. :attr:`Comparison.shared_draws` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from dni.errors import InvalidArgumentError
from dni.store.results import TRAIN_SEED, draws_of, load_results, noise_of, noise_pairs, select_noise
from dni.util.intervals import Interval, paired_interval


@dataclass
class Comparison:
    """A − B per training seed and σval, and the t-interval of its mean over the seeds (accuracy as a fraction)."""

    a: str
    b: str
    sigma_val: np.ndarray  # (S,)
    seeds: list[int]  # the training seeds both hold, in order
    mean_a: np.ndarray  # (S,) mean over the seeds of A's per-model accuracy
    mean_b: np.ndarray
    per_seed: np.ndarray  # (n, S): d_k = ā_k − b̄_k
    interval: Interval  # of the mean of d over the seeds, per σval
    shared_draws: bool
    why_not_shared: str = ""


def paired_comparison(a: xr.DataArray, b: xr.DataArray, label_a: str = "A", label_b: str = "B",
                      shared_draws: bool = False, why_not_shared: str = "") -> Comparison:
    """The paired comparison of accuracies ``a`` and ``b``, each over (train_seed, sigma_val, seed).

    Each model's accuracy is its mean over the evaluation repeats (``seed``); the seeds compared are
    those where both have a value at every σval of both (a seed missing on one side is left out).
    """
    ma, mb = a.mean("seed"), b.mean("seed")
    ma, mb = xr.align(ma, mb, join="inner")  # common training seeds and σval
    if ma.sizes.get("sigma_val", 0) == 0:
        raise InvalidArgumentError(f"{label_a} and {label_b} hold no σval point in common; evaluate them on one grid")
    both = (ma.notnull() & mb.notnull()).all("sigma_val")
    seeds = [int(k) for k in ma[TRAIN_SEED].values if bool(both.sel({TRAIN_SEED: k}))]
    if not seeds:
        raise InvalidArgumentError(f"{label_a} and {label_b} hold no training seed in common with all points; "
                                   f"A has seeds {a[TRAIN_SEED].values.tolist()}, B {b[TRAIN_SEED].values.tolist()}")
    ma, mb = ma.sel({TRAIN_SEED: seeds}).transpose(TRAIN_SEED, "sigma_val"), mb.sel({TRAIN_SEED: seeds}).transpose(TRAIN_SEED, "sigma_val")
    interval = paired_interval(ma.values, mb.values, axis=0)
    return Comparison(label_a, label_b, ma.sigma_val.values, seeds, ma.values.mean(0), mb.values.mean(0),
                      ma.values - mb.values, interval, shared_draws, why_not_shared)


def _setting(ds: xr.Dataset, text: str | None, where: str) -> dict:
    """``arch=lstm28,sigma_train=1`` → a selection in ``ds``; None: the file's only (arch, σtrain) model."""
    if text:
        sel = {}
        for part in text.split(","):
            key, _, value = part.partition("=")
            key = key.strip()
            if key not in ("arch", "sigma_train") or not value.strip():
                raise InvalidArgumentError(f"setting {text!r}: give arch=NAME,sigma_train=σ (got {part!r})")
            sel[key] = value.strip() if key == "arch" else float(value)
    else:
        sel = {}
    if "arch" not in sel:
        if ds.sizes["arch"] != 1:
            raise InvalidArgumentError(f"{where} holds archs {ds.arch.values.tolist()}: name one, e.g. --a arch={ds.arch.values[0]},sigma_train=1")
        sel["arch"] = str(ds.arch.values[0])
    if "sigma_train" not in sel:
        held = ds.accuracy.sel(arch=sel["arch"]).notnull().any([d for d in ds.accuracy.dims if d not in ("arch", "sigma_train")])
        st = ds.sigma_train.values[held.values]
        if len(st) != 1:
            raise InvalidArgumentError(f"{where} holds σtrain {st.tolist()} of {sel['arch']}: name one, e.g. arch={sel['arch']},sigma_train={st[-1]:g}")
        sel["sigma_train"] = float(st[0])
    if sel["arch"] not in ds.arch.values or sel["sigma_train"] not in ds.sigma_train.values:
        raise InvalidArgumentError(f"{where} holds no model {sel['arch']} σtrain {sel['sigma_train']:g}")
    return sel


def _one_pair(ds: xr.Dataset, where: str) -> xr.Dataset:
    pairs = noise_pairs(ds)
    if len(pairs) != 1:
        raise InvalidArgumentError(f"{where} holds several noise pairs {pairs}; compare one pair (select it into a file of its own)")
    return select_noise(ds, *pairs[0])


def compare_files(paths, a: str | None = None, b: str | None = None, sigma_val=None) -> Comparison:
    """:func:`paired_comparison` of setting ``a`` of the first file and ``b`` of the second (or of the
    one file), and whether their evaluation draws were shared (see the module docstring)."""
    paths = [Path(p) for p in paths]
    if len(paths) not in (1, 2):
        raise InvalidArgumentError(f"give one result file (with --a and --b) or two (A then B), not {len(paths)}")
    if len(paths) == 1 and not (a and b):
        raise InvalidArgumentError("one result file: name the two settings, e.g. --a arch=lstm28,sigma_train=0 --b arch=lstm28,sigma_train=1")
    files = [_one_pair(load_results(p, train_seed_dim=True), str(p)) for p in paths]
    da, db = files[0], files[-1]
    sa, sb = _setting(da, a, str(paths[0])), _setting(db, b, str(paths[-1]))
    if len(paths) == 1 and sa == sb:
        raise InvalidArgumentError(f"--a and --b name the same model {sa}; compare two settings")
    acc_a, acc_b = da.accuracy.sel(**sa), db.accuracy.sel(**sb)
    if sigma_val is not None:
        missing = [s for s in sigma_val if s not in acc_a.sigma_val.values or s not in acc_b.sigma_val.values]
        if missing:
            raise InvalidArgumentError(f"σval {', '.join(f'{s:g}' for s in missing)} not in both results; they hold "
                                       f"{sorted(set(acc_a.sigma_val.values.tolist()) & set(acc_b.sigma_val.values.tolist()))}")
        acc_a, acc_b = acc_a.sel(sigma_val=list(sigma_val)), acc_b.sel(sigma_val=list(sigma_val))
    why = _why_draws_differ(da, db, sa, sb)
    name = lambda p, s: f"{s['arch']} σtrain {s['sigma_train']:g} in {p.name}"  # noqa: E731
    return paired_comparison(acc_a, acc_b, name(paths[0], sa), name(paths[-1], sb), not why, why)


def _why_draws_differ(da: xr.Dataset, db: xr.Dataset, sa: dict, sb: dict) -> str:
    """"" if the evaluation draws of A's and B's model of each training seed were the same, else why not."""
    reasons = []
    if sa != sb:
        reasons.append("arch/σtrain differ (both are in the draw key)")
    for what, get in (("eval seed", lambda d: str(d.attrs.get("eval_seed"))), ("noise", noise_of), ("draw scheme", draws_of),
                      ("data", lambda d: (d.attrs.get("dataset"), d.attrs.get("test_size"))), ("repeats", lambda d: d.sizes["seed"])):
        if get(da) != get(db):
            reasons.append(f"{what} differs")
    return "; ".join(reasons)


def comparison_table(c: Comparison) -> str:
    """The comparison as text: per σval A, B, the mean difference with its interval, and each seed's difference (pp)."""
    n = len(c.seeds)
    paired = ("the same evaluation draws (same arch, σtrain, training seed, eval seed, noise, scheme and repeats)" if c.shared_draws
              else f"other evaluation draws ({c.why_not_shared})")
    lines = [f"A: {c.a}", f"B: {c.b}",
             f"paired by training seed: n = {n} ({', '.join(map(str, c.seeds))}); each seed's A and B under {paired}",
             f"A − B in percentage points: mean over the seeds ± 95 % Student-t interval (n − 1 = {n - 1} dof)"
             if n >= 2 else "1 seed: no interval (give both settings more --train-seeds)",
             f"{'σval':>5} {'A (%)':>7} {'B (%)':>7} {'A−B':>7} {'95 % interval':>17}   per seed"]
    for j, s in enumerate(c.sigma_val):
        m, h = c.interval.mean[j] * 100, c.interval.half_width[j] * 100
        ci = f"[{m - h:+.2f}, {m + h:+.2f}]" if n >= 2 else "-"
        lines.append(f"{s:5.2g} {c.mean_a[j] * 100:7.2f} {c.mean_b[j] * 100:7.2f} {m:+7.2f} {ci:>17}   "
                     + " ".join(f"{d * 100:+.2f}" for d in c.per_seed[:, j]))
    return "\n".join(lines)
