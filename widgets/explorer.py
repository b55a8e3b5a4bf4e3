"""The live explorer: ipywidgets controls driving bokeh views of a result set and its models.

Views (all bokeh, wrapped as one ipywidget with ``jupyter_bokeh.BokehModel``; a control change
rewrites their ``ColumnDataSource``s in place, no re-render):

(a) accuracy over σval for every σtrain (colour bar: σtrain), the selected σtrain highlighted, the
    σtrain = σval = 0 baseline in red (paper Figs 2, 10); click a curve to select its σtrain;
(b) the σtrain × σval accuracy heatmap with the selected cell outlined; click a cell to select it;
(c) distributions of h and c per time step (colour bar: step), recomputed live by running the
    selected model at the selected σval on a batch of test digits (Figs 3, 4, 7, 8); states outside
    the plotted range of c are counted in hatched overflow bins, not folded into the end bins;
(d) the selected model's weight histogram and weight power (Figs 5, 9);
(e) a digit viewer: the image, and the pen path for the stroke preset.

A result of several noise pairs (issue 19's train noise × eval noise grid) gets two more
dropdowns, the train noise and the eval noise; every view shows the selected pair.

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
)

from dni.data import load_sequences
from dni.nn.presets import get_preset
from dni.nn.probes import state_distributions, weight_histogram
from dni.noise.session import noise_for
from dni.store.checkpoints import TrainedModel, load_checkpoint
from dni.store.layout import find_checkpoints
from dni.store.results import load_results, noise_pairs, select_noise

STATE_CACHE = 64
"""How many state distributions the explorer keeps (a return to a recent selection is instant)."""


def _nearest(values, value) -> float:
    values = np.asarray(values, dtype=float)
    return float(values[np.argmin(np.abs(values - value))])


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

    def __init__(self, results, models, *, data: str = "subset", digits: int = 256, bins: int = 50, debounce: float = 0.05):
        import ipywidgets as W

        self.all_results = load_results(results) if isinstance(results, (str, Path)) else results
        self.pairs = noise_pairs(self.all_results)
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
        train_noises = list(dict.fromkeys(t for t, _ in self.pairs))
        self.train_noise = W.Dropdown(options=train_noises, value=train_noises[0], description="train noise",
                                      disabled=len(self.pairs) == 1)
        evals = self._eval_noises(train_noises[0])
        self.eval_noise = W.Dropdown(options=evals, value=evals[0], description="eval noise", disabled=len(self.pairs) == 1)
        self.results = select_noise(self.all_results, self.train_noise.value, self.eval_noise.value)
        self.models = self._collect_models(models)
        archs = self.results.arch.values.tolist()
        arch = archs[0]
        st = self._sigma_trains(arch)
        sv = self.results.sigma_val.values.tolist()
        self.arch = W.Dropdown(options=archs, value=arch, description="preset")
        self.sigma_train = W.SelectionSlider(options=st, value=st[-1], description="σtrain", continuous_update=False)
        self.sigma_val = W.SelectionSlider(options=sv, value=sv[len(sv) // 2], description="σval", continuous_update=False)
        repeats = self.results.sizes["seed"]
        self.seed = W.IntSlider(value=0, min=0, max=max(repeats - 1, 9), description="noise draw", continuous_update=False,
                                tooltip=f"seeds the inference noise of the state view (c) only; the accuracy views average "
                                        f"all {repeats} evaluation repeats")
        self.noise_draw = self.seed
        self.digit = W.IntSlider(value=0, min=0, max=49, description="digit", continuous_update=False)
        self.status = W.HTML()
        self._build_views()
        self.arch.observe(lambda change: self._changed({"arch"}), "value")
        self.train_noise.observe(lambda change: self._changed({"train_noise"}), "value")
        self.eval_noise.observe(lambda change: self._changed({"eval_noise"}), "value")
        self.sigma_train.observe(lambda change: self._changed({"sigma_train"}), "value")
        self.sigma_val.observe(lambda change: self._changed({"sigma_val"}), "value")
        self.seed.observe(lambda change: self._changed({"seed"}), "value")
        self.digit.observe(lambda change: self._changed({"digit"}), "value")
        self.update_all()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def demo(cls, **kwargs) -> "Explorer":
        """The explorer over the small precomputed result set shipped with dni (no training)."""
        return cls.open(None, **kwargs)

    @classmethod
    def open(cls, result=None, checkpoint_dir=None, **kwargs) -> "Explorer":
        """The explorer of a result file and its checkpoints (default ``<result>_checkpoints/``); None: the demo.

        E.g. the committed full results: ``Explorer.open("results/dni_paper.nc", data="mnist")``.
        """
        from dni_widgets.loading import open_results

        ds, checkpoints = open_results(result, checkpoint_dir)
        if checkpoint_dir is None and result is not None:
            from dni.store.layout import default_checkpoint_dir

            checkpoint_dir = default_checkpoint_dir(Path(result))
        return cls(ds, checkpoint_dir if checkpoint_dir is not None else checkpoints, **kwargs)

    def _eval_noises(self, train_noise: str) -> list[str]:
        return [e for t, e in self.pairs if t == train_noise]

    def _collect_models(self, models) -> dict:
        """{(arch, train noise, σtrain): checkpoint path or TrainedModel}."""
        if isinstance(models, dict):
            default = self.pairs[0][0]
            return {(k[0], k[1], float(k[2])) if len(k) == 3 else (k[0], default, float(k[1])): v for k, v in models.items()}
        found = {}
        for t, e in dict((t, e) for t, e in self.pairs).items():  # one view per train noise
            for (arch, st), path in find_checkpoints(select_noise(self.all_results, t, e), models).items():
                found[(arch, t, st)] = path
        return found

    def model(self, arch: str, sigma_train: float, train_noise: str | None = None) -> TrainedModel:
        key = (arch, train_noise or self.train_noise.value, float(sigma_train))
        entry = self.models.get(key)
        if entry is None:
            raise KeyError(f"no checkpoint for {arch} at σtrain {sigma_train:g}" + ("" if len(self.pairs) == 1 else f" ({key[1]})"))
        if not isinstance(entry, TrainedModel):
            entry = self.models[key] = load_checkpoint(entry, arch)
        return entry

    def _sigma_trains(self, arch: str) -> list[float]:
        acc = self.results.accuracy.sel(arch=arch)
        return [float(s) for s in self.results.sigma_train.values if not np.isnan(acc.sel(sigma_train=s)).all()]

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
        self.curve_lines = self.fig_accuracy.multi_line("xs", "ys", color="color", line_width="width", source=self.curves,
                                                        name="curves", nonselection_alpha=1.0, selection_alpha=1.0)
        self.fig_accuracy.select_one(TapTool).renderers = [self.curve_lines]
        self.fig_accuracy.hover.renderers = [self.curve_lines]
        self.curves.selected.on_change("indices", self._on_curve_click)
        self.baseline = Span(location=0, dimension="width", line_color="red", line_dash="dashed", line_width=2)
        self.fig_accuracy.add_layout(self.baseline)
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
        self.accuracy_views = row(self.fig_accuracy, self.heat_holder, sizing_mode="stretch_width")
        self.state_views = column(row(self.fig_h, self.fig_c, sizing_mode="stretch_width"),
                                  row(self.fig_weights, self.fig_digit, sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def _heatmap(self):
        fig = heatmap_figure(self.results, self.arch.value if hasattr(self, "arch") else self.results.arch.values[0],
                             selected=(self.sigma_train.value, self.sigma_val.value) if hasattr(self, "sigma_val") else None)
        fig.sizing_mode, fig.min_width = "stretch_width", 320
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
            self.sigma_val.value = _nearest(self.sigma_val.options, sv)

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
        "arch": {"noise", "accuracy", "heatmap", "states", "weights", "digit"},
        "train_noise": {"noise", "accuracy", "heatmap", "states", "weights"},
        "eval_noise": {"noise", "accuracy", "heatmap", "states"},
        "sigma_train": {"accuracy", "heatmap", "states", "weights"},
        "sigma_val": {"accuracy", "heatmap", "states"},
        "seed": {"states"},
        "digit": {"digit"},
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
            for name in ("accuracy", "heatmap", "states", "weights", "digit"):
                if name in pending:
                    self._timed(name, getattr(self, f"update_{name}"))
            self.updates += 1
            self.status.value = self._status_text()
        except Exception as err:  # a kernel callback has no cell to print to: say it on the status line
            self.status.value = f"<span style='color:#b00'>could not update the views: {type(err).__name__}: {err}</span>"
            if _running_loop() is None:
                raise

    def _apply_noise_and_preset(self):
        """Follow a new preset or noise pair: the σtrain slider offers its models (the nearest value kept),
        the eval-noise choices follow the train noise, the heatmap is rebuilt."""
        outer, self._suspended = self._suspended, True
        try:
            evals = self._eval_noises(self.train_noise.value)
            if list(self.eval_noise.options) != evals:
                self.eval_noise.options = evals
                self.eval_noise.value = evals[0]
            self.results = select_noise(self.all_results, self.train_noise.value, self.eval_noise.value)
            st = self._sigma_trains(self.arch.value)
            if list(self.sigma_train.options) != st:
                previous = self.sigma_train.value
                self.sigma_train.options = st
                self.sigma_train.value = _nearest(st, previous)
        finally:
            self._suspended = outer
            self._pending.clear()  # the resets above are part of this update (every view is recomputed), not another
        self.heat_holder.children = [self._heatmap()]

    def update_all(self):
        """Recompute every view now, for the current controls."""
        self._pending = set(self.AFFECTS["arch"]) - {"noise"}
        self._flush()

    def _timed(self, name, fn):
        start = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - start

    def _selection_text(self) -> str:
        noise = "" if len(self.pairs) == 1 else f" (trained under {self.train_noise.value}, evaluated under {self.eval_noise.value})"
        return f"{self.arch.value} σtrain {self.sigma_train.value:g}, σval {self.sigma_val.value:g}{noise}"

    def _status_text(self) -> str:
        """What the views show, in words (not timings)."""
        point = self.results.accuracy.sel(arch=self.arch.value, sigma_train=self.sigma_train.value, sigma_val=self.sigma_val.value)
        mean = float(point.mean()) * 100
        return (f"<b>{self._selection_text()}</b>: {mean:.1f} % over {int(point.notnull().sum())} evaluation repeats · "
                f"states: noise draw {self.seed.value} on {self.digits} test digits ({self.data})")

    def update_accuracy(self):
        arch, st, sv = self.arch.value, self.sigma_train.value, self.sigma_val.value
        sources = accuracy_sources(self.results, arch)
        colours = _palette(len(sources))
        self.curves.data = {
            "xs": [d["sigma_val"] for d in sources.values()],
            "ys": [d["value"] for d in sources.values()],
            "color": colours,
            "width": [5 if np.isclose(s, st) else 1.5 for s in sources],
            "sigma_train": [f"{s:g}" for s in sources],
        }
        keys = list(sources)
        self.sigma_key.palette, self.sigma_key.low, self.sigma_key.high = colours, min(keys), max(max(keys), min(keys) + 1e-9)
        if 0.0 in sources:
            self.baseline.location = sources[0.0]["value"][0]
        metric = str(self.results.attrs.get("metric", "accuracy"))  # a dni.robustness result may hold another metric
        mean = float(self.results.accuracy.sel(arch=arch, sigma_train=st, sigma_val=sv).mean()) * (100 if metric == "accuracy" else 1)
        self.selected_point.data = {"x": [sv], "y": [mean]}
        value = f"{mean:.1f} %" if metric == "accuracy" else f"{metric} {mean:.4g}"
        self.fig_accuracy.title.text = f"{arch}: {metric} over σval — σtrain {st:g} at σval {sv:g}: {value}"

    def update_heatmap(self):
        marker = self.heat_holder.children[0].select_one({"name": "selected"})
        marker.data_source.data = {"x": [self.sigma_val.value], "y": [self.sigma_train.value]}

    def state_stats(self) -> xr.Dataset:
        """Distributions of h and c of the selected model at the selected σval and eval noise (view c); cached."""
        key = (self.arch.value, self.train_noise.value, self.sigma_train.value, self.eval_noise.value, self.sigma_val.value,
               int(self.seed.value), self.digits, self.bins)
        if key in self._state_cache:
            self._state_cache.move_to_end(key)
            return self._state_cache[key]
        trained = self.model(self.arch.value, self.sigma_train.value)
        x = self.test_data(self.arch.value).x[: self.digits]
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
        key = (self.arch.value, self.train_noise.value, self.sigma_train.value)
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
            selection = W.Box([self.arch, *noise, self.sigma_train, self.sigma_val], layout=wrap)
            state_controls = W.Box([self.sigma_val, self.seed, self.digit], layout=wrap)
            full = W.Layout(width="100%")
            self._widget = W.VBox([selection, self.status, BokehModel(self.accuracy_views, layout=full), state_controls,
                                   BokehModel(self.state_views, layout=full)], layout=full)
        return self._widget

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
