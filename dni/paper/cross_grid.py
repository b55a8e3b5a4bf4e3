"""The mismatch grid as Markdown: models trained under one noise kind, evaluated under another.

A merged result of ``dni sweep --train-noise …`` / ``dni evaluate --eval-noise …`` runs carries the dims
``train_noise`` and ``eval_noise`` next to the paper's (arch, sigma_train, sigma_val, seed); each model is
one (train noise, σtrain), each point one (eval noise, σval). The tables here answer issue 19's
questions of such a grid (its item 5, rendered into REPRODUCTION.md by ``dni reproduction``):

* :func:`middle_table` — each train kind's model at its middle strength (and the conventional σtrain = 0
  model) under each eval kind at its middle strength: the cross table at a glance;
* :func:`grid_table` — every model under every eval kind at every strength, mean ± standard error;
* :func:`best_table` — per inference noise and strength, the best model of each training kind;
* :func:`quantisation_table` — accuracy over converter resolution (eval noises that are one ``adc``/``dac``
  kind with no σ, e.g. ``adc(bits=6,bound=16)``), and the fewest bits within 1 point of noiseless.

A kind's strengths are read from the data (the non-zero σval, or σtrain, holding points), its "middle"
strength is the middle one of them. Accuracy is in %, the mean over the repeats (``seed``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dni.noise.catalogue import PAPER
from dni.noise.kinds import ADC, DAC
from dni.noise.spec import parse_noise
from dni.store.results import noise_pairs, select_noise

Point = tuple[float, float]  # (mean accuracy %, standard error of the mean %)


def _has(view: xr.DataArray) -> bool:
    return bool(view.notnull().any())


def is_resolution_sweep(eval_noise: str) -> bool:
    """Whether ``eval_noise`` is one converter kind with no strength (a point of a bits sweep)."""
    kinds = parse_noise(eval_noise).kinds
    return len(kinds) == 1 and isinstance(kinds[0], (ADC, DAC))


def grid_noises(ds: xr.Dataset) -> tuple[list[str], list[str]]:
    """(train noises, eval noises with a strength) of ``ds``: the paper's additive first, then by name."""
    pairs = noise_pairs(ds)
    order = lambda label: (label != PAPER, label)  # noqa: E731
    train = sorted({t for t, _ in pairs}, key=order)
    evaluation = sorted({e for _, e in pairs if not is_resolution_sweep(e)}, key=order)
    return train, evaluation


def eval_strengths(ds: xr.Dataset, eval_noise: str, arch: str) -> list[float]:
    """The non-zero σval at which some model was evaluated under ``eval_noise``."""
    acc = ds.accuracy.sel(eval_noise=eval_noise, arch=arch)
    return [float(s) for s in ds.sigma_val.values if s > 0 and _has(acc.sel(sigma_val=s))]


def train_strengths(ds: xr.Dataset, train_noise: str, arch: str) -> list[float]:
    """The σtrain of the models trained under ``train_noise`` (0, the conventional model, included)."""
    acc = ds.accuracy.sel(train_noise=train_noise, arch=arch)
    return [float(s) for s in ds.sigma_train.values if _has(acc.sel(sigma_train=s))]


