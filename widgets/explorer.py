"""The live explorer: ipywidgets controls driving bokeh views of a result set and its models.

Views (all bokeh, wrapped as one ipywidget with ``jupyter_bokeh.BokehModel``; a control change
rewrites their data sources (``ColumnDataSource``) in place, no re-render):

(a) accuracy over σval for every σtrain (colour bar: σtrain), the selected σtrain highlighted, the
    σtrain = σval = 0 baseline in red (paper Figs 2, 10); click a curve to select its σtrain;
(b) the σtrain × σval accuracy heatmap with the selected cell outlined; click a cell to select it;
(c) distributions of h and c per time step (colour bar: step), recomputed live by running the
    selected model at the selected σval on a batch of test digits (Figs 3, 4, 7, 8); states outside
    the plotted range of c are counted in hatched overflow bins, not folded into the end bins;
(d) the selected model's weight histogram and weight power (Figs 5, 9);
(e) a digit viewer: the image, and the pen path for the stroke preset.

A result of several noise pairs (issue 19's train noise × eval noise grid) gets two more
dropdowns, the train noise and the eval noise; every view shows the selected pair, and two views of
the kinds (:mod:`dni_widgets.kinds`): (f) the train-kind × eval-kind heatmap at matched strength (low /
middle / high) — a click on a cell selects that pair and its strengths everywhere; (g) accuracy over the
selected eval kind's strength, one line per training kind and σtrain. Sliders and dropdowns offer only
values the current selection has points at.

A result with a ``train_seed`` dim (issue 34) gets a "training seeds" dropdown: all seeds (curves are the
mean over seeds with a band of the 95 % t-interval across them) or one seed; with one seed the
accuracy title says "1 seed: no interval".

Comparison: the "compare with" controls pick a second (train noise, σtrain) model; its accuracy curve
is drawn dashed in black over (a) and its h and c distributions beside the selected model's in (c).

Export and share: every figure's save tool writes PNG or, with "save as SVG", SVG (bokeh's SVG backend);
:meth:`Explorer.reopen_line` (shown under the views) is one line of code that reopens the same view.

Responsiveness: in a running kernel a control change marks the views stale at once (the status
line says "updating …") and recomputes once, ``debounce`` seconds after the last of a burst of
changes, for the latest values only; views a change does not affect are not recomputed, and state
distributions and weight histograms are cached. Without an event loop (tests, scripts) updates run
at once. ``Explorer.timings`` keeps the seconds the last update of each view took.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Span, TapTool
from bokeh.plotting import figure
from dni_widgets.figures import (
    _palette,
    accuracy_sources,
    add_overflow_bins,
    colour_bar,
    heatmap_figure,
    legend_below,
    overflow_data,
    seeds_note,
)
from dni_widgets.kinds import LEVELS, NUMBER, is_kinds_grid, kinds_heatmap_figure, kinds_lines_figure, refill_kinds_lines

from dni.data import load_sequences
from dni.nn.presets import get_preset
from dni.nn.probes import state_distributions, weight_histogram
from dni.noise.session import noise_for
from dni.store.checkpoints import TrainedModel, load_checkpoint
from dni.store.layout import locate_checkpoints
from dni.store.results import load_results, noise_pairs, pair_results

STATE_CACHE = 64
"""How many state distributions the explorer keeps (a return to a recent selection is instant)."""


def _nearest(values, value) -> float:
    values = np.asarray(values, dtype=float)
    return float(values[np.argmin(np.abs(values - value))])


def _draws(eval_noise: str, sigma_val: float) -> bool:
    """Whether evaluating under ``eval_noise`` at ``sigma_val`` draws random numbers (else one evaluation says all)."""
    from dni.noise.session import as_noise_model, noise_for

    model = as_noise_model(noise_for(eval_noise, sigma_val))
    return not model.is_noiseless and bool(getattr(model, "random", True))


def _running_loop():
    """The event loop running this call (a Jupyter kernel's), or None (a plain script or test)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Explorer:
    """Sliders for σtrain and σval, preset (and noise-pair) dropdowns, the state view's noise draw and
    digit controls, and live views.

    ``results``: an ``xarray.Dataset`` of :mod:`dni.store.results` (or a path); ``models``: a dict
    ``{(arch, σtrain): TrainedModel or checkpoint path}`` or a checkpoint folder laid out as
    ``dni sweep`` writes it. ``data``: the test digits of the state view, ``"subset"`` (shipped) or
    ``"mnist"`` (full MNIST from ``$DNI_DATA_DIR``/the cache). ``digits``: how many of them view (c)
    runs the model on. ``debounce``: seconds of quiet after a burst of control changes before the
    views are recomputed (in a running kernel).
    """

    def __init__(self, results, models, *, data: str = "subset", digits: int = 256, bins: int = 50, debounce: float = 0.05,
                 select: dict | None = None, path=None):
        import ipywidgets as W

        if isinstance(results, (str, Path)):
            path = path or results
            results = load_results(results)
        self.path = path
        """The result file (for :meth:`reopen_line`), None for a dataset built in memory."""
        self.all_results = results
        self.pairs = noise_pairs(self.all_results)
        self.kinds = is_kinds_grid(self.all_results)
        self.data, self.digits, self.bins, self.debounce = data, digits, bins, debounce
        self._test: dict[str, object] = {}
        self._state_cache: OrderedDict = OrderedDict()
        self._weight_cache: dict = {}
        self._pending: set[str] = set()
        self._timer = None
        self._suspended = False
        self.timings: dict[str, float] = {}
        self.updates = 0
        """How many times the views were recomputed (a burst of changes counts once)."""
        select = dict(select or {})
        unknown = set(select) - set(self.SELECTABLE)
        if unknown:
            raise ValueError(f"select takes {', '.join(self.SELECTABLE)}, not {', '.join(sorted(unknown))}")
        train_noises = list(dict.fromkeys(t for t, _ in self.pairs))
        t0, e0 = self._default_pair(select)
        self.train_noise = W.Dropdown(options=train_noises, value=t0, description="train noise", disabled=len(self.pairs) == 1)
        evals = self._eval_noises(t0)
        self.eval_noise = W.Dropdown(options=evals, value=e0, description="eval noise", disabled=len(self.pairs) == 1)
        self.results = pair_results(self.all_results, t0, e0)
        self.models = self._collect_models(models)
        archs = [a for a in self.results.arch.values.tolist() if bool(self.results.accuracy.sel(arch=a).notnull().any())]
        arch = select.get("arch", archs[0])
        self.arch = W.Dropdown(options=archs, value=arch, description="preset")
        st = self._sigma_trains(arch)
        st0 = _nearest(st, select["sigma_train"]) if "sigma_train" in select else st[-1]
        self.sigma_train = W.SelectionSlider(options=st, value=st0, description="σtrain", continuous_update=False)
        sv = self._sigma_vals(arch, st0)
        sv0 = _nearest(sv, select["sigma_val"]) if "sigma_val" in select else sv[len(sv) // 2]
        self.sigma_val = W.SelectionSlider(options=sv, value=sv0, description="σval", continuous_update=False)
        repeats = self.results.sizes["seed"]
        self.seed = W.IntSlider(value=int(select.get("noise_draw", 0)), min=0, max=max(repeats - 1, 9), description="noise draw",
                                continuous_update=False,
                                tooltip=f"seeds the inference noise of the state view (c) only; the accuracy views average "
                                        f"all {repeats} evaluation repeats")
        self.noise_draw = self.seed
        self.digit = W.IntSlider(value=int(select.get("digit", 0)), min=0, max=49, description="digit", continuous_update=False)
        seeds = self.all_results.train_seed.values.tolist() if "train_seed" in self.all_results.accuracy.dims else [0]
        self.train_seeds = W.Dropdown(options=[("all seeds", "all")] + [(f"seed {int(s)}", int(s)) for s in seeds],
                                      value=select.get("train_seed", "all"), description="training seeds",
                                      disabled=len(seeds) == 1)
        self.level = W.Dropdown(options=list(LEVELS), value=select.get("level", "middle"), description="strength")
        self.compare = W.Checkbox(value=bool(select.get("compare")), description="compare with")
        compare = select.get("compare") or (t0, st0)
        self.compare_noise = W.Dropdown(options=train_noises, value=compare[0], description="train noise")
        cst = self._sigma_trains(arch, compare[0])
        self.compare_sigma = W.Dropdown(options=cst, value=_nearest(cst, compare[1]), description="σtrain")
        self.save_as = W.ToggleButtons(options=["PNG", "SVG"], value=select.get("save_as", "PNG"), description="save as")
        self.status = W.HTML()
        self.reopen = W.HTML()
        self._build_views()
        self.arch.observe(lambda change: self._changed({"arch"}), "value")
        self.train_noise.observe(lambda change: self._changed({"train_noise"}), "value")
        self.eval_noise.observe(lambda change: self._changed({"eval_noise"}), "value")
        self.sigma_train.observe(lambda change: self._changed({"sigma_train"}), "value")
        self.sigma_val.observe(lambda change: self._changed({"sigma_val"}), "value")
        self.seed.observe(lambda change: self._changed({"seed"}), "value")
        self.digit.observe(lambda change: self._changed({"digit"}), "value")
        self.train_seeds.observe(lambda change: self._changed({"train_seed"}), "value")
        self.level.observe(lambda change: self._changed({"level"}), "value")
        for control in (self.compare, self.compare_noise, self.compare_sigma):
            control.observe(lambda change: self._changed({"compare"}), "value")
        self.save_as.observe(lambda change: self._apply_backend(), "value")
        self._apply_backend()
        self.update_all()

    SELECTABLE = ("arch", "train_noise", "eval_noise", "sigma_train", "sigma_val", "noise_draw", "digit", "train_seed", "level",
                  "compare", "save_as")
    """The keys of ``select`` (:meth:`open`, :meth:`selection`)."""

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def demo(cls, **kwargs) -> "Explorer":
        """The explorer over the small precomputed result set shipped with dni (no training)."""
        return cls.open(None, **kwargs)

    @classmethod
    def open(cls, result=None, checkpoint_dir=None, select: dict | None = None, **kwargs) -> "Explorer":
        """The explorer of a result file and its checkpoints; None: the demo. ``select``: the view to open on
        (:meth:`selection`'s keys), as :meth:`reopen_line` writes it.

        The checkpoints are looked for in ``checkpoint_dir`` (a folder or a list of them) or, by default, in
        every folder the result's models may live in (:func:`dni.store.layout.checkpoint_dirs`), each model
        accepted by the CRC of its weights. E.g. ``Explorer.open("results/noise_kinds.nc", data="mnist")``.
        """
        from dni_widgets.loading import open_result_models

        ds, checkpoints = open_result_models(result, checkpoint_dir)
        return cls(ds, checkpoints, select=select, path=result, **kwargs)

    def _default_pair(self, select: dict) -> tuple[str, str]:
        """The pair to open on: the one asked for, else the paper's (additive, additive), else a kind against itself."""
        if "train_noise" in select or "eval_noise" in select:
            t = select.get("train_noise", self.pairs[0][0])
            e = select.get("eval_noise", self._eval_noises(t)[0])
            if (t, e) not in self.pairs:
                raise ValueError(f"the result has no points trained under {t} and evaluated under {e}; it holds {self.pairs}")
            return t, e
        for t, e in self.pairs:
            if t == e == "additive":
                return t, e
        return next(((t, e) for t, e in self.pairs if t == e), self.pairs[0])

    def _eval_noises(self, train_noise: str) -> list[str]:
        return [e for t, e in self.pairs if t == train_noise]

    def _collect_models(self, models) -> dict:
        """{(arch, train noise, σtrain, train seed): checkpoint path or TrainedModel} from a dict (keys (arch, σtrain),
        (arch, train noise, σtrain) or the full key) or a checkpoint folder (or a list of folders)."""
        if isinstance(models, dict):
            default = self.pairs[0][0]
            out = {}
            for k, v in models.items():
                if len(k) == 2:
                    k = (k[0], default, k[1], 0)
                elif len(k) == 3:
                    k = (*k, 0)
                out[(k[0], k[1], float(k[2]), int(k[3]))] = v
            return out
        folders = [models] if isinstance(models, (str, Path)) else list(models)
        return locate_checkpoints(self.all_results, folders)

    def model(self, arch: str, sigma_train: float, train_noise: str | None = None, train_seed: int | None = None) -> TrainedModel:
        seed = train_seed if train_seed is not None else (self.train_seeds.value if self.train_seeds.value != "all" else
                                                          self.train_seeds.options[1][1])
        key = (arch, train_noise or self.train_noise.value, float(sigma_train), int(seed))
        entry = self.models.get(key)
        if entry is None and "train_seed" not in self.all_results.accuracy.dims:  # one model per setting: whatever its seed
            key = next((k for k in self.models if k[:3] == key[:3]), key)
            entry = self.models.get(key)
        if entry is None:
            raise KeyError(f"no checkpoint for {arch} at σtrain {sigma_train:g}" + ("" if len(self.pairs) == 1 else f" ({key[1]})")
                           + ("" if seed == 0 else f", training seed {seed}"))
        if not isinstance(entry, TrainedModel):
            entry = self.models[key] = load_checkpoint(entry, arch)
        return entry

    def _sigma_trains(self, arch: str, train_noise: str | None = None) -> list[float]:
        """σtrain values of ``arch``'s models trained under ``train_noise`` (the selected one) that have points."""
        t = train_noise or self.train_noise.value
        acc = self.all_results.accuracy.sel(arch=arch)
        if self.kinds:
            acc = acc.sel(train_noise=t)
        measured = acc.notnull().any([d for d in acc.dims if d != "sigma_train"])
        return [float(s) for s, m in zip(self.all_results.sigma_train.values, measured.values) if m]

    def _sigma_vals(self, arch: str, sigma_train: float) -> list[float]:
        """σval values the selected pair has points at for ``arch``'s σtrain model."""
        acc = self.results.accuracy.sel(arch=arch, sigma_train=sigma_train)
        measured = acc.notnull().any([d for d in acc.dims if d != "sigma_val"])
        return [float(s) for s, m in zip(self.results.sigma_val.values, measured.values) if m]

    def test_data(self, arch: str):
        kind = get_preset(arch).data
        if kind not in self._test:
            self._test[kind] = load_sequences(self.data, "test", kind, progress=False).take(slice(0, max(self.digits, 50)))
        return self._test[kind]

    def _build_views(self):
        tools = "pan,box_zoom,reset,save"
        stretch = dict(sizing_mode="stretch_width", min_width=320)
        # (a) accuracy curves: one multi_line source, width per line marks the selection; click a curve to select it
        self.curves = ColumnDataSource({"xs": [], "ys": [], "color": [], "width": [], "sigma_train": []}, name="accuracy_curves")
        self.fig_accuracy = figure(title="accuracy over σval per σtrain", height=330, x_axis_label="σval",
                                   y_axis_label="test accuracy (%)", tools=tools + ",hover,tap",
                                   tooltips=[("σtrain", "@sigma_train")], **stretch)
        # the band of the 95 % t-interval across training seeds (issue 34), under the curves
        self.bands = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="seed_bands")
        self.fig_accuracy.patches("xs", "ys", color="color", alpha=0.2, line_width=0, source=self.bands, name="bands")
        self.curve_lines = self.fig_accuracy.multi_line("xs", "ys", color="color", line_width="width", source=self.curves,
                                                        name="curves", nonselection_alpha=1.0, selection_alpha=1.0)
        self.fig_accuracy.select_one(TapTool).renderers = [self.curve_lines]
        self.curves.selected.on_change("indices", self._on_curve_click)
        # a marker on every measured point (a curve breaks where a point is missing)
        self.points = ColumnDataSource({"x": [], "y": [], "color": [], "sigma_train": [], "label": []}, name="accuracy_points")
        point_marks = self.fig_accuracy.scatter("x", "y", color="color", size=6, source=self.points, name="points")
        self.fig_accuracy.hover.renderers = [point_marks]
        self.fig_accuracy.hover.tooltips = [("σtrain", "@sigma_train"), ("σval", "@x" + NUMBER), ("accuracy", "@label")]
        self.baseline = Span(location=0, dimension="width", line_color="red", line_dash="dashed", line_width=2)
        self.fig_accuracy.add_layout(self.baseline)
        # the Span has no legend entry of its own: an empty line of its look gives it one
        self.fig_accuracy.line([], [], line_color="red", line_dash="dashed", line_width=2, legend_label="baseline σtrain = σval = 0")
        self.compare_curve = ColumnDataSource({"x": [], "y": []}, name="compare_curve")
        self.fig_accuracy.line("x", "y", source=self.compare_curve, color="black", line_dash="dashed", line_width=2,
                               legend_label="compared model")
        self.fig_accuracy.scatter("x", "y", source=self.compare_curve, color="black", size=6, marker="square")
        self.compare_legend = self.fig_accuracy.legend[0].items[-1]
        self.compare_legend.visible = False
        legend_below(self.fig_accuracy)
        self.selected_point = ColumnDataSource({"x": [], "y": []})
        self.fig_accuracy.scatter("x", "y", source=self.selected_point, size=12, color="red", marker="circle")
        self.sigma_key = colour_bar(self.fig_accuracy, 0.0, 1.0, "σtrain")
        # (b) heatmap: rebuilt per preset and noise pair, marker moved in place; click a cell to select it
        self.heat_holder = column(self._heatmap(), sizing_mode="stretch_width")
        # (c) states per step
        self.h_lines = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="h_per_step")
        self.c_lines = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="c_per_step")
        self.c_overflow = ColumnDataSource({"x": [], "top": [], "width": [], "label": []}, name="c_overflow")
        self.fig_h = figure(title="h per step", height=330, x_axis_label="h", y_axis_label="density", tools=tools, **stretch)
        self.fig_c = figure(title="c per step", height=330, x_axis_label="c", y_axis_label="density",
                            tools=tools + ",hover", tooltips=[("outside", "@label")], **stretch)
        self.noise_h = ColumnDataSource({"x": [], "y": []})
        self.noise_c = ColumnDataSource({"x": [], "y": []})
        for fig, src, noise in ((self.fig_h, self.h_lines, self.noise_h), (self.fig_c, self.c_lines, self.noise_c)):
            fig.multi_line("xs", "ys", color="color", source=src, alpha=0.8)
            fig.line("x", "y", source=noise, color="blue", line_dash="dashed", line_width=2, legend_label="N(0, 1)")
        add_overflow_bins(self.fig_c, self.c_overflow)
        for fig in (self.fig_h, self.fig_c):
            legend_below(fig)
        self.fig_c.hover.renderers = [self.fig_c.select_one({"name": "overflow"})]
        self.step_keys = [colour_bar(fig, 1, 28, "step") for fig in (self.fig_h, self.fig_c)]
        # (d) weights
        self.weights = ColumnDataSource({"x": [], "density": []})
        self.fig_weights = figure(title="weights", height=300, x_axis_label="weight value", y_axis_label="density",
                                  y_axis_type="log", tools=tools, **stretch)
        self.fig_weights.line("x", "density", source=self.weights, line_width=2)
        # (e) digit
        self.digit_image = ColumnDataSource({"image": [np.zeros((28, 28))]})
        self.pen = ColumnDataSource({"x": [], "y": []}, name="pen_path")
        self.jumps = ColumnDataSource({"x0": [], "y0": [], "x1": [], "y1": []})
        self.fig_digit = figure(title="digit", height=300, width=300, x_range=(0, 28), y_range=(28, 0), tools="save")
        from bokeh.palettes import Greys256
        # y axis points down (image rows, pen y): array row 0 at y 0..1, drawn at the top; white paper, black ink
        self.fig_digit.image("image", x=0, y=0, dw=28, dh=28, source=self.digit_image, palette=list(reversed(Greys256)))
        self.fig_digit.line("x", "y", source=self.pen, color="orange", line_width=2)
        self.fig_digit.segment("x0", "y0", "x1", "y1", source=self.jumps, color="red", line_dash="dotted")
        # (c') the compared model's states
        self.h_compare = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="h_compare")
        self.c_compare = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="c_compare")
        self.fig_h_compare = figure(title="compared model: h per step", height=330, x_axis_label="h", y_axis_label="density",
                                    tools=tools, **stretch)
        self.fig_c_compare = figure(title="compared model: c per step", height=330, x_axis_label="c", y_axis_label="density",
                                    tools=tools, **stretch)
        self.fig_h_compare.multi_line("xs", "ys", color="color", source=self.h_compare, alpha=0.8)
        self.fig_c_compare.multi_line("xs", "ys", color="color", source=self.c_compare, alpha=0.8)
        self.compare_row = row(self.fig_h_compare, self.fig_c_compare, sizing_mode="stretch_width", visible=False)
        self.accuracy_views = row(self.fig_accuracy, self.heat_holder, sizing_mode="stretch_width")
        # (f), (g) the kinds views
        self.kinds_holder = column(*self._kinds_figures(), sizing_mode="stretch_width") if self.kinds else None
        self._kinds_key = self._kinds_keys()
        self.state_views = column(row(self.fig_h, self.fig_c, sizing_mode="stretch_width"), self.compare_row,
                                  row(self.fig_weights, self.fig_digit, sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def _kinds_heat(self):
        """(f) the kinds heatmap at the selected strength level, the selected pair outlined; a click selects a pair."""
        heat = kinds_heatmap_figure(self.all_results, self.arch.value, self.level.value,
                                    selected=(self.train_noise.value, self.eval_noise.value))
        heat.select_one({"name": "kind_cells"}).data_source.selected.on_change("indices", self._on_kind_click)
        heat.sizing_mode, heat.min_width, heat.output_backend = "stretch_width", 420, self._backend()
        return heat

    def _kinds_lines(self):
        """(g) accuracy under the selected eval kind, one line per training kind and σtrain (every model of the
        preset, so that another eval kind only refills the lines' data)."""
        lines = kinds_lines_figure(self.all_results, self.arch.value, self.eval_noise.value, every_model=True)
        lines.sizing_mode, lines.min_width, lines.output_backend = "stretch_width", 420, self._backend()
        return lines

    def _kinds_keys(self):
        return ((self.arch.value, self.level.value, self._backend()), (self.arch.value, self.eval_noise.value, self._backend()))

    def _kinds_figures(self):
        return [self._kinds_heat(), self._kinds_lines()]

    def _refill_heatmap(self):
        """The σtrain × σval heatmap of the new preset or pair, drawn into the figure already on the page (its data,
        colour range and title replaced in place: the browser redraws, it does not build a new plot)."""
        from bokeh.models import ColorBar

        fresh = heatmap_figure(self.results, self.arch.value, selected=(self.sigma_train.value, self.sigma_val.value))
        old = self.heat_holder.children[0]
        old.title.text = fresh.title.text
        old.select_one({"name": "cells"}).data_source.data = dict(fresh.select_one({"name": "cells"}).data_source.data)
        mapper_old, mapper_new = old.select_one({"type": ColorBar}).color_mapper, fresh.select_one({"type": ColorBar}).color_mapper
        mapper_old.low, mapper_old.high = mapper_new.low, mapper_new.high
        marker_old, marker_new = old.select_one({"name": "selected"}).glyph, fresh.select_one({"name": "selected"}).glyph
        marker_old.width, marker_old.height = marker_new.width, marker_new.height

    def _heatmap(self):
        fig = heatmap_figure(self.results, self.arch.value if hasattr(self, "arch") else self.results.arch.values[0],
                             selected=(self.sigma_train.value, self.sigma_val.value) if hasattr(self, "sigma_val") else None)
        fig.sizing_mode, fig.min_width = "stretch_width", 320
        fig.output_backend = self._backend()
        cells = fig.select_one({"name": "cells"})
        fig.add_tools(TapTool(renderers=[cells]))
        cells.data_source.selected.on_change("indices", self._on_cell_click)
        return fig

    # --- direct manipulation ------------------------------------------------------------------

    def _on_cell_click(self, attr, old, new):
        """A click on a heatmap cell selects its (σtrain, σval)."""
        if not new:
            return
        data = self.heat_holder.children[0].select_one({"name": "cells"}).data_source.data
        st, sv = float(data["sigma_train"][new[0]]), float(data["sigma_val"][new[0]])
        self.heat_holder.children[0].select_one({"name": "cells"}).data_source.selected.indices = []  # no dimmed cells; re-clickable
        with self._batch():
            if st in self.sigma_train.options:
                self.sigma_train.value = st
                self._follow_sigma_train()
            self.sigma_val.value = _nearest(self.sigma_val.options, sv)

    def _on_kind_click(self, attr, old, new):
        """A click on a cell of the kinds heatmap selects that (train kind, eval kind) pair at the cell's strengths."""
        if not new:
            return
        source = self.kinds_holder.children[0].select_one({"name": "kind_cells"}).data_source
        i = new[0]
        t, e = source.data["train_noise"][i], source.data["eval_noise"][i]
        st, sv = float(source.data["sigma_train"][i]), float(source.data["sigma_val"][i])
        source.selected.indices = []
        if (t, e) not in self.pairs:
            return  # a pair without points: nothing to select
        self.set_selection(train_noise=t, eval_noise=e, sigma_train=st, sigma_val=sv)

    def set_selection(self, **values):
        """Set several controls as one change (the views recompute once); values snap to what exists."""
        with self._batch():
            if "arch" in values:
                self.arch.value = values["arch"]
            if "train_noise" in values:
                self.train_noise.value = values["train_noise"]
            if "eval_noise" in values or "train_noise" in values:
                evals = self._eval_noises(self.train_noise.value)
                self.eval_noise.options = evals
                self.eval_noise.value = values.get("eval_noise", evals[0]) if values.get("eval_noise", evals[0]) in evals else evals[0]
                self._apply_noise_and_preset(rebuild=False)
            if "sigma_train" in values:
                self.sigma_train.value = _nearest(self.sigma_train.options, values["sigma_train"])
                self._follow_sigma_train()
            if "sigma_val" in values:
                self.sigma_val.value = _nearest(self.sigma_val.options, values["sigma_val"])
            self._pending |= {"noise"}

    def _on_curve_click(self, attr, old, new):
        """A click on an accuracy curve selects its σtrain."""
        if new:
            st = float(self.curves.data["sigma_train"][new[0]])
            self.curves.selected.indices = []  # the width marks the selection, not bokeh's dimming; re-clickable
            self.sigma_train.value = st

    # --- updates ------------------------------------------------------------------------------

    class _Batch:
        def __init__(self, explorer):
            self.explorer = explorer

        def __enter__(self):
            self.outer = self.explorer._suspended
            self.explorer._suspended = True

        def __exit__(self, *exc):
            self.explorer._suspended = self.outer
            if not self.outer and self.explorer._pending:
                self.explorer._schedule()

    def _batch(self):
        """Several control changes as one: the views are recomputed once, when the block ends."""
        return self._Batch(self)

    AFFECTS = {
        "arch": {"noise", "accuracy", "heatmap", "states", "weights", "digit", "kinds", "compare"},
        "train_noise": {"noise", "accuracy", "heatmap", "states", "weights", "kinds"},
        "eval_noise": {"noise", "accuracy", "heatmap", "states", "kinds", "compare"},
        "sigma_train": {"sigma_options", "accuracy", "heatmap", "states", "weights"},
        "sigma_val": {"accuracy", "heatmap", "states", "compare"},
        "seed": {"states", "compare"},
        "digit": {"digit"},
        "train_seed": {"accuracy", "heatmap", "states", "weights", "compare"},
        "level": {"kinds"},
        "compare": {"compare"},
    }
    """Which views a control's change makes stale."""

    def _changed(self, controls: set[str]):
        for c in controls:
            self._pending |= self.AFFECTS[c]
        if not self._suspended:
            self._schedule()

    def _schedule(self):
        """Recompute the stale views now (no event loop) or once after ``debounce`` seconds of quiet."""
        loop = _running_loop()
        if loop is None or not self.debounce:
            self._flush()
            return
        self.status.value = f"<span style='color:#b35900'>⏳ updating to {self._selection_text()} …</span>"
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self.debounce, self._flush)

    def _flush(self):
        self._timer = None
        pending, self._pending = self._pending, set()
        try:
            if "noise" in pending:
                self._apply_noise_and_preset()
            elif "sigma_options" in pending:
                self._follow_sigma_train()
            for name in ("accuracy", "heatmap", "states", "weights", "digit", "kinds", "compare"):
                if name in pending:
                    self._timed(name, getattr(self, f"update_{name}"))
            self.updates += 1
            self.status.value = self._status_text()
            self._show_reopen_line()
        except Exception as err:  # a kernel callback has no cell to print to: say it on the status line
            self.status.value = f"<span style='color:#b00'>could not update the views: {type(err).__name__}: {err}</span>"
            if _running_loop() is None:
                raise

    def _follow_sigma_train(self):
        """The σval slider offers the values the selected model has points at (the nearest value kept)."""
        outer, self._suspended = self._suspended, True
        try:
            sv = self._sigma_vals(self.arch.value, self.sigma_train.value)
            if list(self.sigma_val.options) != sv:
                previous = self.sigma_val.value
                self.sigma_val.options = sv
                self.sigma_val.value = _nearest(sv, previous)
        finally:
            self._suspended = outer

    def _apply_noise_and_preset(self, rebuild: bool = True):
        """Follow a new preset or noise pair: the σtrain slider offers its models (the nearest value kept),
        the eval-noise choices follow the train noise, the heatmap is rebuilt."""
        outer, self._suspended = self._suspended, True
        try:
            evals = self._eval_noises(self.train_noise.value)
            if list(self.eval_noise.options) != evals:
                self.eval_noise.options = evals
                self.eval_noise.value = evals[0]
            self.results = pair_results(self.all_results, self.train_noise.value, self.eval_noise.value)
            st = self._sigma_trains(self.arch.value)
            if list(self.sigma_train.options) != st:
                previous = self.sigma_train.value
                self.sigma_train.options = st
                self.sigma_train.value = _nearest(st, previous)
            self._follow_sigma_train()
            cst = self._sigma_trains(self.arch.value, self.compare_noise.value)
            if list(self.compare_sigma.options) != cst:
                previous = self.compare_sigma.value
                self.compare_sigma.options = cst
                self.compare_sigma.value = _nearest(cst, previous)
        finally:
            self._suspended = outer
            if rebuild:
                self._pending.clear()  # the resets above are part of this update (every view is recomputed), not another
        if rebuild:
            self._refill_heatmap()

    def update_all(self):
        """Recompute every view now, for the current controls."""
        self._pending = set(self.AFFECTS["arch"]) - {"noise", "kinds"}
        self._flush()

    def _timed(self, name, fn):
        start = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - start

    def _selection_text(self) -> str:
        noise = "" if len(self.pairs) == 1 else f" (trained under {self.train_noise.value}, evaluated under {self.eval_noise.value})"
        return f"{self.arch.value} σtrain {self.sigma_train.value:g}, σval {self.sigma_val.value:g}{noise}"

    def _point(self):
        """The selected point's accuracies: (repeat[, train_seed]) for the seeds shown."""
        acc = self.results.accuracy.sel(arch=self.arch.value, sigma_train=self.sigma_train.value, sigma_val=self.sigma_val.value)
        if "train_seed" in acc.dims and self.train_seeds.value != "all":
            acc = acc.sel(train_seed=self.train_seeds.value)
        return acc

    def evaluations_text(self) -> str:
        """How many evaluations the selected point rests on: "1 deterministic evaluation" for a kind that draws
        nothing (an ADC), else "N evaluation repeats" (and the training seeds)."""
        acc = self._point()
        repeats = int(acc.notnull().sum("seed").max())
        if not _draws(self.eval_noise.value, self.sigma_val.value):
            text = "1 deterministic evaluation"
        else:
            text = f"{repeats} evaluation repeat{'s' if repeats != 1 else ''}"
        if "train_seed" in acc.dims:
            n = int(acc.notnull().any("seed").sum("train_seed"))
            text += f", mean of {n} training seeds"
        return text

    def _status_text(self) -> str:
        """What the views show, in words (not timings)."""
        mean = float(self._point().mean("seed").mean()) * 100
        return (f"<b>{self._selection_text()}</b>: {mean:.1f} % over {self.evaluations_text()} ({getattr(self, 'seeds_text', '')}) · "
                f"states: noise draw {self.seed.value} on {self.digits} test digits ({self.data})")

    # --- export and share ---------------------------------------------------------------------

    def selection(self) -> dict:
        """The current view as ``select`` of :meth:`open` (only what differs from the defaults where that is clear)."""
        out = {"arch": self.arch.value, "sigma_train": self.sigma_train.value, "sigma_val": self.sigma_val.value}
        if len(self.pairs) > 1:
            out.update(train_noise=self.train_noise.value, eval_noise=self.eval_noise.value)
        if self.seed.value:
            out["noise_draw"] = int(self.seed.value)
        if self.digit.value:
            out["digit"] = int(self.digit.value)
        if self.train_seeds.value != "all":
            out["train_seed"] = int(self.train_seeds.value)
        if self.kinds and self.level.value != "middle":
            out["level"] = self.level.value
        if self.compare.value:
            out["compare"] = (self.compare_noise.value, self.compare_sigma.value)
        if self.save_as.value != "PNG":
            out["save_as"] = self.save_as.value
        return out

    def reopen_line(self) -> str:
        """One line of code that reopens this view: ``Explorer.open(path, select={...})``."""
        where = repr(str(self.path)) if self.path is not None else "None"
        options = "" if self.data == "subset" else f", data={self.data!r}"
        return f"Explorer.open({where}, select={self.selection()!r}{options})"

    def _show_reopen_line(self):
        from html import escape

        self.reopen.value = f"<code>{escape(self.reopen_line())}</code>"

    def _backend(self) -> str:
        return "svg" if getattr(self, "save_as", None) is not None and self.save_as.value == "SVG" else "canvas"

    def _apply_backend(self):
        """Every figure's save tool writes what "save as" says: PNG (canvas) or SVG (bokeh's SVG backend)."""
        from bokeh.models import Plot

        for layout in (self.accuracy_views, self.state_views, self.kinds_holder):
            if layout is not None:
                for plot in layout.select({"type": Plot}):
                    plot.output_backend = self._backend()
        if self.updates:
            self._show_reopen_line()

    def update_accuracy(self):
        arch, st, sv = self.arch.value, self.sigma_train.value, self.sigma_val.value
        sources = accuracy_sources(self.results, arch, seeds=self.train_seeds.value)
        colours = _palette(len(sources))
        bands = {"xs": [], "ys": [], "color": []}
        for colour, d in zip(colours, sources.values()):
            keep = [i for i, (lo, hi) in enumerate(zip(d["low"], d["high"])) if lo == lo and hi == hi]
            if len(keep) >= 2:
                xs = [d["sigma_val"][i] for i in keep]
                bands["xs"].append(xs + xs[::-1])
                bands["ys"].append([d["low"][i] for i in keep] + [d["high"][i] for i in keep][::-1])
                bands["color"].append(colour)
        self.bands.data = bands
        self.points.data = {
            "x": [x for d in sources.values() for x in d["sigma_val"]],
            "y": [y for d in sources.values() for y in d["value"]],
            "color": [c for c, d in zip(colours, sources.values()) for _ in d["value"]],
            "sigma_train": [f"{s:g}" for s, d in sources.items() for _ in d["value"]],
            "label": [("–" if y != y else f"{y:.2f} %") for d in sources.values() for y in d["value"]],
        }
        self.curves.data = {
            "xs": [d["sigma_val"] for d in sources.values()],
            "ys": [d["value"] for d in sources.values()],
            "color": colours,
            "width": [5 if np.isclose(s, st) else 1.5 for s in sources],
            "sigma_train": [f"{s:g}" for s in sources],
        }
        keys = list(sources)
        self.sigma_key.palette, self.sigma_key.low, self.sigma_key.high = colours, min(keys), max(max(keys), min(keys) + 1e-9)
        baseline = self._baseline(arch)
        self.baseline.location = baseline if baseline == baseline else None
        metric = str(self.results.attrs.get("metric", "accuracy"))  # a dni.robustness result may hold another metric
        mean = float(self._point().mean("seed").mean()) * (100 if metric == "accuracy" else 1)
        self.selected_point.data = {"x": [sv], "y": [mean]}
        value = f"{mean:.1f} %" if metric == "accuracy" else f"{metric} {mean:.4g}"
        self.fig_accuracy.title.text = f"{arch}: {metric} over σval — σtrain {st:g} at σval {sv:g}: {value}"
        self.seeds_text = seeds_note(sources)

    def _baseline(self, arch: str) -> float:
        """The conventional model's clean accuracy (%): σtrain = σval = 0 of any pair that has it (the paper's red line)."""
        acc = self.all_results.accuracy.sel(arch=arch)
        if 0.0 not in acc.sigma_train.values or 0.0 not in acc.sigma_val.values:
            return float("nan")
        acc = acc.sel(sigma_train=0.0, sigma_val=0.0)
        if "train_seed" in acc.dims and self.train_seeds.value != "all":
            acc = acc.sel(train_seed=self.train_seeds.value)
        return float(acc.mean()) * 100

    def update_kinds(self):
        """(f), (g): rebuilt for the preset, level and eval kind; the selected pair outlined."""
        if not self.kinds:
            return
        heat_key, lines_key = self._kinds_keys()
        heat, lines = self.kinds_holder.children
        if self._kinds_key[0] != heat_key:
            heat = self._kinds_heat()
        else:  # the same heatmap: only the outline moves to the selected pair
            marker = heat.select_one({"name": "selected_pair"})
            marker.data_source.data = {"x": [self.eval_noise.value], "y": [self.train_noise.value]}
        if self._kinds_key[1][0] != lines_key[0] or self._kinds_key[1][2] != lines_key[2]:
            lines = self._kinds_lines()
        elif self._kinds_key[1] != lines_key:
            refill_kinds_lines(lines, self.all_results, self.arch.value, self.eval_noise.value)
        if [heat, lines] != list(self.kinds_holder.children):
            self.kinds_holder.children = [heat, lines]
        self._kinds_key = (heat_key, lines_key)

    def update_compare(self):
        """The compared model: its accuracy curve under the selected eval kind in (a), its states beside (c)."""
        self.compare_row.visible = self.compare_legend.visible = bool(self.compare.value)
        if not self.compare.value:
            self.compare_curve.data = {"x": [], "y": []}
            return
        t, st = self.compare_noise.value, float(self.compare_sigma.value)
        e, arch = self.eval_noise.value, self.arch.value
        if (t, e) in self.pairs:
            view = pair_results(self.all_results, t, e)
            sources = accuracy_sources(view, arch, seeds=self.train_seeds.value)
            d = sources.get(st, {"sigma_val": [], "value": []})
            self.compare_curve.data = {"x": d["sigma_val"], "y": d["value"]}
        else:
            self.compare_curve.data = {"x": [], "y": []}
        try:
            stats = self._stats_of(arch, t, st)
        except KeyError as err:
            self.h_compare.data = self.c_compare.data = {"xs": [], "ys": [], "color": []}
            self.fig_h_compare.title.text = str(err)
            return
        steps = stats.sizes["step"]
        colours = _palette(steps)
        for src, var in ((self.h_compare, "h"), (self.c_compare, "c")):
            if var in stats:
                grid = stats[f"{var}_value"].values.tolist()
                src.data = {"xs": [grid] * steps, "ys": [r.tolist() for r in stats[var].values], "color": colours}
            else:
                src.data = {"xs": [], "ys": [], "color": []}
        label = f"{t} σtrain {st:g} at {e} σval {self.sigma_val.value:g}"
        self.fig_h_compare.title.text = f"compared model, h per step ({label})"
        self.fig_c_compare.title.text = f"compared model, c per step ({label})" if "c" in stats else "compared model: no c"

    def update_heatmap(self):
        marker = self.heat_holder.children[0].select_one({"name": "selected"})
        marker.data_source.data = {"x": [self.sigma_val.value], "y": [self.sigma_train.value]}

    def state_stats(self) -> xr.Dataset:
        """Distributions of h and c of the selected model at the selected σval and eval noise (view c); cached."""
        return self._stats_of(self.arch.value, self.train_noise.value, self.sigma_train.value)

    def _stats_of(self, arch: str, train_noise: str, sigma_train: float) -> xr.Dataset:
        seed = self.train_seeds.value
        key = (arch, train_noise, sigma_train, seed, self.eval_noise.value, self.sigma_val.value,
               int(self.seed.value), self.digits, self.bins)
        if key in self._state_cache:
            self._state_cache.move_to_end(key)
            return self._state_cache[key]
        trained = self.model(arch, sigma_train, train_noise)
        x = self.test_data(arch).x[: self.digits]
        gen = torch.Generator().manual_seed(int(self.seed.value))
        stats = state_distributions(trained.model, x, noise_for(self.eval_noise.value, self.sigma_val.value),
                                    generator=gen, bins=self.bins)
        self._state_cache[key] = stats
        if len(self._state_cache) > STATE_CACHE:
            self._state_cache.popitem(last=False)
        return stats

    def update_states(self):
        try:
            stats = self.state_stats()
        except KeyError as err:
            self.h_lines.data = self.c_lines.data = {"xs": [], "ys": [], "color": []}
            self.c_overflow.data = {"x": [], "top": [], "width": [], "label": []}
            self.fig_h.title.text = str(err)
            return
        steps = stats.sizes["step"]
        colours = _palette(steps)
        for key in self.step_keys:
            key.palette, key.low, key.high = colours, 1, max(steps, 2)
        for src, noise, var in ((self.h_lines, self.noise_h, "h"), (self.c_lines, self.noise_c, "c")):
            if var in stats:
                grid = stats[f"{var}_value"].values.tolist()
                src.data = {"xs": [grid] * steps, "ys": [r.tolist() for r in stats[var].values], "color": colours}
                noise.data = {"x": grid, "y": stats[f"noise_{var}"].values.tolist()}
            else:
                src.data = {"xs": [], "ys": [], "color": []}
                noise.data = {"x": [], "y": []}
        self.c_overflow.data = overflow_data(stats, "c") if "c" in stats else {"x": [], "top": [], "width": [], "label": []}
        label = f"σtrain {self.sigma_train.value:g}, σval {self.sigma_val.value:g}"
        self.fig_h.title.text = f"output states h per step ({label})"
        if "c" in stats:
            outside = float(stats.c_below.mean() + stats.c_above.mean()) * 100
            low, high = stats.attrs["c_range"]
            self.fig_c.title.text = f"internal states c per step: {outside:.1f} % outside [{low:g}, {high:g}]"
        else:
            self.fig_c.title.text = "no internal state c (not an LSTM)"

    def update_weights(self):
        key = (self.arch.value, self.train_noise.value, self.sigma_train.value, self.train_seeds.value)
        try:
            if key not in self._weight_cache:
                self._weight_cache[key] = weight_histogram(self.model(self.arch.value, self.sigma_train.value).model)
            hist = self._weight_cache[key]
        except KeyError as err:
            self.weights.data = {"x": [], "density": []}
            self.fig_weights.title.text = str(err)
            return
        self.weights.data = {"x": hist.value.values.tolist(), "density": np.where(hist.values > 0, hist.values, np.nan).tolist()}
        self.fig_weights.title.text = f"weights of σtrain {self.sigma_train.value:g}: mean(w²) = {hist.attrs['weight_power']:.4f}"

    def update_digit(self):
        try:
            data = self.test_data(self.arch.value)
        except KeyError as err:  # not a preset (a dni.robustness result of a user's model): no digits to show
            self.digit_image.data = {"image": []}
            self.pen.data = {"x": [], "y": []}
            self.jumps.data = {"x0": [], "y0": [], "x1": [], "y1": []}
            self.fig_digit.title.text = str(err).strip("'\"")
            return
        i = int(self.digit.value) % len(data)
        self.digit_image.data = {"image": [np.ascontiguousarray(data.images[i].numpy(), dtype=float)]}
        if data.strokes is not None:
            rows = data.strokes[i]
            xy = np.cumsum(rows[:, :2].astype(float), axis=0) + 0.5  # pixel centres
            breaks = np.flatnonzero(rows[:-1, 2]) + 1  # a jump follows each end of stroke
            x = np.insert(xy[:, 0], breaks, np.nan).tolist()
            y = np.insert(xy[:, 1], breaks, np.nan).tolist()
            self.pen.data = {"x": x, "y": y}
            self.jumps.data = {"x0": xy[breaks - 1, 0].tolist(), "y0": xy[breaks - 1, 1].tolist(),
                               "x1": xy[breaks, 0].tolist(), "y1": xy[breaks, 1].tolist()}
            self.fig_digit.title.text = f"digit {i}: label {int(data.y[i])}, {len(rows)} pen points"
        else:
            self.pen.data = {"x": [], "y": []}
            self.jumps.data = {"x0": [], "y0": [], "x1": [], "y1": []}
            self.fig_digit.title.text = f"digit {i}: label {int(data.y[i])}"

    # --- display ------------------------------------------------------------------------------

    @property
    def widget(self):
        """The whole explorer as one ipywidget: the selection controls above the accuracy views, and
        the σval slider again (the same control) with the state view's own controls right above the
        state views they drive, so no control scrolls away from its views."""
        import ipywidgets as W
        from jupyter_bokeh import BokehModel

        if not hasattr(self, "_widget"):
            wrap = W.Layout(flex_flow="row wrap", width="100%")
            noise = [self.train_noise, self.eval_noise] if len(self.pairs) > 1 else []
            seeds = [self.train_seeds] if len(self.train_seeds.options) > 2 else []
            selection = W.Box([self.arch, *noise, self.sigma_train, self.sigma_val, *seeds], layout=wrap)
            state_controls = W.Box([self.sigma_val, self.seed, self.digit], layout=wrap)
            full = W.Layout(width="100%")
            children = [selection, self.status, BokehModel(self.accuracy_views, layout=full), state_controls,
                        BokehModel(self.state_views, layout=full)]
            if self.kinds:
                children[3:3] = [W.Box([self.level], layout=wrap), BokehModel(self.kinds_holder, layout=full)]
            children += [W.Box([self.compare, self.compare_noise, self.compare_sigma, self.save_as], layout=wrap), self.reopen]
            self._widget = W.VBox(children, layout=full)
        return self._widget

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
