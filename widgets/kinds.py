"""Views of a grid of noise kinds (issue 19's train noise × eval noise grid, REPRODUCTION.md's table):
the train-kind × eval-kind heatmap at matched strength, and accuracy over eval strength with one line per
training kind and σtrain. Data functions return plain dicts (tested against the dataset); figure
functions draw them with bokeh.

Matched strength: each kind's non-zero strengths, sorted, are its levels — ``results/noise_kinds``
calibrates them so that the conventional model loses as much accuracy as under the paper's additive
noise at σval 0.5, 0.7, 1.0 — and "low", "middle", "high" are the first, middle and last of them. A
fixed kind (one point, at σval 0; results schema) is the same point at every level.
"""

from __future__ import annotations

import re

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from dni.store.results import NOISE_ATTRS

LEVELS = ("low", "middle", "high")
NUMBER = "{0.[0000]}"
"""Bokeh's tooltip format of a strength: 0.1, not 1.000e-1."""


def is_kinds_grid(ds) -> bool:
    return all(d in ds.dims for d in NOISE_ATTRS)


def model_mean(acc):
    """Mean over evaluation repeats, then over training seeds where the file has them (issue 34)."""
    acc = acc.mean("seed")
    return acc.mean("train_seed") if "train_seed" in acc.dims else acc


_MEANS: dict = {}


def point_means(ds):
    """:func:`model_mean` of ``ds.accuracy`` over (train_noise, eval_noise, arch, sigma_train, sigma_val), computed
    once per dataset (the views of a grid redraw from it, not from the repeats)."""
    key = id(ds)
    if key not in _MEANS or _MEANS[key][0] is not ds:
        if len(_MEANS) > 8:
            _MEANS.clear()
        _MEANS[key] = (ds, model_mean(ds.accuracy).transpose("train_noise", "eval_noise", "arch", "sigma_train", "sigma_val").load())
    return _MEANS[key][1]


def kind_strengths(ds, arch: str) -> tuple[dict, dict]:
    """({train kind: its measured σtrain values}, {eval kind: its measured σval values}), sorted."""
    measured = point_means(ds).sel(arch=arch).notnull()
    st_of = measured.any("sigma_val")  # (train, eval, σtrain)
    sv_of = measured.any("sigma_train")  # (train, eval, σval)
    pair = measured.any(["sigma_train", "sigma_val"]).values
    sts, svs = ds.sigma_train.values, ds.sigma_val.values
    train, evals = {}, {}
    for i, t in enumerate(ds.train_noise.values.tolist()):
        for j, e in enumerate(ds.eval_noise.values.tolist()):
            if not pair[i, j]:
                continue
            train.setdefault(t, set()).update(float(s) for s in sts[st_of.values[i, j]])
            evals.setdefault(e, set()).update(float(s) for s in svs[sv_of.values[i, j]])
    order = lambda kv: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", kv[0])]  # noqa: E731 — adc(bits=4) before bits=10
    return ({k: sorted(v) for k, v in sorted(train.items(), key=order)}, {k: sorted(v) for k, v in sorted(evals.items(), key=order)})


