"""The reproduction's headline numbers, computed from a result dataset, next to the paper's.

Every number of REPRODUCTION.md comes from :func:`headline` on the committed result file, so a
test can recompute them and ``dni report RESULT.nc`` regenerates the document.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

#: The paper's numbers per preset, which :func:`headline` results are compared with (§III-A/B/C, §IV).
#:
#: :meta hide-value:
PAPER = {
    # preset: clean accuracy (σtrain = σval = 0), σtrain 0 at σval 1, best worst-case σtrain and its
    # bound, expected weight power at σtrain 0 and 1.0 — paper §III-A/B/C and §IV
    "lstm28": {"clean": 0.987, "conventional_at_1": 0.125, "best_sigma_train": 1.0, "worst_case": "> 98 %",
               "weight_power_0": 0.013, "weight_power_1": 0.037},
    "lstm_stroke50": {"clean": 0.96, "conventional_at_1": 0.105, "best_sigma_train": 0.9, "worst_case": "> 92 %",
                      "weight_power_0": 0.018, "weight_power_1": 0.042},
    "rnn28": {"clean": 0.98, "conventional_at_1": 0.15, "best_sigma_train": 0.9, "worst_case": "> 94 %",
              "weight_power_0": None, "weight_power_1": None},
}


@dataclass
class Headline:
    """The numbers REPRODUCTION.md reports for one preset (accuracies are fractions)."""

    arch: str
    clean: float | None  # σtrain = σval = 0 (None: the result has no such point)
    conventional_at_1: float | None  # σtrain = 0 at σval 1 (None: the grid has no such point; never another σval, issue 36)
    best_sigma_train: float  # the σtrain whose worst accuracy over σval is highest
    worst_case: float  # that worst accuracy
    weight_power_0: float | None  # at σtrain 0 (None: no such model, or a file without weight_power)
    weight_power_1: float | None  # at the largest σtrain
    noisy_beats_clean: int | None  # (σtrain, σval > 0) points above the clean baseline (None: no baseline)
    points: int  # how many (σtrain, σval > 0) points there are

    def missing(self) -> list[str]:
        """What the result lacks for the paper's comparison, in words."""
        return ([] if self.clean is not None else ["the clean baseline (σtrain = σval = 0)"]) + \
               ([] if self.conventional_at_1 is not None or self.clean is None else ["σtrain = 0 at σval 1"]) + \
               ([] if self.weight_power_0 is not None else ["the weight power of a σtrain = 0 model"])


def headline(ds: xr.Dataset, arch: str) -> Headline:
    """Headline numbers of ``arch`` from the mean over repeats of ``ds.accuracy``."""
    acc = ds.accuracy.sel(arch=arch).mean("seed")  # (sigma_train, sigma_val)
    st = ds.sigma_train.values[~np.isnan(acc.values).all(axis=1)]
    acc = acc.sel(sigma_train=st)
    top_train = float(st.max())

    def value(da, **at):
        try:
            v = float(da.sel(**at))
        except KeyError:
            return None
        return None if v != v else v

    clean = value(acc, sigma_train=0.0, sigma_val=0.0)
    worst = acc.min("sigma_val")  # (sigma_train,)
    best = float(worst.idxmax("sigma_train"))
    noisy = acc.sel(sigma_val=ds.sigma_val.values[ds.sigma_val.values > 0])
    power = ds.weight_power.sel(arch=arch) if "weight_power" in ds else None
    return Headline(arch, clean, value(acc, sigma_train=0.0, sigma_val=1.0), best,
                    float(worst.sel(sigma_train=best)),
                    value(power, sigma_train=0.0) if power is not None else None,
                    value(power, sigma_train=top_train) if power is not None else None,
                    int((noisy > clean).sum()) if clean is not None else None, int(noisy.notnull().sum()))


