"""The explorer's widget logic without a browser: controls → bokeh data sources.

Each test builds its own explorer (no state carried from one test to the next), and computes what
the views should show from the raw data: the result set's accuracy array, the checkpoint's weights,
and the model's per-step states histogrammed with numpy.
"""

import numpy as np
import pytest
import torch

from dni.data import load_sequences
from dni.results import load_results
from dni.train import load_checkpoint
from dni_widgets.explorer import DEMO_DIR, Explorer

DIGITS = 64


@pytest.fixture()
def explorer():
    return Explorer.demo(digits=DIGITS)


def expected_state_densities(arch, sigma_train, sigma_val, seed, bins, digits=DIGITS):
    """Per-step densities of h on [-1, 1] and c on [-3, 3] (c clipped into the end bins), from the model's raw
    states (its trace) and np.histogram: what view (c) must plot."""
    model = load_checkpoint(DEMO_DIR / "checkpoints" / f"{arch}_sigma{sigma_train:.2f}_seed0.pt").model
    kind = "strokes" if arch == "lstm_stroke50" else "rows"
    x = load_sequences("subset", "test", kind, progress=False).x[:digits]
    _, trace = model.trace(x, noise=sigma_val, generator=torch.Generator().manual_seed(seed))
    out = {}
    for name, states, (lo, hi) in (("h", trace.h, (-1.0, 1.0)), ("c", trace.c, (-3.0, 3.0))):
        if states is None:
            continue
        edges = np.linspace(lo, hi, bins + 1)
        values = np.clip(states.numpy(), lo, hi)  # (N, T, H)
        out[name] = [np.histogram(values[:, t].ravel(), bins=edges, density=True)[0] for t in range(values.shape[1])]
        out[name + "_grid"] = (edges[:-1] + edges[1:]) / 2
    return out


def test_sigma_val_slider_recomputes_the_state_distributions(explorer):
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 0.0
    before = [list(y) for y in explorer.h_lines.data["ys"]]
    explorer.sigma_val.value = 1.0
    expected = expected_state_densities("lstm28", 0.0, 1.0, explorer.seed.value, explorer.bins)
    assert len(explorer.h_lines.data["ys"]) == len(explorer.c_lines.data["ys"]) == 28  # one curve per step
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected["h"], rtol=1e-12)
    np.testing.assert_allclose(explorer.c_lines.data["ys"], expected["c"], rtol=1e-12)
    np.testing.assert_allclose(explorer.h_lines.data["xs"][0], expected["h_grid"])
    np.testing.assert_allclose(explorer.c_lines.data["xs"][0], expected["c_grid"])
    assert not np.allclose(before, explorer.h_lines.data["ys"])
    assert "σtrain 0, σval 1, 64 digits" in explorer.fig_h.title.text
    # the N(0, 1) density the paper draws for comparison
    grid = np.asarray(explorer.noise_h.data["x"])
    np.testing.assert_allclose(explorer.noise_h.data["y"], np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi))
    print(f"view (c) update: {explorer.timings['states'] * 1000:.0f} ms")


def test_accuracy_view_highlights_the_selection_with_values_from_the_dataset(explorer):
    raw = load_results(DEMO_DIR / "demo.nc")  # the file, read again: not the explorer's copy
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 0.5
    explorer.sigma_val.value = 0.7
    acc = raw.accuracy.sel(arch="lstm28").values  # (σtrain, σval, seed)
    st, sv = raw.sigma_train.values, raw.sigma_val.values
    curves = explorer.curves.data
    assert [float(s) for s in curves["sigma_train"]] == st.tolist()
    for k in range(len(st)):
        np.testing.assert_allclose(curves["xs"][k], sv)
        np.testing.assert_allclose(curves["ys"][k], acc[k].mean(axis=-1) * 100)
    widths = dict(zip(curves["sigma_train"], curves["width"], strict=True))
    assert widths["0.5"] > widths["0"] and widths["0.5"] > widths["1"]
    expected = acc[st == 0.5, sv == 0.7].mean() * 100
    assert explorer.selected_point.data == {"x": [0.7], "y": [pytest.approx(expected)]}
    assert explorer.baseline.location == pytest.approx(acc[st == 0.0, sv == 0.0].mean() * 100)
    marker = explorer.heat_holder.children[0].select_one({"name": "selected"})
    assert marker.data_source.data == {"x": [0.7], "y": [0.5]}


