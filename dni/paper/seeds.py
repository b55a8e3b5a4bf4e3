"""The committed claims across independently trained models (issue 34): REPRODUCTION.md's ``seeds-*`` blocks.

Every claim is one number per **model** — one model per training seed (initialisation and shuffling), its
accuracy the mean over its evaluation repeats — stated as the mean over the n models with the two-sided
95 % Student-t interval across them (:func:`dni.util.intervals.t_interval`, n − 1 dof):

    x̄ ± t_{0.975, n−1} · s / √n

and, where the paper gives a bound, in how many of the n models it holds. A bound is **established** when the
whole interval clears it, **refuted** when the whole interval misses it, and otherwise **not established** (the
interval straddles it): a bound met by every model but with an interval reaching past it is not claimed. Where
the paper gives a number, not a bound, it is one model's: the row says whether it lies inside the 95 % prediction
interval of one more model of our setting, x̄ ± t·s·√(1 + 1/n), widened by the paper's rounding ("differs" when
not). A
comparison of two settings is **paired** by training seed (:func:`dni.util.intervals.paired_interval`: the
interval of the per-seed differences) and called a difference only where that interval excludes 0.

The evaluation repeats' standard error is inference noise, not model-to-model spread; the provenance block
quotes its largest value apart, for scale. The result files are those of ``results/run_seeds_eval.sh``
(``results/seeds/<name>.nc``, dims (arch, train_seed, sigma_train, sigma_val, seed)); a claim whose file or
model is not there yet is left out, and each row says on how many models it rests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from dni.store.results import TRAIN_SEED, draws_of, load_results, repeats_held
from dni.util.intervals import CONFIDENCE, Interval, paired_interval, prediction_interval, standard_error, t_interval

CLEAN, AT_ONE, WORST, POWER = "clean", "at σval 1", "worst over σval", "mean(w²)"
STATISTICS = (CLEAN, AT_ONE, WORST, POWER)
"""What a claim measures per model: accuracy at σval 0, accuracy at σval 1, the lowest accuracy over the file's
σval grid (each point the mean over its repeats), or the weight power mean(w²) (paper Figs 5, 9)."""


@dataclass(frozen=True)
class Claim:
    """One number per model of one setting, and what the paper says of it.

    ``bound`` (a fraction) with ``above``: the claim is "statistic > bound" (``above`` True, the paper's
    "> 98 %") or "statistic ≤ bound" (``above`` False, e.g. the collapse: σval 1 at most 25 %)."""

    file: str  # result file stem in the seeds folder
    arch: str
    sigma_train: float
    statistic: str  # one of STATISTICS
    paper: str = ""  # the paper's number as printed ("98.7 %", "> 98 %", "0.013"), "" where it gives none
    bound: float | None = None
    above: bool = True
    recipe: str = ""  # what differs from the committed grid's recipe, shown in the label ("" for none)

    @property
    def label(self) -> str:
        recipe = f" ({self.recipe})" if self.recipe else ""
        return f"{self.arch} σtrain {self.sigma_train:g}{recipe}, {self.statistic}"


@dataclass(frozen=True)
class Difference:
    """Setting A − setting B of one file and statistic, paired by training seed (both models of seed k)."""

    file: str
    arch: str
    sigma_train_a: float
    sigma_train_b: float
    statistic: str  # one of STATISTICS
    recipe: str = ""  # as Claim.recipe

    @property
    def label(self) -> str:
        recipe = f" ({self.recipe})" if self.recipe else ""
        return f"{self.arch}{recipe}: σtrain {self.sigma_train_a:g} − σtrain {self.sigma_train_b:g}, {self.statistic}"


CONTROL, CONTROL_RECIPE = "control_lstm_stroke50", "30 epochs, last weights"
"""The weight-power control (``results/run_seeds.sh control``): lstm_stroke50 σtrain 0, 0.5, 1 all trained for
the same 30 epochs without early stopping, so that σtrain is not confounded with training length."""

#: The paper grid's claims (Tables I–III, Figs 2, 5, 9, 10): clean accuracy, the conventional model at σval 1,
#: the worst case over σval of the paper's noise-trained σtrain (with its bound) and of our other σtrain, and
#: the weight power at σtrain 0 and at the largest σtrain — in the grid (noisier models trained longer) and in the
#: fixed-length control (:data:`CONTROL`).
#:
#: :meta hide-value:
PAPER_CLAIMS = (
    Claim("lstm28", "lstm28", 0.0, CLEAN, "98.7 %"),
    Claim("lstm28", "lstm28", 0.0, AT_ONE, "12.5 %"),
    Claim("lstm28", "lstm28", 0.5, WORST),
    Claim("lstm28", "lstm28", 1.0, WORST, "> 98 %", 0.98),
    Claim("lstm28", "lstm28", 0.0, POWER, "0.013"),
    Claim("lstm28", "lstm28", 1.0, POWER, "0.037"),
    Claim("rnn28", "rnn28", 0.0, CLEAN, "98.0 %"),
    Claim("rnn28", "rnn28", 0.0, AT_ONE, "15.0 %"),
    Claim("rnn28", "rnn28", 0.5, WORST),
    Claim("rnn28", "rnn28", 0.9, WORST, "> 94 %", 0.94),
    Claim("rnn28", "rnn28", 1.0, WORST),
    Claim("rnn28", "rnn28", 0.0, POWER),
    Claim("rnn28", "rnn28", 1.0, POWER),
    Claim("lstm_stroke50", "lstm_stroke50", 0.0, CLEAN, "96.0 %"),
    Claim("lstm_stroke50", "lstm_stroke50", 0.0, AT_ONE, "10.5 %"),
    Claim("lstm_stroke50", "lstm_stroke50", 0.9, WORST, "> 92 %", 0.92),
    Claim("lstm_stroke50", "lstm_stroke50", 0.0, POWER, "0.018"),
    Claim("lstm_stroke50", "lstm_stroke50", 0.9, POWER, "0.042 (σtrain 1)"),
    *(Claim(CONTROL, "lstm_stroke50", st, POWER, recipe=CONTROL_RECIPE) for st in (0.0, 0.5, 1.0)),
)

#: Paired comparisons behind the paper grid's prose: what noise training buys at σval 1 and costs (or, as the
#: paper's conclusion has it, "improves slightly") at σval 0, whether the RNN's worst case grows from σtrain 0.5
#: to the paper's 0.9, and whether the weight power grows with σtrain (Figs 5, 9) — in the grid, where noisier
#: models also trained longer, and in the fixed-length control.
#:
#: :meta hide-value:
PAPER_DIFFERENCES = (
    Difference("lstm28", "lstm28", 1.0, 0.0, AT_ONE),
    Difference("lstm28", "lstm28", 1.0, 0.0, CLEAN),
    Difference("lstm28", "lstm28", 1.0, 0.5, WORST),
    Difference("rnn28", "rnn28", 0.9, 0.0, AT_ONE),
    Difference("rnn28", "rnn28", 0.9, 0.0, CLEAN),
    Difference("rnn28", "rnn28", 0.9, 0.5, WORST),
    Difference("rnn28", "rnn28", 1.0, 0.9, WORST),
    Difference("lstm_stroke50", "lstm_stroke50", 0.9, 0.0, CLEAN),
    Difference("lstm_stroke50", "lstm_stroke50", 0.9, 0.0, AT_ONE),
    Difference("lstm28", "lstm28", 1.0, 0.0, POWER),
    Difference("rnn28", "rnn28", 1.0, 0.0, POWER),
    Difference("lstm_stroke50", "lstm_stroke50", 0.9, 0.0, POWER),
    Difference(CONTROL, "lstm_stroke50", 0.5, 0.0, POWER, CONTROL_RECIPE),
    Difference(CONTROL, "lstm_stroke50", 1.0, 0.0, POWER, CONTROL_RECIPE),
    Difference(CONTROL, "lstm_stroke50", 1.0, 0.0, CLEAN, CONTROL_RECIPE),
)

WD = "weight decay 1e-3"

#: The collapse explanation (issue 26): weight decay 1e-3 on lstm28, its conventional model against the paper's
#: pair (98.7 % clean, 12.5 % at σval 1; the study's test: σval 1 at most 25 %), its σtrain 1.0 model against the
#: paper's bound, and the weight power of both against the paper's 0.013 and 0.037.
#:
#: :meta hide-value:
COLLAPSE_CLAIMS = (
    Claim("weight_decay_1e-3", "lstm28", 0.0, CLEAN, "98.7 %", recipe=WD),
    Claim("weight_decay_1e-3", "lstm28", 0.0, AT_ONE, "12.5 %", 0.25, above=False, recipe=WD),
    Claim("weight_decay_1e-3", "lstm28", 0.0, POWER, "0.013", recipe=WD),
    Claim("weight_decay_1e-3_dni", "lstm28", 1.0, WORST, "> 98 %", 0.98, recipe=WD),
    Claim("weight_decay_1e-3_dni", "lstm28", 1.0, POWER, "0.037", recipe=WD),
)


def load_seed_results(directory: Path) -> dict[str, xr.Dataset]:
    """{file stem: result with a train_seed dim} of every ``*.nc`` in ``directory`` (empty if there is none)."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    return {p.stem: load_results(p, need=("accuracy", "weight_power"), train_seed_dim=True)
            for p in sorted(directory.glob("*.nc"))}


