"""REPRODUCTION.md's generated parts: every number and figure link, rendered from the committed results.

The document mixes prose written by hand with generated blocks between the markers
``<!-- dni:begin NAME -->`` and ``<!-- dni:end NAME -->``. :func:`update_document` rewrites the
blocks only, so ``dni reproduction`` regenerates every number without touching the prose, and a
test re-renders the blocks from the committed dataset and compares them with the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import DniError
from .report import PAPER, percent, best_noisy_points, difference_table, headline_table
from .results import accuracy_table, load_results

BLOCK = re.compile(r"(<!-- dni:begin (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- dni:end (?P=name) -->)", re.S)

FIGURE_KINDS = {
    # kind: caption — the paper's figures each file corresponds to
    "accuracy": "test accuracy and error rate over σval, one line per σtrain (paper Figs 2a, 2b, 10)",
    "heatmap": "mean accuracy over the σtrain × σval grid",
    "weights": "weight distributions and expected weight power mean(w²) per σtrain (paper Figs 5, 9)",
    "states": ("h (and c) per time step against N(0, 1): σtrain/σval 0/0, 0/1, 1/1, on the 500 first test digits of the "
               "shipped subset; c beyond ±3 counts in the end bins (paper Figs 3, 4, 7, 8)"),
}


def figure_path(directory: Path, arch: str, kind: str) -> Path:
    return Path(directory) / f"{arch}_{kind}.png"


def provenance_block(ds: xr.Dataset) -> str:
    """What the numbers were computed on: data, grid, repeats, seeds, and each model's epochs."""
    sv, st = ds.sigma_val.values, ds.sigma_train.values
    lines = [f"- test set: {ds.attrs.get('dataset', '?')}, {int(ds.attrs.get('test_size', 0)):,} digits; "
             f"{ds.sizes['seed']} noisy repeats per (σtrain, σval > 0) point, evaluation noise seed {ds.attrs.get('eval_seed', '?')}",
             f"- grid: σtrain {st.min():g}…{st.max():g} ({len(st)} models per preset) × σval {sv.min():g}…{sv.max():g} ({len(sv)} values)",
             f"- noise model: {ds.attrs.get('noise_model', '?')}",
             f"- missing values in the accuracy grid: {int(ds.accuracy.isnull().sum())}",
             "",
             "| preset | epochs run per σtrain (" + ", ".join(f"{s:g}" for s in st) + ") | training wall time, all models |",
             "|---|---|---|"]
    for arch in ds.arch.values.tolist():
        epochs = ds.epochs.sel(arch=arch).values
        hours = float(ds.train_seconds.sel(arch=arch).sum(skipna=False)) / 3600 if "train_seconds" in ds else np.nan
        lines.append(f"| {arch} | " + ", ".join("–" if np.isnan(e) else f"{int(e)}" for e in epochs) + " | "
                     + ("–" if np.isnan(hours) else f"{hours:.2f} h") + " |")
    return "\n".join(lines)


def spread_block(ds: xr.Dataset) -> str:
    """Spread over the noisy repeats: the largest standard deviation of any point, per preset."""
    rows = ["| preset | largest std over repeats (points) | at (σtrain, σval) | median std (points) |", "|---|---|---|---|"]
    for arch in ds.arch.values.tolist():
        std = ds.accuracy.sel(arch=arch).std("seed", ddof=1) * 100  # (sigma_train, sigma_val)
        top = std.where(std == std.max(), drop=True)
        rows.append(f"| {arch} | {float(std.max()):.2f} | ({float(top.sigma_train[0]):g}, {float(top.sigma_val[0]):g}) | "
                    f"{float(std.median()):.2f} |")
    return "\n".join(rows)


TRAINING_LENGTH_SIGMA_VAL = (0.0, 0.5, 1.0)