def raw_weights(path):
    """All trainable values of a checkpoint, straight from its state dict."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return torch.cat([v.reshape(-1) for v in state.values()]).double().numpy()


def test_weights_view_follows_sigma_train(explorer):
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 1.0
    w = raw_weights(DEMO_DIR / "checkpoints" / "lstm28_sigma1.00_seed0.pt")
    assert len(w) == 81_674
    density, edges = np.histogram(np.clip(w, -3.5, 3.5), bins=140, range=(-3.5, 3.5), density=True)
    np.testing.assert_allclose(np.nan_to_num(explorer.weights.data["density"]), density, rtol=1e-6)
    np.testing.assert_allclose(explorer.weights.data["x"], (edges[:-1] + edges[1:]) / 2)
    assert f"mean(w²) = {(w ** 2).mean():.4f}" in explorer.fig_weights.title.text
    explorer.sigma_train.value = 0.0
    w0 = raw_weights(DEMO_DIR / "checkpoints" / "lstm28_sigma0.00_seed0.pt")
    assert f"mean(w²) = {(w0 ** 2).mean():.4f}" in explorer.fig_weights.title.text


def test_noise_seed_changes_the_draws(explorer):
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 0.5
    explorer.sigma_val.value = 1.0
    a = np.array(explorer.h_lines.data["ys"])
    explorer.seed.value = 3
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected_state_densities("lstm28", 0.5, 1.0, 3, explorer.bins)["h"], rtol=1e-12)
    assert not np.allclose(a, explorer.h_lines.data["ys"])


def test_stroke_preset_shows_the_pen_path(explorer):
    explorer.arch.value = "lstm_stroke50"
    explorer.digit.value = 3
    data = load_sequences("subset", "test", "strokes", progress=False)
    rows = data.strokes[3]
    xs = [v for v in explorer.pen.data["x"] if v == v]  # without the NaN breaks between strokes
    ys = [v for v in explorer.pen.data["y"] if v == v]
    assert len(xs) == len(rows)
    assert np.allclose(np.cumsum(rows[:, 0]) + 0.5, xs) and np.allclose(np.cumsum(rows[:, 1]) + 0.5, ys)
    assert len(explorer.jumps.data["x0"]) == int(rows[:-1, 2].sum())
    assert np.array_equal(explorer.digit_image.data["image"][0], data.images[3].numpy())
    assert len(explorer.h_lines.data["ys"]) == 50  # the stroke LSTM's 50 steps
    explorer.arch.value = "rnn28"  # no cell state: view (c) says so
    assert explorer.c_lines.data["xs"] == [] and "not an LSTM" in explorer.fig_c.title.text
    assert explorer.pen.data["x"] == []


def test_preset_switch_resets_the_slider_snaps_and_rebuilds_the_heatmap():
    """Presets with other σtrain sets: the σtrain slider offers the new preset's models, keeps the nearest
    value, the heatmap is rebuilt for the new preset, and the views are computed once, for the new choice."""
    raw = load_results(DEMO_DIR / "demo.nc")
    results = raw.copy(deep=True)
    results["accuracy"].loc[{"arch": "rnn28", "sigma_train": 1.0}] = np.nan  # rnn28: no σtrain 1.0 model
    explorer = Explorer(results, DEMO_DIR / "checkpoints", digits=DIGITS)
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 1.0
    explorer.sigma_val.value = 0.3
    calls = []
    original = explorer.state_stats
    explorer.state_stats = lambda: calls.append((explorer.arch.value, explorer.sigma_train.value)) or original()

    explorer.arch.value = "rnn28"
    assert list(explorer.sigma_train.options) == [0.0, 0.5]
    assert explorer.sigma_train.value == 0.5  # 1.0 is gone: the nearest of what rnn28 has
    assert calls == [("rnn28", 0.5)]  # once, for the new choice (not for rnn28 at σtrain 1.0)
    heat = explorer.heat_holder.children[0]
    assert "rnn28" in heat.title.text
    rect = next(r for r in heat.renderers if r.name != "selected")
    mean = results.accuracy.sel(arch="rnn28").values.mean(axis=-1) * 100  # (σtrain, σval), NaN where no model
    np.testing.assert_allclose(rect.data_source.data["accuracy"], mean.ravel())
    np.testing.assert_allclose(rect.data_source.data["sigma_train"], np.repeat(results.sigma_train.values, results.sizes["sigma_val"]))
    assert heat.select_one({"name": "selected"}).data_source.data == {"x": [0.3], "y": [0.5]}
    assert [float(s) for s in explorer.curves.data["sigma_train"]] == [0.0, 0.5]
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected_state_densities("rnn28", 0.5, 0.3, 0, explorer.bins)["h"], rtol=1e-12)
    assert explorer.c_lines.data["ys"] == []

    explorer.arch.value = "lstm28"  # back: all three models again, the value kept
    assert list(explorer.sigma_train.options) == [0.0, 0.5, 1.0] and explorer.sigma_train.value == 0.5
    assert calls == [("rnn28", 0.5), ("lstm28", 0.5)]
    assert "lstm28" in explorer.heat_holder.children[0].title.text


def test_widget_wraps_the_bokeh_layout(explorer):
    from jupyter_bokeh import BokehModel

    w = explorer.widget
    assert isinstance(w.children[1], BokehModel)