def load_adc_range(path: Path) -> xr.Dataset:
    """The ADC own-range sweep of ``results/noise_kinds/adc_own_range.py``; a file that is not one: one line saying so."""
    from dni.errors import ResultSchemaError
    from dni.store.results import NETCDF_ENGINE

    try:
        ds = xr.load_dataset(path, engine=NETCDF_ENGINE)
    except (OSError, ValueError) as err:
        raise ResultSchemaError(f"cannot read {path} ({err}): rerun results/noise_kinds/adc_own_range.py --force") from None
    missing = [v for v in ("accuracy", "noiseless", "bound", "train_noise", "sigma_train", "train_seed") if v not in ds.variables]
    if missing or "fixed_bound" not in ds.attrs:
        raise ResultSchemaError(f"{path} is not an ADC own-range sweep (it lacks {', '.join(missing) or 'attrs fixed_bound'}): "
                                "rerun results/noise_kinds/adc_own_range.py --force")
    return ds


def per_model(ds: xr.Dataset, arch: str, sigma_train: float, statistic: str) -> xr.DataArray:
    """The statistic of each model of (arch, σtrain): a 1-D array over train_seed, NaN where a model or a
    point of it is missing (a model missing any σval of the file has no worst case; a file without σval 0 or 1
    has no clean or σval-1 value). Accuracies are rounded to 1e-9, so that a model exactly at a bound is not
    put above or below it by the rounding of the mean over its repeats."""
    if statistic == POWER:
        return ds.weight_power.sel(arch=arch, sigma_train=sigma_train)
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; the statistics are: {', '.join(STATISTICS)}")
    acc = ds.accuracy.sel(arch=arch, sigma_train=sigma_train).mean("seed", skipna=False).round(9)  # (train_seed, sigma_val)
    at = {CLEAN: 0.0, AT_ONE: 1.0}.get(statistic)
    if at is None:
        return acc.min("sigma_val", skipna=False)
    if at not in acc.sigma_val.values:
        return xr.full_like(acc.isel(sigma_val=0, drop=True), np.nan)
    return acc.sel(sigma_val=at)