def middle(strengths: list[float]) -> float:
    """The middle one of a kind's non-zero strengths (the lower middle of an even count)."""
    nonzero = sorted(s for s in strengths if s > 0)
    return nonzero[(len(nonzero) - 1) // 2]


def point(ds: xr.Dataset, train_noise: str, eval_noise: str, sigma_train: float, sigma_val: float, arch: str) -> Point | None:
    """(mean, standard error) in % over the repeats of one point, or None where it was not evaluated."""
    if (train_noise, eval_noise) not in noise_pairs(ds) or sigma_train not in ds.sigma_train or sigma_val not in ds.sigma_val:
        return None
    acc = select_noise(ds, train_noise, eval_noise).accuracy.sel(arch=arch, sigma_train=sigma_train, sigma_val=sigma_val).values
    acc = acc[~np.isnan(acc)] * 100  # (repeats,)
    if not len(acc):
        return None
    if np.ptp(acc) == 0:  # deterministic (no noise, or one repeat): an exact 0, not a float-rounding residue
        return float(acc.mean()), 0.0
    return float(acc.mean()), float(acc.std(ddof=1) / np.sqrt(len(acc)))


def noiseless(ds: xr.Dataset, train_noise: str, sigma_train: float, arch: str) -> Point | None:
    """A model's accuracy without inference noise (σval 0 is the same network under every eval noise with a
    strength; a converter sweep's points are quantised, so they are not used)."""
    for e in ds.eval_noise.values:
        if is_resolution_sweep(str(e)):
            continue
        p = point(ds, train_noise, str(e), sigma_train, 0.0, arch)
        if p is not None:
            return p
    return None


def _fmt(p: Point | None) -> str:
    """"mean ± SE"; a deterministic point (every repeat the same: no noise, or one repeat) shows its mean only."""
    if p is None:
        return "—"
    return f"{p[0]:.1f}" if p[1] == 0 else f"{p[0]:.1f} ± {p[1]:.2f}"


def _model_label(train_noise: str, sigma_train: float) -> str:
    return "conventional (σtrain 0)" if sigma_train == 0 else f"{train_noise} {sigma_train:g}"


def _models(ds: xr.Dataset, arch: str) -> list[tuple[str, float]]:
    """Every (train noise, σtrain) model; the conventional one (σtrain 0) once, first."""
    train, _ = grid_noises(ds)
    models = [(t, s) for t in train for s in train_strengths(ds, t, arch)]
    conventional = [m for m in models if m[1] == 0][:1]
    return conventional + [m for m in models if m[1] != 0]


def middle_table(ds: xr.Dataset, arch: str = "lstm28") -> str:
    """Rows: the conventional model and each train kind's model at its middle strength; columns: its
    noiseless accuracy and each eval kind at its middle strength."""
    train, evaluation = grid_noises(ds)
    columns = [(e, middle(eval_strengths(ds, e, arch))) for e in evaluation]
    rows = _models(ds, arch)[:1] + [(t, middle(train_strengths(ds, t, arch))) for t in train]
    lines = ["| trained under | noiseless | " + " | ".join(f"{e} {s:g}" for e, s in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for t, st in rows:
        lines.append(f"| {_model_label(t, st)} | {_fmt(noiseless(ds, t, st, arch))} | "
                     + " | ".join(_fmt(point(ds, t, e, st, sv, arch)) for e, sv in columns) + " |")
    return "\n".join(lines)


def grid_table(ds: xr.Dataset, arch: str = "lstm28") -> str:
    """Every model (rows) under every eval kind at every strength (columns)."""
    _, evaluation = grid_noises(ds)
    columns = [(e, s) for e in evaluation for s in eval_strengths(ds, e, arch)]
    lines = ["| trained under | σtrain | noiseless | " + " | ".join(f"{e} {s:g}" for e, s in columns) + " |",
             "|---" * (len(columns) + 3) + "|"]
    for t, st in _models(ds, arch):
        lines.append(f"| {t} | {st:g} | {_fmt(noiseless(ds, t, st, arch))} | "
                     + " | ".join(_fmt(point(ds, t, e, st, sv, arch)) for e, sv in columns) + " |")
    return "\n".join(lines)


def best_table(ds: xr.Dataset, arch: str = "lstm28") -> str:
    """Per inference noise and strength (rows): the conventional model, then for each training kind its
    best model there (σtrain in brackets); the best of them all in bold."""
    train, evaluation = grid_noises(ds)
    conventional = _models(ds, arch)[:1]
    lines = ["| inference noise | conventional | " + " | ".join(f"best {t}-trained" for t in train) + " |",
             "|---" * (len(train) + 2) + "|"]
    for e in evaluation:
        for sv in eval_strengths(ds, e, arch):
            best = {}
            for t in train:
                scored = [(p, st) for st in train_strengths(ds, t, arch) if st > 0
                          for p in [point(ds, t, e, st, sv, arch)] if p is not None]
                if scored:
                    best[t] = max(scored, key=lambda ps: ps[0][0])
            conv = point(ds, conventional[0][0], e, 0.0, sv, arch) if conventional else None
            top = max([ps[0][0] for ps in best.values()] + ([conv[0]] if conv else []), default=None)
            cells = []
            for t in train:
                if t not in best:
                    cells.append("—")
                    continue
                p, st = best[t]
                text = f"{_fmt(p)} ({st:g})"
                cells.append(f"**{text}**" if p[0] == top else text)
            conv_text = _fmt(conv)
            conv = f"**{conv_text}**" if conv and conv[0] == top else conv_text
            lines.append(f"| {e} {sv:g} | {conv} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def quantisation_table(ds: xr.Dataset, arch: str = "lstm28", within: float = 1.0) -> str:
    """Accuracy of each model evaluated under converter-only noises (one ``adc``/``dac`` kind, σval 0) over
    their resolution, and the fewest bits that keep it within ``within`` points of its noiseless accuracy."""
    sweeps = [str(e) for e in ds.eval_noise.values if is_resolution_sweep(str(e))]
    by_kind: dict[str, list[tuple[int, str]]] = {}
    for e in sweeps:
        kind = parse_noise(e).kinds[0]
        by_kind.setdefault(f"{kind.name} over ±{kind.bound:g}", []).append((kind.bits, e))
    lines = []
    for title, columns in by_kind.items():
        columns.sort()
        lines += [f"**{title}**", "",
                  "| model | noiseless | " + " | ".join(f"{b} bits" for b, _ in columns) + f" | fewest bits within {within:g} point |",
                  "|---" * (len(columns) + 3) + "|"]
        for t, st in _models(ds, arch):
            accs = [point(ds, t, e, st, 0.0, arch) for _, e in columns]
            if all(a is None for a in accs):
                continue
            ref = noiseless(ds, t, st, arch)
            enough = None if ref is None else next((b for (b, _), a in zip(columns, accs) if a is not None and a[0] >= ref[0] - within), None)
            verdict = "—" if ref is None else (str(enough) if enough is not None else f"> {columns[-1][0]}")
            lines.append(f"| {_model_label(t, st)} | {_fmt(ref)} | " + " | ".join("—" if a is None else f"{a[0]:.1f}" for a in accs)
                         + f" | {verdict} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n")