def training_length_block(runs: list[xr.Dataset], ds: xr.Dataset, arch: str = "lstm28") -> str:
    """The conventional model (σtrain 0) after a fixed number of epochs, next to the converged one.

    ``runs``: sweeps of ``arch`` at σtrain 0 trained for a fixed number of epochs (no early stop)
    and evaluated at σval 0, 0.5 and 1 (``results/run_training_length.sh``). The last row is the
    model of the main grid ``ds``, trained to convergence. A check of why our conventional model is
    more robust than the paper's (12.5 % at σval 1): its expected weight power (paper §III-A,
    Fig. 5) and its accuracy under noise, along one training run.
    """
    def row(label: str, run: xr.Dataset) -> str:
        acc = run.accuracy.sel(arch=arch, sigma_train=0.0).mean("seed")  # (sigma_val,)
        cells = " | ".join(f"{float(acc.sel(sigma_val=v)) * 100:.1f} %" for v in TRAINING_LENGTH_SIGMA_VAL)
        return f"| {label} | {float(run.weight_power.sel(arch=arch, sigma_train=0.0)):.4f} | {cells} |"

    rows = ["| " + arch + " σtrain 0 trained for | mean(w²) | " + " | ".join(f"σval {v:g}" for v in TRAINING_LENGTH_SIGMA_VAL) + " |",
            "|---|---|" + "---|" * len(TRAINING_LENGTH_SIGMA_VAL)]
    for run in sorted(runs, key=lambda r: float(r.epochs.sel(arch=arch, sigma_train=0.0))):
        epochs = int(run.epochs.sel(arch=arch, sigma_train=0.0))
        rows.append(row(f"{epochs} epoch{'' if epochs == 1 else 's'}", run))
    ran = int(ds.epochs.sel(arch=arch, sigma_train=0.0))
    best = float(ds.best_epoch.sel(arch=arch, sigma_train=0.0)) if "best_epoch" in ds else np.nan
    rows.append(row(f"convergence (the main grid: {ran} epochs)" if np.isnan(best) else
                    f"convergence (the main grid: best epoch {int(best)} of {ran})", ds))
    rows.append(f"| the paper | {PAPER[arch]['weight_power_0']} | {percent(PAPER[arch]['clean'])} | – | {percent(PAPER[arch]['conventional_at_1'])} |")
    return "\n".join(rows)


def load_training_length(directory: Path) -> list[xr.Dataset]:
    """The fixed-length runs of :func:`training_length_block` found in ``directory`` (none if it is absent)."""
    return [load_results(path) for path in sorted(Path(directory).glob("*.nc"))]


def figures_block(ds: xr.Dataset, directory: Path, relative_to: Path) -> str:
    lines = []
    for arch in ds.arch.values.tolist():
        lines.append(f"**{arch}**\n")
        for kind, caption in FIGURE_KINDS.items():
            path = figure_path(directory, arch, kind)
            link = Path(_relpath(path, relative_to)).as_posix()
            lines.append(f"![{arch}: {caption}]({link})\n")
    return "\n".join(lines).rstrip()


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(Path(path).resolve(), Path(start).resolve())


def render_blocks(ds: xr.Dataset, figures_dir: Path, document_dir: Path, training_length: list[xr.Dataset] = ()) -> dict[str, str]:
    """{block name: markdown} of every generated block of REPRODUCTION.md (``training-length`` when runs are given)."""
    blocks = {
        "provenance": provenance_block(ds),
        "headline": headline_table(ds),
        "differences": difference_table(ds),
        "noisy-points": best_noisy_points(ds),
        "spread": spread_block(ds),
        "tables": "```text\n" + accuracy_table(ds) + "\n```",
        "figures": figures_block(ds, figures_dir, document_dir),
    }
    if training_length:
        blocks["training-length"] = training_length_block(list(training_length), ds)
    return blocks


def document_blocks(text: str) -> dict[str, str]:
    """{block name: body} of the generated blocks found in a document."""
    return {m["name"]: m["body"].rstrip("\n") for m in BLOCK.finditer(text)}


def update_document(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every generated block's body replaced; each block must be present exactly once."""
    found = [m["name"] for m in BLOCK.finditer(text)]
    missing = [name for name in blocks if name not in found]
    if missing:
        raise DniError(f"the document has no block for {', '.join(missing)}: add the lines "
                       f"'<!-- dni:begin NAME -->' and '<!-- dni:end NAME -->' where each should go")
    duplicated = sorted({name for name in found if found.count(name) > 1})
    if duplicated:
        raise DniError(f"the document has more than one block named {', '.join(duplicated)}; keep one of each")
    return BLOCK.sub(lambda m: m.group(1) + blocks.get(m["name"], m["body"].rstrip("\n")) + "\n" + m.group(4), text)
