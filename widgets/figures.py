"""Static bokeh figures of the paper's views; each function returns a bokeh figure."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from dni_widgets.loading import load_models

from dni.data.strokes import length_histogram


def stroke_length_figure(lengths, bin_width: int = 2, steps: int = 50, title: str | None = None):
    """Histogram of pen-stroke sequence lengths (paper Fig. 6), with the 50-step model window marked."""
    lengths = np.asarray(lengths)
    counts, edges = length_histogram(lengths, bin_width)
    source = ColumnDataSource({"left": edges[:-1], "right": edges[1:], "count": counts})
    inside = ((lengths >= 20) & (lengths <= 60)).mean() * 100 if len(lengths) else 0.0
    fig = figure(title=title or f"Stroke sequence lengths of {len(lengths):,} digits ({inside:.0f} % within 20–60 points)",
                 x_axis_label="number of pen points", y_axis_label="digits", height=300, width=600,
                 tools="pan,box_zoom,reset,save,hover", tooltips=[("points", "@left–@right"), ("digits", "@count")])
    fig.quad(left="left", right="right", bottom=0, top="count", source=source, fill_alpha=0.7, line_color="white")
    fig.ray(x=[steps], y=[0], length=0, angle=np.pi / 2, color="red", line_dash="dashed", legend_label=f"{steps} LSTM steps")
    fig.legend.location = "top_right"
    return fig


def _palette(n: int):
    from bokeh.palettes import Viridis256

    return [Viridis256[int(i * 255 / max(n - 1, 1))] for i in range(n)]


def log_ticks_125(low: float, high: float) -> list[float]:
    """Ticks 1-2-5 × 10^k of a log axis over [low, high] (both > 0): from the largest such value at or
    below ``low`` to the smallest at or above ``high``, so that the 1–5 % band of an error-rate view
    (where the baseline and the noise-trained curves of paper Figs 2b, 10 sit) is labelled."""
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(f"a log axis needs 0 < low ≤ high, not {low!r}, {high!r}")
    ticks = [m * 10.0**k for k in range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1) for m in (1, 2, 5)]
    first = max(i for i, t in enumerate(ticks) if t <= low * (1 + 1e-9))
    last = min(i for i, t in enumerate(ticks) if t >= high * (1 - 1e-9))
    return [float(f"{t:.6g}") for t in ticks[first:last + 1]]


def use_log_ticks_125(fig, values) -> None:
    """Give ``fig``'s log y axis 1-2-5 ticks covering the positive finite ``values`` it shows."""
    from bokeh.models import FixedTicker

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        ticks = log_ticks_125(float(v.min()), float(v.max()))
        fig.yaxis.ticker = FixedTicker(ticks=ticks)
        fig.y_range.start, fig.y_range.end = ticks[0], ticks[-1]


def colour_bar(fig, low: float, high: float, title: str, n: int | None = None):
    """A Viridis colour bar right of ``fig`` keying its curves' colours from ``low`` to ``high`` (the
    same palette as :func:`_palette`; ``n`` curves → n colour steps). Returns the colour mapper."""
    from bokeh.models import ColorBar, LinearColorMapper

    palette = _palette(n) if n else "Viridis256"
    mapper = LinearColorMapper(palette=palette, low=low, high=high if high > low else low + 1)
    fig.add_layout(ColorBar(color_mapper=mapper, title=title, width=10, name=f"key: {title}"), "right")
    return mapper


OVERFLOW_STYLE = dict(fill_color="white", line_color="firebrick", hatch_pattern="/", hatch_color="firebrick", hatch_alpha=0.6)
"""The look of an overflow bin: hatched, red outlined — not mistakable for a bin of the histogram."""


def overflow_data(stats, which: str = "c") -> dict:
    """The two overflow bins of ``stats``' ``which`` view as bar data: the share of states below and
    above its range (mean over steps, :func:`dni.nn.probes.state_distributions`), drawn as a density
    (share / bin width) one bin outside each end, labelled with the share in %."""
    grid = stats[f"{which}_value"].values
    width = float(grid[1] - grid[0])
    shares = [float(stats[f"{which}_below"].mean()), float(stats[f"{which}_above"].mean())] if f"{which}_below" in stats else [0.0, 0.0]
    return {"x": [float(grid[0]) - width, float(grid[-1]) + width], "top": [s / width for s in shares], "width": [width, width],
            "label": [f"{s * 100:.1f} % below {grid[0] - width / 2:g}" for s in shares[:1]]
            + [f"{s * 100:.1f} % above {grid[-1] + width / 2:g}" for s in shares[1:]]}