def _held(values: xr.DataArray) -> tuple[list[int], np.ndarray]:
    """The training seeds with a value, and their values (fractions or weight power)."""
    keep = values.notnull().values
    return [int(k) for k in values[TRAIN_SEED].values[keep]], values.values[keep].astype(float)


def verdict(ci: Interval, bound: float, above: bool = True) -> str:
    """established / refuted / not established: where the interval lies against ``bound``."""
    if ci.n < 2:
        return "1 model: no interval"
    clears = ci.low > bound if above else ci.high <= bound
    misses = ci.high <= bound if above else ci.low > bound
    return "established" if clears else "refuted" if misses else "not established (the interval straddles it)"


def _fmt(x: float, statistic: str, signed: bool = False) -> str:
    if statistic == POWER:
        return f"{x:+.4f}" if signed else f"{x:.4f}"
    return f"{x * 100:+.2f}" if signed else f"{x * 100:.2f}"


def _interval_text(ci: Interval, statistic: str, signed: bool = False) -> str:
    unit = "" if statistic == POWER else (" pp" if signed else " %")
    if ci.n < 2:
        return f"{_fmt(float(ci.mean), statistic, signed)}{unit} (1 model: no interval)"
    return (f"{_fmt(float(ci.mean), statistic, signed)}{unit} [{_fmt(float(ci.low), statistic, signed)}, "
            f"{_fmt(float(ci.high), statistic, signed)}]")


def _per_seed_text(seeds: list[int], values: np.ndarray, statistic: str, signed: bool = False) -> str:
    return ", ".join(f"{_fmt(v, statistic, signed)} ({k})" for k, v in zip(seeds, values))


