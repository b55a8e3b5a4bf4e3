"""The noise-kinds answers across independently trained models (issue 34): REPRODUCTION.md's ``seeds-kinds`` blocks.

Issue 19's mismatch grid (``results/noise_kinds.nc``) holds one trained model per (training kind, strength). Its
answers — does the paper's additive DNI carry over to another kind of analog noise, and which training noise
protects best against which — are here restated on every training seed of the middle-strength models
(``results/run_seeds_eval.sh kinds``: the conventional model, additive σtrain 0.5, 0.7 and 1.0, output_relative
0.78, programming 0.1 and weight_read 0.15, the last retrained with selection on clean validation), each evaluated
noiseless and under each kind at its middle strength (``results/noise_kinds/strengths.json``), 40 repeats with
shared draws, into ``results/seeds/kinds/<train kind>__<eval kind>.nc``.

As in :mod:`dni.paper.seeds`, one number per **model** (its mean over the evaluation repeats), the mean over the
models with the two-sided 95 % Student-t interval across them, and a comparison of two models **paired** by training
seed (the interval of the per-seed differences), called a difference only where that interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from dni.errors import ResultSchemaError
from dni.paper.seeds import CLEAN, _interval_text, _per_seed_text, paired_reading
from dni.store.results import TRAIN_SEED, load_results
from dni.util.intervals import paired_interval, t_interval

KINDS = ("additive", "output_relative", "programming", "weight_read")
"""The kinds of the mismatch grid, in its column order (README, Noise kinds)."""

NOISELESS = None
"""The eval kind of a statistic measured without inference noise (σval 0)."""


@dataclass(frozen=True)
class KindModel:
    """The models of one training setting: lstm28 trained under ``train_noise`` at ``sigma_train``."""

    train_noise: str
    sigma_train: float
    note: str = ""  # what differs from the grid's recipe, shown in the label

    @property
    def label(self) -> str:
        name = "conventional (σtrain 0)" if self.sigma_train == 0 else f"{self.train_noise} {self.sigma_train:g}"
        return f"{name}, {self.note}" if self.note else name


@dataclass(frozen=True)
class KindDifference:
    """Model A − model B under ``eval_noise`` at its middle strength (``NOISELESS``: σval 0), paired by training seed."""

    a: KindModel
    b: KindModel
    eval_noise: str | None
    answer: str  # the sentence of REPRODUCTION.md this difference tests


CONVENTIONAL = KindModel("additive", 0.0)
ADDITIVE_05, ADDITIVE_07, ADDITIVE_1 = (KindModel("additive", s) for s in (0.5, 0.7, 1.0))
OUTPUT_RELATIVE = KindModel("output_relative", 0.78)
PROGRAMMING = KindModel("programming", 0.1)
WEIGHT_READ = KindModel("weight_read", 0.15, "selected on clean validation")

#: The rows of the ``seeds-kinds`` table: the conventional model, the paper's noise at three strengths, and each
#: other kind's middle-strength model.
#:
#: :meta hide-value:
KIND_MODELS = (CONVENTIONAL, ADDITIVE_05, ADDITIVE_07, ADDITIVE_1, OUTPUT_RELATIVE, PROGRAMMING, WEIGHT_READ)

#: The paired comparisons behind each noise-kinds answer of REPRODUCTION.md (issue 19), one row each.
#:
#: :meta hide-value:
KIND_DIFFERENCES = (
    KindDifference(ADDITIVE_07, CONVENTIONAL, "output_relative", "additive DNI carries over to output_relative noise"),
    KindDifference(ADDITIVE_07, CONVENTIONAL, "programming", "additive DNI does harm under weight noise"),
    KindDifference(ADDITIVE_07, CONVENTIONAL, "weight_read", "additive DNI does harm under weight noise"),
    KindDifference(ADDITIVE_1, ADDITIVE_05, "weight_read", "the more additive noise in training, the worse under weight noise"),
    KindDifference(OUTPUT_RELATIVE, ADDITIVE_07, "additive", "additive and output_relative training: no difference claimed"),
    KindDifference(OUTPUT_RELATIVE, ADDITIVE_07, "output_relative", "additive and output_relative training: no difference claimed"),
    KindDifference(PROGRAMMING, ADDITIVE_07, "programming", "against weight noise, programming noise in training rather than additive"),
    KindDifference(PROGRAMMING, ADDITIVE_07, "weight_read", "against weight noise, programming noise in training rather than additive"),
    KindDifference(PROGRAMMING, CONVENTIONAL, "programming", "programming training against conventional training"),
    KindDifference(PROGRAMMING, CONVENTIONAL, "weight_read", "programming training against conventional training"),
    KindDifference(PROGRAMMING, CONVENTIONAL, NOISELESS, "programming training against conventional training"),
    KindDifference(PROGRAMMING, WEIGHT_READ, "weight_read", "against weight_read noise, programming or weight_read training"),
    KindDifference(WEIGHT_READ, CONVENTIONAL, "weight_read", "weight_read training against conventional training"),
    KindDifference(WEIGHT_READ, CONVENTIONAL, NOISELESS, "does weight_read training cost clean accuracy?"),
)

KINDS_SEEDS_BLOCKS = ("seeds-kinds", "seeds-kinds-differences")
"""The blocks ``dni reproduction`` writes from ``<seeds folder>/kinds``."""


def load_kinds_seeds(directory: Path) -> dict[tuple[str, str], xr.Dataset]:
    """{(train kind, eval kind): result with a train_seed dim} of every ``*.nc`` in ``directory`` (empty if none).

    The kinds come from the file's ``train_noise`` and ``eval_noise`` attributes (``dni sweep`` writes them); each
    dataset keeps its path in ``attrs["kinds_file"]`` for messages. Two files of one pair, a file of several archs or
    one whose σval grid is not {0, one strength} are refused in one line."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    results: dict[tuple[str, str], xr.Dataset] = {}
    for path in sorted(directory.glob("*.nc")):
        ds = load_results(path, need=("accuracy",), train_seed_dim=True)
        kinds = (ds.attrs.get("train_noise"), ds.attrs.get("eval_noise"))
        if not all(kinds):
            raise ResultSchemaError(f"{path} has no train_noise/eval_noise attributes: it is not a file of "
                                    f"results/run_seeds_eval.sh kinds; move it out of {directory}")
        key = (str(kinds[0]), str(kinds[1]))
        if key in results:
            raise ResultSchemaError(f"{results[key].attrs['kinds_file']} and {path} both hold lstm28 trained under {key[0]} and "
                                    f"evaluated under {key[1]}: keep one of them in {directory}")
        if ds.sizes["arch"] != 1:
            raise ResultSchemaError(f"{path} holds {ds.sizes['arch']} archs ({', '.join(map(str, ds.arch.values))}); a kinds "
                                    "file holds one: re-run results/run_seeds_eval.sh kinds")
        ds.attrs["kinds_file"] = str(path)
        middle_strength(ds)  # refuses a grid other than {0, one strength}
        results[key] = ds
    return results