def _power(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def worst_case_bound(arch: str) -> float | None:
    """The paper's worst-case accuracy bound for ``arch`` as a fraction ("> 98 %" → 0.98), None where it gives none."""
    text = PAPER.get(arch, {}).get("worst_case")
    match = re.fullmatch(r">\s*([\d.]+)\s*%", text or "")
    if text and not match:
        raise ValueError(f"PAPER[{arch!r}]['worst_case'] must read like '> 98 %', got {text!r}")
    return float(match.group(1)) / 100 if match else None


def percent(x, digits: int = 1):
    """A fraction as a percentage with ``digits`` decimals; None → "–", text (e.g. "> 98 %") as it is."""
    return "–" if x is None else x if isinstance(x, str) else f"{x * 100:.{digits}f} %"


def headline_table(ds: xr.Dataset) -> str:
    """A markdown table: ours next to the paper's, preset by preset."""
    rows = ["| preset | clean (σtrain = σval = 0) | σtrain 0 at σval 1 | best worst-case σtrain: worst accuracy | mean(w²) σtrain 0 → max | noisy points above clean |",
            "|---|---|---|---|---|---|"]
    notes = []
    for arch in ds.arch.values.tolist():
        h, p = headline(ds, arch), PAPER.get(arch, {})
        beats = "–" if h.noisy_beats_clean is None else f"{h.noisy_beats_clean} of {h.points}"
        rows.append(f"| {arch} (ours) | {percent(h.clean)} | {percent(h.conventional_at_1)} | σtrain {h.best_sigma_train:.1f}: {percent(h.worst_case)} | "
                    f"{_power(h.weight_power_0)} → {_power(h.weight_power_1)} | {beats} |")
        if h.missing():
            notes.append(f"{arch}: the result lacks {', '.join(h.missing())}; those cells show –")
        if p:
            wp = f"{p['weight_power_0']} → {p['weight_power_1']}" if p["weight_power_0"] else "–"
            rows.append(f"| {arch} (paper) | {percent(p['clean'])} | {percent(p['conventional_at_1'])} | σtrain {p['best_sigma_train']:.1f}: {p['worst_case']} | {wp} | some (Figs 2, 10) |")
    top = float(ds.sigma_val.max())
    if top != 1.0:  # the paper's worst cases are over σval 0…1: say over what ours are
        notes.append(f"the grid's σval stop at {top:g}: our worst cases are over σval {float(ds.sigma_val.min()):g}…{top:g}, the paper's over 0…1")
    return "\n".join(rows + ([""] + notes if notes else []))


def difference_table(ds: xr.Dataset) -> str:
    """A markdown table: ours minus the paper's, in percentage points, and whether the paper's bound holds."""
    rows = ["| preset | clean: ours − paper | σtrain 0 at σval 1: ours − paper | best worst-case σtrain: ours / paper | paper's worst-case bound met | mean(w²) growth σtrain 0 → max: ours / paper |",
            "|---|---|---|---|---|---|"]
    for arch in ds.arch.values.tolist():
        h, p = headline(ds, arch), PAPER.get(arch)
        if not p:
            continue
        bound = worst_case_bound(arch)
        growth = f"×{h.weight_power_1 / h.weight_power_0:.2f}"
        growth += f" / ×{p['weight_power_1'] / p['weight_power_0']:.2f}" if p["weight_power_0"] else " / –"
        diff = lambda ours, paper: "–" if ours is None else f"{(ours - paper) * 100:+.1f}"  # noqa: E731
        rows.append(f"| {arch} | {diff(h.clean, p['clean'])} | {diff(h.conventional_at_1, p['conventional_at_1'])} | "
                    f"{h.best_sigma_train:.1f} / {p['best_sigma_train']:.1f} | {'yes' if h.worst_case > bound else 'no'} "
                    f"({percent(h.worst_case)} vs {p['worst_case']}) | {growth} |")
    return "\n".join(rows)


def best_noisy_points(ds: xr.Dataset) -> str:
    """Per preset: the best noisy (σtrain, σval > 0) point and how far it is above the clean baseline.

    The paper (§III-A) compares noisy points with the conventional baseline σtrain = σval = 0, which
    mixes two effects: a different model, and noise at inference. The last column counts the noisy
    points above their own model's noiseless accuracy (same σtrain, σval = 0): inference noise alone.
    """
    rows = ["| preset | clean baseline | best noisy point (σtrain, σval) | its accuracy | noisy points above clean | "
            "noisy points above their own model at σval 0 |", "|---|---|---|---|---|---|"]
    for arch in ds.arch.values.tolist():
        h = headline(ds, arch)
        acc = ds.accuracy.sel(arch=arch).mean("seed")  # (sigma_train, sigma_val)
        noisy = acc.sel(sigma_val=ds.sigma_val.values[ds.sigma_val.values > 0])  # (sigma_train, noisy sigma_val)
        best = noisy.where(noisy == noisy.max(), drop=True)
        st, sv = float(best.sigma_train[0]), float(best.sigma_val[0])
        own = int((noisy > acc.sel(sigma_val=0.0)).sum())
        rows.append(f"| {arch} | {percent(h.clean)} | ({st:g}, {sv:g}) | {percent(float(noisy.max()))} ({(float(noisy.max()) - h.clean) * 100:+.2f}) | "
                    f"{h.noisy_beats_clean} of {h.points} | {own} of {h.points} |")
    return "\n".join(rows)


def headlines_dict(ds: xr.Dataset) -> dict:
    return {arch: asdict(headline(ds, arch)) for arch in ds.arch.values.tolist()}


def training_noise_label(config) -> str:
    """A model's training noise as ``dni checkpoints`` lists it: σtrain for the paper's additive noise
    (one decimal, as the paper's grid), ``KIND σ`` for another kind (e.g. ``programming 0.073``)."""
    sigma = config.sigma_train
    text = f"{sigma:.1f}" if round(sigma, 1) == sigma else f"{sigma:g}"
    return text if config.train_noise == "additive" else f"{config.train_noise} {text}"


def training_states_lines(states) -> list[str]:
    """One line per model still in training: ``states`` are (config, history) of its saved training state."""
    lines = []
    for config, history in sorted(states, key=lambda s: (s[0].preset, s[0].train_noise, s[0].sigma_train)):
        done = [r for r in history if "val_accuracy" in r]
        best = max(done, key=lambda r: r["val_accuracy"], default=None)
        what = training_noise_label(config) if config.train_noise != "additive" else f"σtrain {training_noise_label(config)}"
        lines.append(f"in training: {config.preset} {what}, {len(history)} of at most {config.epochs} epochs"
                     + (f", best so far {percent(best['val_accuracy'], 2)} at epoch {best['epoch']}" if best else ""))
    return lines


def training_table(models) -> str:
    """A markdown table of trained models: epochs run, best epoch, validation accuracy, train time.

    ``models``: :class:`dni.store.checkpoints.TrainedModel` objects (e.g. loaded checkpoints). The last row sums
    the train time, which is wall time and includes any time the machine spent on other jobs. Models
    trained together (``--batch-models``) share their time: each shows the time until it converged,
    and the sum counts their run once, at its longest.
    """
    rows = ["| preset | σtrain | epochs run | best epoch | val. accuracy at σtrain | clean val. accuracy | train time |",
            "|---|---|---|---|---|---|---|"]
    runs: dict = {}  # one entry per training run: a model alone, or a batch of models trained together
    for m in sorted(models, key=lambda m: (m.arch, m.config.train_noise, m.sigma_train)):
        best = m.meta.get("best_epoch") or len(m.history)
        record = m.history[best - 1] if m.history else {}
        seconds = float(m.meta.get("train_seconds", float("nan")))
        together = int(m.meta.get("model_batched", 1))
        run = (m.arch, m.meta.get("trained_at"), m.config.device) if together > 1 else id(m)
        runs[run] = max(runs.get(run, 0.0), seconds)
        how = ([f"{together} together"] if together > 1 else []) + ([m.config.device] if m.config.device != "cpu" else [])
        time = f"{seconds / 60:.1f} min" + (f" ({', '.join(how)})" if how else "")
        rows.append(f"| {m.arch} | {training_noise_label(m.config)} | {m.meta.get('epochs_run', len(m.history))} | {best} | "
                    f"{percent(record.get('val_accuracy'), 2)} | {percent(record.get('val_accuracy_clean'), 2)} | {time} |")
    rows.append(f"| all {len(rows) - 2} | | | | | | {sum(runs.values()) / 3600:.2f} h |")
    return "\n".join(rows)


HEADLINE_FIELDS = (("clean", "clean (σtrain = σval = 0)"), ("conventional_at_1", "σtrain 0 at σval 1"),
                   ("worst_case", "worst accuracy over σval at the best σtrain"))


def seed_interval_table(ds: xr.Dataset) -> str:
    """The headline numbers across training seeds (issue 34), a markdown table: per preset and number,
    the mean over the seeds' models ± the half width of the 95 % Student-t interval across models
    (:func:`dni.util.intervals.t_interval`, n − 1 dof) and n; the best σtrain is the one whose mean over
    seeds has the highest worst case, and every seed's worst case is taken at it. Apart, the evaluation
    repeats' standard error of the clean point (mean over the models): inference noise, not model spread.
    With one seed: "1 seed: no interval" instead.
    """
    from dni.store.results import seed_slice, train_seeds_of, with_train_seed_dim
    from dni.util.intervals import standard_error, t_interval

    ds = with_train_seed_dim(ds)
    seeds = train_seeds_of(ds)
    if len(seeds) < 2:
        return f"1 seed: no interval (training seed {seeds[0]} only; the interval needs `dni sweep --train-seeds`)"
    mean_ds = ds.mean("train_seed", keep_attrs=True)  # only to pick the best σtrain of the means
    rows = ["| preset | number | mean ± 95 % t-interval across models (n seeds) | per seed | evaluation-repeat SE |",
            "|---|---|---|---|---|"]
    for arch in ds.arch.values.tolist():
        best = headline(mean_ds, arch).best_sigma_train
        per_seed = {}
        for k in seeds:
            one = seed_slice(ds, k)
            if not bool(one.accuracy.sel(arch=arch).notnull().any()):
                continue
            h = headline(one, arch)
            worst = one.accuracy.sel(arch=arch, sigma_train=best).mean("seed", skipna=False).min("sigma_val", skipna=False).item()  # NaN: a model not yet evaluated at every σval
            per_seed[k] = {"clean": h.clean, "conventional_at_1": h.conventional_at_1, "worst_case": worst}
        for field, name in HEADLINE_FIELDS:
            values = np.array([v[field] if v[field] is not None else np.nan for v in per_seed.values()], float)
            ci = t_interval(values)
            shown = "–" if np.isnan(ci.mean) else (f"{ci.mean * 100:.1f} ± {ci.half_width * 100:.1f} % (n = {int(ci.n)})" if ci.n >= 2
                                                   else f"{ci.mean * 100:.1f} % (1 seed: no interval)")
            label = name if field != "worst_case" else f"{name} ({best:g})"
            se = "–"
            if field == "clean" and 0.0 in ds.sigma_train.values and 0.0 in ds.sigma_val.values:
                reps = ds.accuracy.sel(arch=arch, sigma_train=0.0, sigma_val=0.0).transpose("train_seed", "seed").values
                se = f"{np.nanmean(standard_error(reps)) * 100:.2f} pp"
            rows.append(f"| {arch} | {label} | {shown} | {' '.join(f'{x * 100:.1f}' for x in values)} | {se} |")
    return "\n".join(rows)