def paper_value(claim: Claim) -> tuple[float, float] | None:
    """The paper's number of a claim without a bound and half its last printed digit, in our units ("98.7 %" →
    (0.987, 0.0005), "0.013" → (0.013, 0.0005)); None for a bound or no number."""
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?( %)?", claim.paper)
    if claim.bound is not None or not match:
        return None
    scale = 100 if match[3] else 1
    value = float(f"{match[1]}.{match[2] or 0}") / scale
    return value, 0.5 * 10.0 ** -len(match[2] or "") / scale


def against_paper(values: np.ndarray, paper: tuple[float, float], statistic: str) -> str:
    """Whether the paper's one model could be one of ours: its number (± its rounding) against the 95 % prediction
    interval of one more model of our setting (:func:`dni.util.intervals.prediction_interval`)."""
    pi = prediction_interval(values)
    if pi.n < 2:
        return "1 model: no interval"
    value, rounding = paper
    shown = f"[{_fmt(float(pi.low), statistic)}, {_fmt(float(pi.high), statistic)}]"
    if value + rounding < pi.low or value - rounding > pi.high:
        return f"outside our models' 95 % prediction interval {shown}: differs"
    return f"inside our models' 95 % prediction interval {shown}"


def claim_row(ds: xr.Dataset, claim: Claim) -> str | None:
    """The markdown row of one claim, or None where the file holds no model of its setting."""
    if claim.arch not in ds.arch.values or claim.sigma_train not in ds.sigma_train.values:
        return None
    seeds, values = _held(per_model(ds, claim.arch, claim.sigma_train, claim.statistic))
    if not seeds:
        return None
    ci = t_interval(values)
    if claim.bound is not None:
        sign = ">" if claim.above else "≤"
        holds = values > claim.bound if claim.above else values <= claim.bound
        bound_text = f"{sign} {_fmt(claim.bound, claim.statistic)}{'' if claim.statistic == POWER else ' %'}"
        called = verdict(ci, claim.bound, claim.above)
        called = (called if ci.n < 2 else f"not established for {bound_text} (the interval straddles it)"
                  if called.startswith("not established") else f"{called} for {bound_text}")
        judged = f"{int(holds.sum())} of {len(values)} | {called}"
    elif (paper := paper_value(claim)) is not None:
        judged = "– | " + against_paper(values, paper, claim.statistic)
    else:
        judged = "– | –"
    return (f"| {claim.label} | {_per_seed_text(seeds, values, claim.statistic)} | {_interval_text(ci, claim.statistic)} "
            f"| {len(values)} | {claim.paper or '–'} | {judged} |")


CLAIMS_HEADER = ("| claim | per model (training seed) | mean [95 % t-interval across models] | models | the paper "
                 "| holds in | the interval against the paper |\n|---|---|---|---|---|---|---|")


def _table(results: dict[str, xr.Dataset], items, row_of, header: str, empty: str) -> str:
    """``header`` and one row per item (a Claim or Difference) whose file and models exist in ``results``, in order."""
    rows = [row for item in items if item.file in results and (row := row_of(results[item.file], item)) is not None]
    return "\n".join([header, *rows]) if rows else empty


def claims_table(results: dict[str, xr.Dataset], claims=PAPER_CLAIMS) -> str:
    """One row per claim whose models exist in ``results`` (file stem → dataset), in ``claims``' order."""
    return _table(results, claims, claim_row, CLAIMS_HEADER, "(no model of these claims evaluated yet)")


def paired_reading(ci: Interval) -> str:
    """How a paired difference A − B reads: a difference only where its interval excludes 0."""
    if ci.n < 2:
        return "1 model each: no interval"
    return "A > B" if ci.low > 0 else "A < B" if ci.high < 0 else "not separated (the interval includes 0)"


def difference_row(ds: xr.Dataset, diff: Difference) -> str | None:
    """The markdown row of one paired difference, or None where no training seed holds both models."""
    if diff.arch not in ds.arch.values or not {diff.sigma_train_a, diff.sigma_train_b} <= set(ds.sigma_train.values.tolist()):
        return None
    a = per_model(ds, diff.arch, diff.sigma_train_a, diff.statistic)
    b = per_model(ds, diff.arch, diff.sigma_train_b, diff.statistic)
    both = (a.notnull() & b.notnull()).values
    if not both.any():
        return None
    seeds = [int(k) for k in a[TRAIN_SEED].values[both]]
    ci = paired_interval(a.values[both], b.values[both])
    d = a.values[both] - b.values[both]
    return (f"| {diff.label} | {_per_seed_text(seeds, d, diff.statistic, True)} | {_interval_text(ci, diff.statistic, True)} "
            f"| {len(seeds)} | {paired_reading(ci)} |")