def add_overflow_bins(fig, source) -> None:
    """Draw the overflow bins of ``source`` (:func:`overflow_data`) on ``fig``, with a legend entry."""
    fig.vbar(x="x", top="top", width="width", source=source, legend_label="outside the range (share of states)",
             name="overflow", **OVERFLOW_STYLE)


def legend_below(fig) -> None:
    """Put the legend in one row under the plot, where it hides no data (the colour bar takes the right)."""
    legend = fig.legend[0]
    legend.orientation, legend.label_text_font_size, legend.padding, legend.margin = "horizontal", "8pt", 2, 0
    fig.add_layout(legend, "below")


def _legend_outside(fig) -> None:
    """Move the legend to the right of the plot, where it hides no data."""
    fig.add_layout(fig.legend[0], "right")


def accuracy_sources(ds, arch: str, error_rate: bool = False, seeds="all") -> dict:
    """Mean over repeats per σtrain as plot data: {σtrain: {"sigma_val", "value", "low", "high", "n"}}.

    With a ``train_seed`` dim (issue 34) the value is the mean over training seeds of each model's mean
    over repeats, and low/high the 95 % t-interval across seeds (:func:`dni.util.intervals.t_interval`);
    ``seeds`` an int shows that training seed alone. One seed: low = high = NaN ("1 seed: no interval").
    """
    from dni.util.intervals import t_interval

    per_model = ds.accuracy.sel(arch=arch).mean("seed")
    if "train_seed" in per_model.dims and seeds != "all":
        per_model = per_model.sel(train_seed=seeds)
    if "train_seed" not in per_model.dims:
        per_model = per_model.expand_dims(train_seed=[0])
    per_model = per_model.transpose("sigma_train", "sigma_val", "train_seed")
    out = {}
    for st in ds.sigma_train.values:
        row = per_model.sel(sigma_train=st).values  # (σval, train seed)
        if np.isnan(row).all():
            continue
        interval = t_interval(row, axis=-1)
        if ds.attrs.get("metric", "accuracy") != "accuracy":  # another metric of dni.robustness (e.g. mse): as it is
            scale = lambda v: np.asarray(v, float)  # noqa: E731
        else:
            scale = (lambda v: (1 - np.asarray(v, float)) * 100) if error_rate else (lambda v: np.asarray(v, float) * 100)  # noqa: E731
        low, high = scale(interval.low), scale(interval.high)
        out[float(st)] = {"sigma_val": ds.sigma_val.values.tolist(), "value": scale(interval.mean).tolist(),
                          "low": np.minimum(low, high).tolist(), "high": np.maximum(low, high).tolist(),
                          "n": np.asarray(interval.n).tolist()}
    return out


def seeds_note(sources: dict) -> str:
    """How many training seeds the curves rest on, in words: "1 seed: no interval" or "band: 95 % t-interval over 3 seeds"."""
    n = max((max(d["n"]) for d in sources.values()), default=1)
    return "1 seed: no interval" if n < 2 else f"band: 95 % t-interval over {n} training seeds"


def accuracy_figure(ds, arch: str, error_rate: bool = False, highlight: float | None = None, seeds="all"):
    """Accuracy (or error rate, log scale) over σval, one line per σtrain (paper Figs 2a, 2b, 10), a marker on
    every measured point; with several training seeds a band of the 95 % t-interval across them.

    The red horizontal line is the conventional baseline σtrain = σval = 0.
    """
    sources = accuracy_sources(ds, arch, error_rate, seeds)
    metric = ds.attrs.get("metric", "accuracy")
    label = f"test {metric}" if metric != "accuracy" else "test error rate (%)" if error_rate else "test accuracy (%)"
    from dni.store.results import repeats_held

    fig = figure(title=f"{arch}: {label} under noisy inference ({repeats_held(ds.accuracy.sel(arch=arch))} repeats; {seeds_note(sources)})", height=380, width=780,
                 x_axis_label="σval (inference noise)", y_axis_label=label, y_axis_type="log" if error_rate else "linear",
                 tools="pan,box_zoom,reset,save,hover", tooltips=[("σval", "@sigma_val{0.[0000]}"), ("value", "@value{0.00}")])
    for colour, (st, data) in zip(_palette(len(sources)), sources.items()):
        width = 4 if highlight is not None and np.isclose(st, highlight) else 2
        source = ColumnDataSource(data)
        if max(data["n"]) >= 2:
            fig.varea("sigma_val", "low", "high", source=source, color=colour, alpha=0.2, name="seed_band")
        fig.line("sigma_val", "value", source=source, color=colour, line_width=width, legend_label=f"σtrain {st:g}")
        fig.scatter("sigma_val", "value", source=source, color=colour, size=5, legend_label=f"σtrain {st:g}")
    if 0.0 in sources:
        base = sources[0.0]["value"][0]
        fig.line([min(ds.sigma_val.values), max(ds.sigma_val.values)], [base, base], color="red", line_dash="dashed",
                 legend_label="baseline σtrain = σval = 0")
    if error_rate:
        use_log_ticks_125(fig, [v for d in sources.values() for v in d["value"]])
    fig.legend.click_policy = "hide"
    fig.legend.label_text_font_size = "8pt"
    _legend_outside(fig)
    return fig