def middle_strength(ds: xr.Dataset) -> float:
    """The one inference strength > 0 of a kinds file (its σval grid is {0, middle})."""
    grid = [float(v) for v in ds.sigma_val.values]
    noisy = [v for v in grid if v > 0]
    if len(noisy) != 1 or 0.0 not in grid:
        raise ResultSchemaError(f"{ds.attrs.get('kinds_file', 'a kinds file')} evaluates σval {', '.join(f'{v:g}' for v in grid)}; "
                                "a kinds file holds σval 0 and one strength: re-run results/run_seeds_eval.sh kinds")
    return noisy[0]


def model_values(results: dict[tuple[str, str], xr.Dataset], model: KindModel, eval_noise: str | None) -> xr.DataArray | None:
    """The accuracy of each model of ``model``'s setting (a 1-D array over train_seed, NaN where one is missing): under
    ``eval_noise`` at its middle strength, or noiseless — σval 0, the same noise-free pass in every file of the
    training kind, so each seed's value comes from whichever file holds it (files that disagree are refused). None
    where no file holds the setting. Rounded to 1e-9 as :func:`dni.paper.seeds.per_model`."""
    kinds = KINDS if eval_noise is NOISELESS else (eval_noise,)
    found = []
    for kind in kinds:
        ds = results.get((model.train_noise, kind))
        if ds is None or model.sigma_train not in ds.sigma_train.values:
            continue
        at = 0.0 if eval_noise is NOISELESS else middle_strength(ds)
        acc = ds.accuracy.isel(arch=0).sel(sigma_train=model.sigma_train, sigma_val=at)  # (train_seed, seed)
        found.append((ds.attrs.get("kinds_file", kind), acc.mean("seed", skipna=False).round(9)))
    if not found:
        return None
    merged = xr.concat([v for _, v in found], dim="file", join="outer")  # (file, train_seed)
    spread = (merged.max("file") - merged.min("file")).fillna(0)
    if bool((spread > 1e-9).any()):
        seed = int(merged[TRAIN_SEED].values[(spread > 1e-9).values][0])
        raise ResultSchemaError(f"{' and '.join(f for f, _ in found)} give {model.label} seed {seed} different noiseless "
                                "accuracies: they are not from the same checkpoints; re-run results/run_seeds_eval.sh kinds")
    return merged.max("file", skipna=True)