DIFFERENCES_HEADER = ("| A − B (paired by training seed) | per seed | mean [95 % t-interval of the paired difference] "
                      "| seeds | reading |\n|---|---|---|---|---|")


def differences_table(results: dict[str, xr.Dataset], differences=PAPER_DIFFERENCES) -> str:
    """One row per paired difference whose models exist in ``results``, in ``differences``' order."""
    return _table(results, differences, difference_row, DIFFERENCES_HEADER, "(no pair of these models evaluated yet)")


def has_noisy_points(ds: xr.Dataset) -> bool:
    """Whether a seeds file was evaluated at some σval > 0 (the control is not: σval 0 only), so that it has an
    evaluation-repeat spread and an accuracy curve over σval to draw."""
    return bool((np.asarray(ds.sigma_val.values, float) > 0).any())


def provenance_lines(results: dict[str, xr.Dataset]) -> str:
    """Per file: the settings, the training seeds of each, the repeats and test digits, the draw scheme, and the
    largest evaluation-repeat standard error (inference noise, for scale against the intervals)."""
    lines = [f"Intervals: two-sided {CONFIDENCE:.0%} Student-t across models (n − 1 dof); accuracy in %, "
             "each model's value the mean over its evaluation repeats."]
    for name, ds in results.items():
        settings = []
        for arch in ds.arch.values.tolist():
            for st in ds.sigma_train.values.tolist():
                held = ds.accuracy.sel(arch=arch, sigma_train=st).notnull().any(["sigma_val", "seed"])
                seeds = [int(k) for k in ds[TRAIN_SEED].values[held.values]]
                if seeds:
                    settings.append(f"{arch} σtrain {st:g} (seeds {', '.join(map(str, seeds))})")
        head = (f"- `{name}.nc`: {'; '.join(settings)}; {ds.attrs.get('dataset', '?')}, "
                f"{int(ds.attrs.get('test_size', 0)):,} test digits, σval {_grid(ds.sigma_val.values)}")
        if not has_noisy_points(ds):  # e.g. the weight-power control: its clean accuracy is one deterministic pass
            lines.append(f"{head}, one noiseless pass per model (no inference noise, so no evaluation-repeat SE)")
            continue
        se = standard_error(ds.accuracy.transpose(..., "seed").values)
        largest = np.nanmax(se) * 100 if np.isfinite(se).any() else float("nan")
        lines.append(f"{head}, {repeats_held(ds.accuracy)} repeats, {draws_of(ds)} draws; "
                     f"largest evaluation-repeat SE {largest:.2f} pp")
    return "\n".join(lines)


def _grid(values: np.ndarray) -> str:
    values = np.asarray(values, float)
    steps = np.diff(values)
    if len(values) > 2 and np.allclose(steps, steps[0]):
        return f"{values[0]:g}:{values[-1]:g}:{steps[0]:g}"
    return ", ".join(f"{v:g}" for v in values)


SEEDS_BLOCKS = ("seeds-provenance", "seeds-claims", "seeds-differences", "seeds-collapse", "seeds-figures")
"""The blocks ``dni reproduction`` writes from the seeds folder (``--seeds``)."""


ADC_RANGE_BLOCK = "adc-own-range"
"""The block of the ADC sweep with each model's own range (``results/noise_kinds/adc_own_range.nc``)."""


SEEDS_FIGURE_CAPTION = ("test accuracy and error rate over σval, one line per σtrain: the mean over the training seeds' "
                        "models, the band their 95 % t-interval")


def seeds_figure_path(directory: Path, name: str) -> Path:
    """``<directory>/seeds_<name>_accuracy.png``: the accuracy figure of one seeds file, drawn by ``dni reproduction``."""
    return Path(directory) / f"seeds_{name}_accuracy.png"