def _cell_sizes(values) -> np.ndarray:
    """Per value of a sorted axis, the distance to its nearer neighbour (0.1 for a single value)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return np.full(v.size, 0.1)
    gaps = np.diff(v)
    return np.minimum(np.r_[gaps[0], gaps], np.r_[gaps, gaps[-1]])


def heatmap_figure(ds, arch: str, selected: tuple[float, float] | None = None):
    """Mean accuracy over the σtrain × σval grid; the selected cell outlined."""
    from bokeh.models import ColorBar, LinearColorMapper

    mean = ds.accuracy.sel(arch=arch).mean("seed")
    mean = (mean.mean("train_seed") if "train_seed" in mean.dims else mean).transpose("sigma_train", "sigma_val") * 100
    st, sv = np.meshgrid(ds.sigma_train.values, ds.sigma_val.values, indexing="ij")
    data = {"sigma_train": st.ravel(), "sigma_val": sv.ravel(), "accuracy": mean.values.ravel()}
    # each cell as wide as the gap to its nearer neighbour: irregular σ values (a kind's strengths) leave no holes
    data["width"] = np.tile(_cell_sizes(ds.sigma_val.values), ds.sizes["sigma_train"])
    data["height"] = np.repeat(_cell_sizes(ds.sigma_train.values), ds.sizes["sigma_val"])
    step_t = np.diff(ds.sigma_train.values).min() if ds.sizes["sigma_train"] > 1 else 0.1
    step_v = np.diff(ds.sigma_val.values).min() if ds.sizes["sigma_val"] > 1 else 0.1
    mapper = LinearColorMapper(palette="Viridis256", low=float(np.nanmin(data["accuracy"])), high=float(np.nanmax(data["accuracy"])))
    fig = figure(title=f"{arch}: accuracy (%) over σtrain × σval", height=380, width=520, x_axis_label="σval", y_axis_label="σtrain",
                 tools="hover,save", tooltips=[("σtrain", "@sigma_train{0.[0000]}"), ("σval", "@sigma_val{0.[0000]}"), ("accuracy", "@accuracy{0.0}")])
    cells = fig.rect("sigma_val", "sigma_train", width="width", height="height", source=ColumnDataSource(data),
                     fill_color={"field": "accuracy", "transform": mapper}, line_color=None, name="cells")
    fig.hover.renderers = [cells]  # not the selection marker, which has no such fields
    fig.add_layout(ColorBar(color_mapper=mapper, title="accuracy (%)", width=12), "right")
    marker = ColumnDataSource({"x": [selected[1]] if selected else [], "y": [selected[0]] if selected else []})
    fig.rect("x", "y", width=step_v, height=step_t, source=marker, fill_alpha=0, line_color="red", line_width=3, name="selected")
    return fig


def state_figure(stats, which: str = "h", title: str | None = None):
    """Distributions of h (or c) for each time step against the N(0, 1) noise density (Figs 3, 4, 7, 8).

    As in the paper, the N(0, 1) curve of the h plot covers only [-1, 1], where h lives.
    """
    values, grid = stats[which], stats[f"{which}_value"].values
    steps = stats.step.values
    fig = figure(title=title or f"{'output states h' if which == 'h' else 'internal states c'} per step (σval = {stats.attrs.get('sigma_val', float('nan')):g})",
                 height=330, width=560, x_axis_label=which, y_axis_label="density", tools="pan,box_zoom,reset,save")
    for colour, t in zip(_palette(len(steps)), steps):
        fig.line(grid, values.sel(step=t).values, color=colour, alpha=0.8, name=f"step{t}")
    fig.line(grid, stats[f"noise_{which}"].values, color="blue", line_dash="dashed", line_width=2, legend_label="N(0, 1)")
    if f"{which}_below" in stats:
        add_overflow_bins(fig, ColumnDataSource(overflow_data(stats, which)))
    colour_bar(fig, int(steps[0]), int(steps[-1]), "step", n=len(steps))
    legend_below(fig)
    return fig


def weight_figure(histograms: dict):
    """Weight histograms per σtrain with their expected power mean(w²) (paper Figs 5, 9).

    ``histograms``: {σtrain: :func:`dni.nn.probes.weight_histogram` DataArray}.
    """
    fig = figure(title="weight distributions per σtrain", height=330, width=800, x_axis_label="weight value",
                 y_axis_label="density", y_axis_type="log", tools="pan,box_zoom,reset,save")
    for colour, (st, hist) in zip(_palette(len(histograms)), sorted(histograms.items())):
        density = np.where(hist.values > 0, hist.values, np.nan)
        fig.line(hist.value.values, density, color=colour, line_width=2,
                 legend_label=f"σtrain {st:g}: mean(w²) = {hist.attrs['weight_power']:.4f}")
    fig.legend.label_text_font_size = "8pt"
    _legend_outside(fig)
    return fig


def wrap(*children):
    """Figures side by side that wrap onto the next line when the page is narrower than their sum
    (a CSS flex row with wrapping), instead of running off the right edge."""
    from bokeh.layouts import row

    return row(*children, styles={"flex-wrap": "wrap"})


def heading(text: str, level: int = 2):
    """A section heading inside a bokeh layout (``dni figures``' page)."""
    from html import escape

    from bokeh.models import Div

    return Div(text=f"<h{level}>{escape(text)}</h{level}>", sizing_mode="stretch_width")


def kinds_result_figures(ds):
    """``dni figures`` of a grid of noise kinds: per preset the kinds heatmap at low / middle / high matched
    strength and accuracy over each eval kind's strength per training kind (:mod:`dni_widgets.kinds`), then
    every (train kind, eval kind) pair's accuracy over its own σ values (Fig. 2a of that pair)."""
    from bokeh.layouts import column
    from dni_widgets.kinds import kinds_figures

    from dni.store.results import noise_pairs, pair_results

    parts = [heading("Noise kinds: train kind × eval kind at matched strength, accuracy per training kind")]
    for arch in ds.arch.values.tolist():
        parts.append(kinds_figures(ds, arch))
    parts.append(heading("Accuracy under noisy inference per noise pair (Fig. 2a of each pair)"))
    for t, e in noise_pairs(ds):
        view = pair_results(ds, t, e)
        if view.sizes["sigma_val"] < 2:
            continue  # a fixed kind: one point, in the heatmaps above
        figs = [accuracy_figure(view, arch) for arch in view.arch.values.tolist() if bool(view.accuracy.sel(arch=arch).notnull().any())]
        for fig in figs:
            fig.title.text = f"trained under {t}, evaluated under {e}: " + fig.title.text
        parts.append(wrap(*figs))
    return column(*parts)


def use_svg(layout):
    """Every plot of ``layout`` drawn by bokeh's SVG backend: its save tool then writes SVG, not PNG."""
    from bokeh.models import Plot

    for plot in layout.select({"type": Plot}):
        plot.output_backend = "svg"
    return layout


def result_figures(ds, checkpoints=(), data: str = "subset"):
    """A bokeh layout of every view a result file supports, in sections with headings: accuracy, error
    rate and heatmap per preset (Figs 2a, 2b, 10); with checkpoints (files, or folders laid out as
    ``dni sweep`` writes them) also the state distributions (Figs 3, 4, 7, 8, on ``data``'s test
    digits) and the weights (Figs 5, 9); the stroke lengths (Fig. 6) when a stroke preset is there."""
    from bokeh.layouts import column

    from dni.data import load_sequences
    from dni.nn.presets import get_preset
    from dni.store.results import NOISE_ATTRS

    if all(d in ds.dims for d in NOISE_ATTRS):
        return kinds_result_figures(ds)
    models = load_models(collect_checkpoints(ds, checkpoints))
    archs = ds.arch.values.tolist()
    parts = [heading("Accuracy and error rate under noisy inference (Figs 2a, 2b, 10)")]
    for arch in archs:
        parts.append(wrap(accuracy_figure(ds, arch), accuracy_figure(ds, arch, error_rate=True), heatmap_figure(ds, arch)))
    with_models = [a for a in archs if any(k[0] == a for k in models)]
    if with_models:
        parts.append(heading("State distributions per step (Figs 3, 4, 7, 8)"))
        for arch in with_models:
            grid = state_figures(models, arch, data=data)
            if grid is not None:
                parts += [heading(f"{arch}: (σtrain, σval) = " + ", ".join(f"({st:g}, {sv:g})" for st, sv in PAPER_STATE_PAIRS
                                                                             if (arch, st) in models), 3), grid]
        parts.append(heading("Weights (Figs 5, 9)"))
        parts += [weight_figures(models, arch) for arch in with_models]
    if any(get_preset(a).data == "strokes" for a in archs):
        parts.append(heading("Stroke sequence lengths (Fig. 6)"))
        parts.append(stroke_length_figure(load_sequences(data, "train", "strokes", progress=False).lengths.numpy()))
    return column(*parts)


def collect_checkpoints(ds, paths) -> dict:
    """{(arch, σtrain): checkpoint path} from checkpoint files and folders (a folder: the checkpoints of
    ``ds``'s models in it, named as ``dni sweep`` names them and accepted by the CRC the result records;
    an earlier folder wins)."""
    from pathlib import Path

    from dni.errors import InvalidArgumentError
    from dni.store.checkpoints import load_checkpoint
    from dni.store.layout import locate_checkpoints

    found, folders = {}, []
    for path in map(Path, paths):
        if path.is_dir():
            folders.append(path)
        elif path.is_file():
            m = load_checkpoint(path)
            found[(m.arch, float(m.sigma_train))] = m
        else:
            raise InvalidArgumentError(f"checkpoint {path} does not exist; pass checkpoint files or the folder holding them")
    for (arch, _, st, _), path in locate_checkpoints(ds, folders).items():
        found.setdefault((arch, st), path)
    return found


def save_html(layout, path, title: str = "dni results") -> None:
    """Standalone HTML with BokehJS inlined (works offline), written atomically."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from dni.util.io import atomic_path

    html = file_html(layout, INLINE, title)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")


PAPER_STATE_PAIRS = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0))
"""(σtrain, σval) of the three columns of Figs 3, 4, 7, 8: clean, conventional under noise, DNI under noise."""


def state_figures(models: dict, arch: str, pairs=PAPER_STATE_PAIRS, data: str = "subset", digits: int = 500, seed: int = 0):
    """h (and c) distributions per step for each (σtrain, σval) pair, one column per pair (Figs 3, 4, 7, 8);
    the columns wrap onto the next line on a narrow page."""
    import torch
    from bokeh.layouts import column

    from dni.data import load_sequences
    from dni.nn.presets import get_preset
    from dni.nn.probes import state_distributions

    x = load_sequences(data, "test", get_preset(arch).data, progress=False).x[:digits]
    columns = []
    for st, sv in pairs:
        if (arch, st) not in models:
            continue
        stats = state_distributions(models[(arch, st)].model, x, sv, generator=torch.Generator().manual_seed(seed))
        title = f"σtrain {st:g}, σval {sv:g}"
        figs = [state_figure(stats, "h", f"{arch} h: {title}")]
        if "c" in stats:
            figs.append(state_figure(stats, "c", f"{arch} c: {title}"))
        columns.append(figs)
    return wrap(*[column(*figs) for figs in columns]) if columns else None


def weight_figures(models: dict, arch: str):
    """Weight histograms of every σtrain model of ``arch`` with their weight power (Figs 5, 9)."""
    from dni.nn.probes import weight_histogram

    fig = weight_figure({st: weight_histogram(m.model) for (a, st), m in models.items() if a == arch})
    fig.title.text = f"{arch}: weight distributions per σtrain"
    return fig


class PngRenderer:
    """Renders bokeh layouts to cropped PNGs in one headless Chromium (through Playwright); use as a context manager.

    Chromium: ``chromium`` argument, ``$DNI_CHROMIUM``, or ``chromium`` on PATH (Debian: apt-get install chromium).
    """

    def __init__(self, chromium: str | None = None):
        import os
        import shutil
        from pathlib import Path

        from dni.errors import DniError

        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            raise DniError("PNG figures need Playwright: pip install -e '.[dev]'") from None
        self.executable = chromium or os.environ.get("DNI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
        if not Path(self.executable).exists():
            raise DniError(f"PNG figures need Chromium, not found at {self.executable}: apt-get install chromium, or set DNI_CHROMIUM")

    def __enter__(self):
        import tempfile

        from playwright.sync_api import sync_playwright

        self._tmp = tempfile.TemporaryDirectory()
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=self.executable, args=["--headless", "--no-sandbox", "--disable-gpu"])
        return self

    def __exit__(self, *exc):
        self._browser.close()
        self._playwright.stop()
        self._tmp.cleanup()

    def save_svg(self, layout, path) -> list:
        """Write every plot of ``layout`` as SVG (bokeh's SVG backend, exported in the browser as bokeh's
        ``export_svgs`` does): ``path`` for the first, ``<stem>-2.svg``, … for the others. Returns the paths."""
        from pathlib import Path

        from bokeh.embed import file_html
        from bokeh.io.export import _SVGS_SCRIPT
        from bokeh.models import GridPlot, Plot
        from bokeh.resources import INLINE

        from dni.errors import DniError
        from dni.util.io import atomic_path

        for item in [*layout.select({"type": Plot}), *layout.select({"type": GridPlot})]:
            item.toolbar_location = None
        use_svg(layout)
        page_file = Path(self._tmp.name) / "figure_svg.html"
        page_file.write_text(file_html(layout, INLINE, "dni figure"), encoding="utf-8")
        page = self._browser.new_page(viewport={"width": 1900, "height": 1000})
        try:
            page.goto(page_file.as_uri())
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle", timeout=60_000)
            svgs = page.evaluate("() => {" + _SVGS_SCRIPT + "}")
        finally:
            page.close()
        if not svgs:
            raise DniError(f"no SVG came out of the figure for {path}")
        path = Path(path)
        paths = [path] + [path.with_name(f"{path.stem}-{k}{path.suffix}") for k in range(2, len(svgs) + 1)]
        for target, svg in zip(paths, svgs):
            with atomic_path(target) as tmp:
                Path(tmp).write_text(svg, encoding="utf-8")
        return paths

    def save(self, layout, path) -> None:
        """Write ``layout`` as a PNG cropped to its content (white margin of 8 px), atomically."""
        import io
        from pathlib import Path

        from bokeh.embed import file_html
        from bokeh.models import GridPlot, Plot
        from bokeh.resources import INLINE
        from PIL import Image, ImageChops

        from dni.errors import DniError
        from dni.util.io import atomic_path

        for item in layout.select({"type": Plot}):  # a still image has no use for the tools
            item.toolbar_location = None
        for item in layout.select({"type": GridPlot}):
            item.toolbar_location = None
        page_file = Path(self._tmp.name) / "figure.html"
        page_file.write_text(file_html(layout, INLINE, "dni figure"), encoding="utf-8")
        page = self._browser.new_page(viewport={"width": 1900, "height": 1000})
        try:
            page.goto(page_file.as_uri())
            # bokeh's own export_png waits for the document's idle signal the same way
            page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle", timeout=60_000)
            shot = page.screenshot(full_page=True)
        finally:
            page.close()
        image = Image.open(io.BytesIO(shot)).convert("RGB")
        box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
        if box is None:
            raise DniError(f"the figure for {path} rendered blank; open it with `dni figures` to see the browser's view")
        pad = 8
        image = image.crop((max(box[0] - pad, 0), max(box[1] - pad, 0), min(box[2] + pad, image.width), min(box[3] + pad, image.height)))
        with atomic_path(path) as tmp_png:
            image.save(tmp_png, format="PNG", optimize=True)


def reproduction_figure(kind: str, ds, models: dict, arch: str):
    """The bokeh layout of one REPRODUCTION.md figure (kinds: :data:`dni.paper.reproduction.FIGURE_KINDS`)."""
    from bokeh.layouts import row

    from dni.errors import DniError

    if kind == "accuracy":
        return row(accuracy_figure(ds, arch), accuracy_figure(ds, arch, error_rate=True))
    if kind == "heatmap":
        return heatmap_figure(ds, arch)
    needed = [st for st in ((0.0, 1.0) if kind == "states" else ds.sigma_train.values.tolist()) if (arch, st) not in models]
    if needed:
        raise DniError(f"the {kind} figure of {arch} needs the checkpoints of σtrain {', '.join(f'{s:g}' for s in needed)}; "
                       "put them in the result's checkpoint folder")
    if kind == "weights":
        return weight_figures(models, arch)
    if kind == "states":
        return state_figures(models, arch)
    raise ValueError(kind)
