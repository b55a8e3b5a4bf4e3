"""The live explorer: ipywidgets controls driving bokeh views of a result set and its models.

Views (all bokeh, wrapped as one ipywidget with ``jupyter_bokeh.BokehModel``; a control change
rewrites their ``ColumnDataSource``s in place, no re-render):

(a) accuracy over σval for every σtrain, the selected σtrain highlighted, the σtrain = σval = 0
    baseline in red (paper Figs 2, 10);
(b) the σtrain × σval accuracy heatmap with the selected cell outlined;
(c) distributions of h and c per time step, recomputed live by running the selected model at
    the selected σval on a batch of test digits (Figs 3, 4, 7, 8);
(d) the selected model's weight histogram and weight power (Figs 5, 9);
(e) a digit viewer: the image, and the pen path for the stroke preset.

``Explorer.timings`` keeps the seconds the last update of each view took.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure

from dni.data import load_sequences
from dni.models import get_preset
from dni.probes import state_distributions, weight_histogram
from dni.results import load_results
from dni.sweep import find_checkpoints
from dni.train import TrainedModel, load_checkpoint

from .figures import _palette, accuracy_sources, heatmap_figure

DEMO_DIR = Path(__file__).parent / "demo"


def _nearest(values, value) -> float:
    values = np.asarray(values, dtype=float)
    return float(values[np.argmin(np.abs(values - value))])


class Explorer:
    """Sliders for σtrain and σval, a preset dropdown, a noise-seed and a digit control, and live views.

    ``results``: an ``xarray.Dataset`` of :mod:`dni.results` (or a path); ``models``: a dict
    ``{(arch, σtrain): TrainedModel}`` or a checkpoint folder laid out as ``dni sweep`` writes
    it. ``digits``: how many test digits view (c) runs the model on.
    """

    def __init__(self, results, models, *, data: str = "subset", digits: int = 256, bins: int = 50):
        import ipywidgets as W

        self.results = load_results(results) if isinstance(results, (str, Path)) else results
        self.models = self._collect_models(models)
        self.data, self.digits, self.bins = data, digits, bins
        self._test: dict[str, object] = {}
        self.timings: dict[str, float] = {}
        archs = [a for a in self.results.arch.values.tolist()]
        arch = archs[0]
        st = self._sigma_trains(arch)
        sv = self.results.sigma_val.values.tolist()
        self.arch = W.Dropdown(options=archs, value=arch, description="preset")
        self.sigma_train = W.SelectionSlider(options=st, value=st[-1], description="σtrain", continuous_update=False)
        self.sigma_val = W.SelectionSlider(options=sv, value=sv[len(sv) // 2], description="σval", continuous_update=False)
        self.seed = W.IntSlider(value=0, min=0, max=max(self.results.sizes["seed"] - 1, 9), description="noise seed", continuous_update=False)
        self.digit = W.IntSlider(value=0, min=0, max=49, description="digit", continuous_update=False)
        self.status = W.HTML()
        self._build_views()
        self.arch.observe(self._on_arch, "value")
        for w in (self.sigma_train, self.sigma_val, self.seed):
            w.observe(self._on_selection, "value")
        self.digit.observe(lambda change: self.update_digit(), "value")
        self.update_all()

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def demo(cls, **kwargs) -> "Explorer":
        """The explorer over the small precomputed result set shipped with dni (no training)."""
        return cls.open(None, **kwargs)

    @classmethod
    def open(cls, result=None, checkpoint_dir=None, **kwargs) -> "Explorer":
        """The explorer of a result file and its checkpoints (default ``<result>_checkpoints/``); None: the demo."""
        from .figures import open_results

        ds, checkpoints = open_results(result, checkpoint_dir)
        return cls(ds, checkpoints, **kwargs)

    def _collect_models(self, models) -> dict:
        return dict(models) if isinstance(models, dict) else find_checkpoints(self.results, models)

    def model(self, arch: str, sigma_train: float) -> TrainedModel:
        entry = self.models.get((arch, float(sigma_train)))
        if entry is None:
            raise KeyError(f"no checkpoint for {arch} at σtrain {sigma_train:g}")
        if not isinstance(entry, TrainedModel):
            entry = self.models[(arch, float(sigma_train))] = load_checkpoint(entry, arch)
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
        # (a) accuracy curves: one multi_line source, width per line marks the selection
        self.curves = ColumnDataSource({"xs": [], "ys": [], "color": [], "width": [], "sigma_train": []}, name="accuracy_curves")
        self.fig_accuracy = figure(title="accuracy over σval per σtrain", height=330, width=480, x_axis_label="σval",
                                   y_axis_label="test accuracy (%)", tools=tools + ",hover",
                                   tooltips=[("σtrain", "@sigma_train")])
        self.fig_accuracy.multi_line("xs", "ys", color="color", line_width="width", source=self.curves)
        self.baseline = Span(location=0, dimension="width", line_color="red", line_dash="dashed", line_width=2)
        self.fig_accuracy.add_layout(self.baseline)
        self.selected_point = ColumnDataSource({"x": [], "y": []})
        self.fig_accuracy.scatter("x", "y", source=self.selected_point, size=12, color="red", marker="circle")
        # (b) heatmap: rebuilt per preset, marker moved in place
        self.heat_holder = column(heatmap_figure(self.results, self.arch.value))
        # (c) states per step
        self.h_lines = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="h_per_step")
        self.c_lines = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="c_per_step")
        self.fig_h = figure(title="h per step", height=300, width=420, x_axis_label="h", y_axis_label="density", tools=tools)
        self.fig_c = figure(title="c per step", height=300, width=420, x_axis_label="c", y_axis_label="density", tools=tools)
        self.noise_h = ColumnDataSource({"x": [], "y": []})
        self.noise_c = ColumnDataSource({"x": [], "y": []})
        for fig, src, noise in ((self.fig_h, self.h_lines, self.noise_h), (self.fig_c, self.c_lines, self.noise_c)):
            fig.multi_line("xs", "ys", color="color", source=src, alpha=0.8)
            fig.line("x", "y", source=noise, color="blue", line_dash="dashed", line_width=2, legend_label="N(0, 1)")
        # (d) weights
        self.weights = ColumnDataSource({"x": [], "density": []})
        self.fig_weights = figure(title="weights", height=300, width=420, x_axis_label="weight value", y_axis_label="density",
                                  y_axis_type="log", tools=tools)
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
        self.layout = column(row(self.fig_accuracy, self.heat_holder), row(self.fig_h, self.fig_c),
                             row(self.fig_weights, self.fig_digit))

    # --- updates ------------------------------------------------------------------------------

    def _timed(self, name, fn):
        start = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - start

    def _on_arch(self, change):
        st = self._sigma_trains(self.arch.value)
        previous = self.sigma_train.value
        self._suspended = True  # resetting the σtrain slider must not recompute for the old choices
        try:
            self.sigma_train.options = st
            self.sigma_train.value = _nearest(st, previous)
        finally:
            self._suspended = False
        self.heat_holder.children = [heatmap_figure(self.results, self.arch.value)]
        self.update_all()

    def _on_selection(self, change):
        if not getattr(self, "_suspended", False):
            self.update_all()

    def update_all(self):
        self._timed("accuracy", self.update_accuracy)
        self._timed("heatmap", self.update_heatmap)
        self._timed("states", self.update_states)
        self._timed("weights", self.update_weights)
        self._timed("digit", self.update_digit)
        self.status.value = " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.timings.items())

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
        if 0.0 in sources:
            self.baseline.location = sources[0.0]["value"][0]
        mean = float(self.results.accuracy.sel(arch=arch, sigma_train=st, sigma_val=sv).mean()) * 100
        self.selected_point.data = {"x": [sv], "y": [mean]}
        self.fig_accuracy.title.text = f"{arch}: accuracy over σval — σtrain {st:g} at σval {sv:g}: {mean:.1f} %"

    def update_heatmap(self):
        marker = self.heat_holder.children[0].select_one({"name": "selected"})
        marker.data_source.data = {"x": [self.sigma_val.value], "y": [self.sigma_train.value]}

    def state_stats(self) -> xr.Dataset:
        """Distributions of h and c of the selected model at the selected σval (view c)."""
        trained = self.model(self.arch.value, self.sigma_train.value)
        data = self.test_data(self.arch.value)
        x = data.x[: self.digits]
        gen = torch.Generator().manual_seed(int(self.seed.value))
        return state_distributions(trained.model, x, self.sigma_val.value, generator=gen, bins=self.bins)

    def update_states(self):
        try:
            stats = self.state_stats()
        except KeyError as err:
            self.h_lines.data = self.c_lines.data = {"xs": [], "ys": [], "color": []}
            self.fig_h.title.text = str(err)
            return
        colours = _palette(stats.sizes["step"])
        for src, noise, var in ((self.h_lines, self.noise_h, "h"), (self.c_lines, self.noise_c, "c")):
            if var in stats:
                grid = stats[f"{var}_value"].values.tolist()
                src.data = {"xs": [grid] * stats.sizes["step"], "ys": [r.tolist() for r in stats[var].values], "color": colours}
                noise.data = {"x": grid, "y": stats[f"noise_{var}"].values.tolist()}
            else:
                src.data = {"xs": [], "ys": [], "color": []}
                noise.data = {"x": [], "y": []}
        label = f"σtrain {self.sigma_train.value:g}, σval {self.sigma_val.value:g}, {int(stats.attrs['digits'])} digits"
        self.fig_h.title.text = f"output states h per step ({label})"
        self.fig_c.title.text = f"internal states c per step ({label})" if "c" in stats else "no internal state c (not an LSTM)"

    def update_weights(self):
        try:
            hist = weight_histogram(self.model(self.arch.value, self.sigma_train.value).model)
        except KeyError as err:
            self.weights.data = {"x": [], "density": []}
            self.fig_weights.title.text = str(err)
            return
        self.weights.data = {"x": hist.value.values.tolist(), "density": np.where(hist.values > 0, hist.values, np.nan).tolist()}
        self.fig_weights.title.text = f"weights of σtrain {self.sigma_train.value:g}: mean(w²) = {hist.attrs['weight_power']:.4f}"

    def update_digit(self):
        data = self.test_data(self.arch.value)
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
        """The whole explorer as one ipywidget (controls above the bokeh views)."""
        import ipywidgets as W
        from jupyter_bokeh import BokehModel

        if not hasattr(self, "_widget"):
            controls = W.VBox([W.HBox([self.arch, self.sigma_train, self.sigma_val]), W.HBox([self.seed, self.digit, self.status])])
            self._widget = W.VBox([controls, BokehModel(self.layout)])
        return self._widget

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