def seeds_figures_block(results: dict[str, xr.Dataset], directory: Path, relative_to: Path) -> str:
    """Links to each seeds file's accuracy figure (with its band across models), relative to the document; a file
    evaluated at σval 0 alone (:func:`has_noisy_points`) has none."""
    import os

    lines = []
    for name, ds in results.items():
        if not has_noisy_points(ds):  # one σval: no curve to draw
            continue
        link = Path(os.path.relpath(seeds_figure_path(directory, name).resolve(), Path(relative_to).resolve())).as_posix()
        lines.append(f"![{name}: {SEEDS_FIGURE_CAPTION}]({link})\n")
    return "\n".join(lines).rstrip()


def seeds_blocks(results: dict[str, xr.Dataset], figures_dir: Path | None = None, document_dir: Path | None = None) -> dict[str, str]:
    """{block name: markdown} of the seeds blocks (:data:`SEEDS_BLOCKS`; ``seeds-figures`` when ``figures_dir`` is given)."""
    blocks = {
        "seeds-provenance": provenance_lines(results),
        "seeds-claims": claims_table(results, PAPER_CLAIMS),
        "seeds-differences": differences_table(results, PAPER_DIFFERENCES),
        "seeds-collapse": claims_table(results, COLLAPSE_CLAIMS),
    }
    if figures_dir is not None:
        blocks["seeds-figures"] = seeds_figures_block(results, figures_dir, document_dir or Path("."))
    return blocks


def adc_range_table(ds: xr.Dataset, bits: int = 4, within: float = 0.01) -> str:
    """The ADC sweep per model setting (train noise, σtrain) over its training seeds (:mod:`dni.evaluation.adc_range`):
    each model's own range, the fewest bits within ``within`` of its noiseless accuracy over the fixed range and over
    its own (per model), the accuracy at ``bits`` bits under each range — mean [95 % t-interval across models] — and
    own − fixed at ``bits`` bits paired by model (the same model under both ranges)."""
    from dni.evaluation.adc_range import fewest_bits

    need = fewest_bits(ds, within)  # (model, range)
    fixed = f"±{ds.attrs['fixed_bound']:g}"
    rows = [f"| model | models | own range ± (per model) | fewest bits within {within * 100:g} point, {fixed} "
            f"| fewest bits, own range | {bits} bits over {fixed} | {bits} bits over its own range "
            f"| own − {fixed} at {bits} bits, paired | − conventional at {bits} bits, own ranges, paired by training seed |",
            "|---|---|---|---|---|---|---|---|---|"]

    def listed(values, f) -> str:
        return ", ".join(f(v) for v in values)

    settings = sorted({(str(t), float(st)) for t, st in zip(ds.train_noise.values, ds.sigma_train.values)},
                      key=lambda ts: (ts[1] != 0, ts))
    for train_noise, st in settings:
        mask = (ds.train_noise.values == train_noise) & (ds.sigma_train.values == st)
        part = ds.sel(model=ds.model.values[mask]).sortby("train_seed")
        label = "conventional (σtrain 0)" if st == 0 else f"{train_noise} {st:g}"
        fewest = [listed(need.sel(model=part.model.values, range=r).values, lambda b: "> max" if np.isnan(b) else str(int(b)))
                  for r in ("fixed", "own")]
        at = {r: part.accuracy.sel(range=r, bits=bits).values for r in ("fixed", "own")}
        cells = [_interval_text(t_interval(at[r]), CLEAN) for r in ("fixed", "own")]
        paired = _interval_text(paired_interval(at["own"], at["fixed"]), CLEAN, signed=True)
        versus = "–"
        if st != 0 and 0.0 in ds.sigma_train.values:  # the same training seed's conventional model, both on their own range
            conv = ds.sel(model=ds.model.values[(ds.train_noise.values == train_noise) & (ds.sigma_train.values == 0)])
            conv_at = dict(zip(conv.train_seed.values.tolist(), conv.accuracy.sel(range="own", bits=bits).values))
            common = [(a, conv_at[k]) for k, a in zip(part.train_seed.values.tolist(), at["own"]) if k in conv_at]
            if common:
                versus = _interval_text(paired_interval(*np.array(common).T), CLEAN, signed=True)
        rows.append(f"| {label} | {part.sizes['model']} (seeds {listed(part.train_seed.values, str)}) | "
                    f"{listed(part.bound.sel(range='own').values, lambda b: f'{b:.4g}')} | {fewest[0]} | {fewest[1]} | "
                    f"{cells[0]} | {cells[1]} | {paired} | {versus} |")
    return "\n".join(rows)