def level_value(strengths, level: str) -> float:
    """The strength of ``level`` among ``strengths``: first, middle or last non-zero one (0 if there is none)."""
    nonzero = [s for s in strengths if s > 0] or list(strengths)
    return float(nonzero[{"low": 0, "middle": (len(nonzero) - 1) // 2, "high": len(nonzero) - 1}[level]])


def kinds_heatmap_data(ds, arch: str, level: str = "middle") -> dict:
    """Mean accuracy (%) of every (train kind, eval kind) pair at matched strength ``level``: one cell per pair,
    with the σtrain and σval it is taken at (NaN where the pair lacks that point)."""
    train, evals = kind_strengths(ds, arch)
    means = point_means(ds).sel(arch=arch)
    rows = {"train_noise": [], "eval_noise": [], "sigma_train": [], "sigma_val": [], "accuracy": [], "label": []}
    for t in train:
        for e in evals:
            st, sv = level_value(train[t], level), level_value(evals[e], level)
            value = float(means.sel(train_noise=t, eval_noise=e, sigma_train=st, sigma_val=sv)) * 100
            rows["train_noise"].append(t)
            rows["eval_noise"].append(e)
            rows["sigma_train"].append(st)
            rows["sigma_val"].append(sv)
            rows["accuracy"].append(value)
            rows["label"].append("–" if value != value else f"{value:.1f}")
    return rows


def kinds_heatmap_figure(ds, arch: str, level: str = "middle", selected: tuple[str, str] | None = None):
    """Train kind (rows) × eval kind (columns) at matched strength: REPRODUCTION.md's table of kinds as a picture."""
    from bokeh.models import ColorBar, LinearColorMapper

    data = kinds_heatmap_data(ds, arch, level)
    values = np.array(data["accuracy"], dtype=float)
    finite = values[np.isfinite(values)]
    mapper = LinearColorMapper(palette="Viridis256", low=float(finite.min()) if finite.size else 0.0,
                               high=float(finite.max()) if finite.size else 100.0, nan_color="#eeeeee")
    evals = list(dict.fromkeys(data["eval_noise"]))
    trains = list(dict.fromkeys(data["train_noise"]))
    fig = figure(title=f"{arch}: accuracy (%) per train kind × eval kind, {level} strength", x_range=evals, y_range=list(reversed(trains)),
                 height=340, width=max(520, 90 * len(evals) + 200), x_axis_label="eval noise", y_axis_label="train noise",
                 tools="hover,tap,save", tooltips=[("trained under", "@train_noise (σtrain @sigma_train" + NUMBER + ")"),
                                                   ("evaluated under", "@eval_noise (σval @sigma_val" + NUMBER + ")"),
                                                   ("accuracy", "@label %")])
    source = ColumnDataSource(data, name="kinds_heatmap")
    cells = fig.rect("eval_noise", "train_noise", width=1, height=1, source=source, name="kind_cells",
                     fill_color={"field": "accuracy", "transform": mapper}, line_color="white",
                     nonselection_alpha=1.0, selection_alpha=1.0)
    fig.text("eval_noise", "train_noise", text="label", source=source, text_align="center", text_baseline="middle",
             text_font_size="9pt", text_color="white")
    fig.hover.renderers = [cells]
    fig.xaxis.major_label_orientation = 0.6
    fig.add_layout(ColorBar(color_mapper=mapper, title="accuracy (%)", width=12), "right")
    marker = ColumnDataSource({"x": [selected[1]] if selected else [], "y": [selected[0]] if selected else []})
    fig.rect("x", "y", width=1, height=1, source=marker, fill_alpha=0, line_color="red", line_width=3, name="selected_pair")
    return fig


KIND_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
DASHES = ("solid", "dashed", "dotted", "dotdash")


def kinds_lines_data(ds, arch: str, eval_noise: str) -> list[dict]:
    """Mean accuracy (%) over ``eval_noise``'s strengths, one entry per (train kind, σtrain) model evaluated
    under it: {"train_noise", "sigma_train", "sigma_val": [...], "value": [...]} (NaN where not measured)."""
    train, evals = kind_strengths(ds, arch)
    means = point_means(ds).sel(arch=arch, eval_noise=eval_noise)
    sv = evals.get(eval_noise, [])
    out = []
    for t, sts in train.items():
        values = means.sel(train_noise=t, sigma_val=sv) * 100
        for st in sts:
            row = values.sel(sigma_train=st).values
            if np.isnan(row).all():
                continue
            out.append({"train_noise": t, "sigma_train": float(st), "sigma_val": list(sv), "value": row.tolist()})
    return out


def _line_source(d: dict) -> dict:
    n = len(d["sigma_val"])
    return {"sigma_val": list(d["sigma_val"]), "value": list(d["value"]), "train_noise": [d["train_noise"]] * n,
            "sigma_train": [d["sigma_train"]] * n}


def refill_kinds_lines(fig, ds, arch: str, eval_noise: str) -> None:
    """Put the lines of ``eval_noise`` into a :func:`kinds_lines_figure` drawn with ``every_model`` (in place)."""
    lines = {(d["train_noise"], d["sigma_train"]): d for d in kinds_lines_data(ds, arch, eval_noise)}
    for source in {r.data_source for r in fig.renderers if "kinds_line" == r.data_source.name}:
        t, st = source.tags
        d = lines.get((t, st), {"train_noise": t, "sigma_train": st, "sigma_val": [], "value": []})
        source.data = _line_source(d)
    fig.title.text = f"{arch}: accuracy under {eval_noise} per training kind"
    fig.xaxis.axis_label = f"σval of {eval_noise}"


def kinds_lines_figure(ds, arch: str, eval_noise: str, every_model: bool = False):
    """Accuracy over the strength of ``eval_noise``: colour = training kind, dash = its σtrain (low → high);
    a marker on every measured point, no line through a missing one. ``every_model``: a line (empty if
    need be) for every model of ``arch``, so that :func:`refill_kinds_lines` can show another eval kind."""
    lines = kinds_lines_data(ds, arch, eval_noise)
    if every_model:
        have = {(d["train_noise"], d["sigma_train"]) for d in lines}
        train, _ = kind_strengths(ds, arch)
        lines += [{"train_noise": t, "sigma_train": st, "sigma_val": [], "value": []}
                  for t, sts in train.items() for st in sts if (t, st) not in have]
        order = [(t, st) for t, sts in train.items() for st in sts]
        lines.sort(key=lambda d: order.index((d["train_noise"], d["sigma_train"])))
    fig = figure(title=f"{arch}: accuracy under {eval_noise} per training kind", height=380, width=780,
                 x_axis_label=f"σval of {eval_noise}", y_axis_label="test accuracy (%)", tools="pan,box_zoom,reset,save,hover",
                 tooltips=[("trained under", "@train_noise σtrain @sigma_train" + NUMBER), ("σval", "@sigma_val" + NUMBER),
                           ("accuracy", "@value{0.0} %")])
    kinds = list(dict.fromkeys(d["train_noise"] for d in lines))
    for d in lines:
        colour = KIND_COLOURS[kinds.index(d["train_noise"]) % len(KIND_COLOURS)]
        same = [x["sigma_train"] for x in lines if x["train_noise"] == d["train_noise"]]
        dash = DASHES[same.index(d["sigma_train"]) % len(DASHES)]
        source = ColumnDataSource(_line_source(d), name="kinds_line", tags=[d["train_noise"], d["sigma_train"]])
        label = f"{d['train_noise']} σtrain {d['sigma_train']:g}"
        fig.line("sigma_val", "value", source=source, color=colour, line_dash=dash, line_width=2, legend_label=label)
        fig.scatter("sigma_val", "value", source=source, color=colour, size=6, legend_label=label)
    if fig.legend:
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "8pt"
        fig.add_layout(fig.legend[0], "right")
    return fig


def kinds_figures(ds, arch: str):
    """The kinds section of ``dni figures``: the heatmap at each matched strength and the lines per eval kind."""
    from bokeh.layouts import column, row

    _, evals = kind_strengths(ds, arch)
    heat = row(*[kinds_heatmap_figure(ds, arch, level) for level in LEVELS], styles={"flex-wrap": "wrap"})
    return column(heat, row(*[kinds_lines_figure(ds, arch, e) for e in evals if len(evals[e]) > 1], styles={"flex-wrap": "wrap"}))