def strength_label(results: dict[tuple[str, str], xr.Dataset], eval_noise: str | None) -> str:
    """"noiseless" or "<kind> <middle strength>"; the files evaluated under a kind must agree on its strength."""
    if eval_noise is NOISELESS:
        return "noiseless"
    files = [d for (_, e), d in results.items() if e == eval_noise]
    strengths = {middle_strength(d) for d in files}
    if len(strengths) > 1:
        each = ", ".join(f"{d.attrs.get('kinds_file', '?')}: {middle_strength(d):g}" for d in files)
        raise ResultSchemaError(f"the files evaluated under {eval_noise} use different strengths ({each}): "
                                "re-run results/run_seeds_eval.sh kinds, which takes each kind's middle strength from strengths.json")
    return eval_noise if not files else f"{eval_noise} {strengths.pop():g}"


def _cell(values: xr.DataArray | None, row_models: int) -> str:
    """mean [interval] of the models held; "(n of N models)" where the cell rests on fewer than its row."""
    if values is None or not values.notnull().any():
        return "–"
    held = values.values[values.notnull().values]
    text = _interval_text(t_interval(held), CLEAN)
    return text if len(held) == row_models or len(held) < 2 else f"{text} ({len(held)} of {row_models} models)"


def kinds_table(results: dict[tuple[str, str], xr.Dataset], models=KIND_MODELS) -> str:
    """Each model setting (rows) noiseless and under each kind at its middle strength (columns): the mean over its
    training seeds' models with the 95 % t-interval across them, in %; rows without any model are left out."""
    if not results:
        return "(no model of the noise kinds evaluated across training seeds yet)"
    columns = [NOISELESS, *(k for k in KINDS if any(e == k for _, e in results))]
    rows = [f"| trained under | models (training seeds) | {' | '.join(strength_label(results, e) for e in columns)} |",
            "|---|---|" + "---|" * len(columns)]
    for model in models:
        values = [model_values(results, model, e) for e in columns]
        held = sorted({int(k) for v in values if v is not None for k in v[TRAIN_SEED].values[v.notnull().values]})
        if not held:
            continue
        rows.append(f"| {model.label} | {len(held)} ({', '.join(map(str, held))}) | {' | '.join(_cell(v, len(held)) for v in values)} |")
    return "\n".join(rows)


def kind_difference_row(results: dict[tuple[str, str], xr.Dataset], diff: KindDifference) -> str | None:
    """The markdown row of one paired difference, or None where no training seed holds both models."""
    a, b = model_values(results, diff.a, diff.eval_noise), model_values(results, diff.b, diff.eval_noise)
    if a is None or b is None:
        return None
    a, b = xr.align(a, b, join="inner")
    both = (a.notnull() & b.notnull()).values
    if not both.any():
        return None
    seeds = [int(k) for k in a[TRAIN_SEED].values[both]]
    d = a.values[both] - b.values[both]
    ci = paired_interval(a.values[both], b.values[both])
    return (f"| {diff.a.label} − {diff.b.label} | {strength_label(results, diff.eval_noise)} | {diff.answer} | "
            f"{_per_seed_text(seeds, d, CLEAN, True)} | {_interval_text(ci, CLEAN, True)} | {len(seeds)} | {paired_reading(ci)} |")


def kind_differences_table(results: dict[tuple[str, str], xr.Dataset], differences=KIND_DIFFERENCES) -> str:
    """One row per paired difference whose models exist in ``results``, in ``differences``' order."""
    rows = [row for diff in differences if (row := kind_difference_row(results, diff)) is not None]
    if not rows:
        return "(no pair of these models evaluated yet)"
    header = ("| A − B (paired by training seed) | under | the answer it tests | per seed | "
              "mean [95 % t-interval of the paired difference] | seeds | reading |\n|---|---|---|---|---|---|---|")
    return "\n".join([header, *rows])


def kinds_seeds_blocks(results: dict[tuple[str, str], xr.Dataset]) -> dict[str, str]:
    """{block name: markdown} of :data:`KINDS_SEEDS_BLOCKS`."""
    return {"seeds-kinds": kinds_table(results), "seeds-kinds-differences": kind_differences_table(results)}

