"""The explorer's widget logic without a browser: controls → bokeh data sources.

Each test builds its own explorer (no state carried from one test to the next), and computes what
the views should show from the raw data: the result set's accuracy array, the checkpoint's weights,
and the model's per-step states histogrammed with numpy.
"""

import numpy as np
import pytest
import torch
from dni_widgets.explorer import Explorer
from dni_widgets.loading import DEMO_DIR

from dni.data import load_sequences
from dni.store.checkpoints import load_checkpoint
from dni.store.results import load_results

DIGITS = 64


@pytest.fixture()
def explorer():
    return Explorer.demo(digits=DIGITS)


def expected_state_densities(arch, sigma_train, sigma_val, seed, bins, digits=DIGITS):
    """Per-step densities of h on [-1, 1] and c on [-3, 3] relative to all states of the step, and the
    shares of c below −3 and above 3 (the overflow bins), from the model's raw states (its trace) and
    np.histogram: what view (c) must plot."""
    model = load_checkpoint(DEMO_DIR / "checkpoints" / f"{arch}_sigma{sigma_train:.2f}_seed0.pt").model
    kind = "strokes" if arch == "lstm_stroke50" else "rows"
    x = load_sequences("subset", "test", kind, progress=False).x[:digits]
    _, trace = model.trace(x, noise=sigma_val, generator=torch.Generator().manual_seed(seed))
    out = {}
    for name, states, (lo, hi) in (("h", trace.h, (-1.0, 1.0)), ("c", trace.c, (-3.0, 3.0))):
        if states is None:
            continue
        edges = np.linspace(lo, hi, bins + 1)
        values = states.numpy()  # (N, T, H)
        per_step = [values[:, t].ravel() for t in range(values.shape[1])]
        out[name] = [np.histogram(v, bins=edges)[0] / v.size / (edges[1] - edges[0]) for v in per_step]
        out[name + "_grid"] = (edges[:-1] + edges[1:]) / 2
        out[name + "_below"] = np.array([(v < lo).mean() for v in per_step])
        out[name + "_above"] = np.array([(v > hi).mean() for v in per_step])
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
    assert "σtrain 0, σval 1" in explorer.fig_h.title.text and "σtrain 0, σval 1" in explorer.status.value
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


def test_widget_puts_the_controls_above_the_views_they_drive(explorer):
    from jupyter_bokeh import BokehModel

    w = explorer.widget
    selection, status, accuracy, state_controls, states, share, reopen = w.children
    assert explorer.compare in share.children and explorer.save_as in share.children and reopen is explorer.reopen
    assert isinstance(accuracy, BokehModel) and isinstance(states, BokehModel)
    assert accuracy._model is explorer.accuracy_views and states._model is explorer.state_views
    assert explorer.sigma_val in selection.children and explorer.sigma_val in state_controls.children  # one control, shown twice
    assert explorer.seed in state_controls.children and explorer.digit in state_controls.children
    assert explorer.train_noise not in selection.children  # one noise pair: no noise dropdowns
    assert status is explorer.status and "ms" not in status.value


def test_keys_overflow_bins_and_status_say_what_is_shown(explorer):
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 0.0
    explorer.sigma_val.value = 1.0
    raw = load_results(DEMO_DIR / "demo.nc")
    assert (explorer.sigma_key.low, explorer.sigma_key.high) == (raw.sigma_train.values.min(), raw.sigma_train.values.max())
    assert explorer.sigma_key.palette == explorer.curves.data["color"]  # the key's colours are the curves' colours
    for key in explorer.step_keys:
        assert (key.low, key.high) == (1, 28) and key.palette == explorer.h_lines.data["color"]
    expected = expected_state_densities("lstm28", 0.0, 1.0, 0, explorer.bins)
    width = expected["c_grid"][1] - expected["c_grid"][0]
    shares = [expected["c_below"].mean(), expected["c_above"].mean()]
    assert sum(shares) > 0.001  # σtrain 0 at σval 1: some c beyond ±3 (else this test checks nothing)
    np.testing.assert_allclose(explorer.c_overflow.data["top"], np.array(shares) / width, rtol=1e-12)
    np.testing.assert_allclose(explorer.c_overflow.data["x"], [-3 - width / 2, 3 + width / 2])
    assert f"{sum(shares) * 100:.1f} % outside" in explorer.fig_c.title.text
    acc = raw.accuracy.sel(arch="lstm28", sigma_train=0.0, sigma_val=1.0).mean().item() * 100
    assert f"lstm28 σtrain 0, σval 1</b>: {acc:.1f} % over 5 evaluation repeats" in explorer.status.value
    assert "noise draw 0 on 64 test digits (subset)" in explorer.status.value


def test_clicking_a_heatmap_cell_or_a_curve_selects_it(explorer):
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value, explorer.sigma_val.value = 1.0, 0.2
    cells = explorer.heat_holder.children[0].select_one({"name": "cells"}).data_source
    k = next(i for i, (t, v) in enumerate(zip(cells.data["sigma_train"], cells.data["sigma_val"])) if t == 0.5 and np.isclose(v, 0.8))
    before = explorer.updates
    cells.selected.indices = [k]  # what a tap in the browser does to the source
    assert (explorer.sigma_train.value, explorer.sigma_val.value) == (0.5, 0.8)
    assert explorer.updates == before + 1  # both sliders moved, the views recomputed once
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected_state_densities("lstm28", 0.5, 0.8, 0, explorer.bins)["h"], rtol=1e-12)
    assert explorer.heat_holder.children[0].select_one({"name": "selected"}).data_source.data == {"x": [0.8], "y": [0.5]}
    explorer.curves.selected.indices = [explorer.curves.data["sigma_train"].index("0")]
    assert explorer.sigma_train.value == 0.0 and explorer.sigma_val.value == 0.8


def test_a_burst_of_changes_recomputes_once_for_the_last_value(explorer):
    """In a kernel (an event loop runs), eight quick σtrain changes mark the views stale at once and
    recompute them once, after the debounce, for the final value."""
    import asyncio

    explorer.arch.value = "lstm28"
    explorer.sigma_val.value = 0.6
    calls = []
    original = explorer.state_stats
    explorer.state_stats = lambda: calls.append(explorer.sigma_train.value) or original()

    async def presses():
        for value in [0.0, 0.5, 1.0, 0.5, 0.0, 0.5, 1.0, 0.5]:
            explorer.sigma_train.value = value
            await asyncio.sleep(0.01)
        stale = explorer.status.value
        await asyncio.sleep(explorer.debounce + 0.5)
        return stale

    before = explorer.updates
    stale = asyncio.run(presses())
    assert "updating to lstm28 σtrain 0.5, σval 0.6" in stale
    assert explorer.updates == before + 1 and calls == [0.5]
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected_state_densities("lstm28", 0.5, 0.6, 0, explorer.bins)["h"], rtol=1e-12)
    assert "updating" not in explorer.status.value


def test_noise_pairs_get_dropdowns_and_the_views_follow_them():
    """A result of two noise pairs (same models, evaluated under additive and weight_read noise): the
    eval-noise dropdown switches the accuracy views to that pair's numbers and the state view to that noise."""
    from dni.nn.probes import state_distributions
    from dni.noise.session import noise_for
    from dni.store.results import merge_results

    demo = load_results(DEMO_DIR / "demo.nc")
    other = demo.copy(deep=True).assign_attrs(eval_noise="weight_read")
    other["accuracy"] = other.accuracy * 0.9
    merged = merge_results([demo, other])
    explorer = Explorer(merged, DEMO_DIR / "checkpoints", digits=DIGITS)
    assert not explorer.eval_noise.disabled and list(explorer.eval_noise.options) == ["additive", "weight_read"]
    assert explorer.train_noise in explorer.widget.children[0].children
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value, explorer.sigma_val.value = 0.5, 0.7
    explorer.eval_noise.value = "weight_read"
    acc = other.accuracy.sel(arch="lstm28").values.mean(axis=-1) * 100
    np.testing.assert_allclose(explorer.curves.data["ys"], acc, rtol=1e-12)
    model = load_checkpoint(DEMO_DIR / "checkpoints" / "lstm28_sigma0.50_seed0.pt").model
    x = load_sequences("subset", "test", progress=False).x[:DIGITS]
    expected = state_distributions(model, x, noise_for("weight_read", 0.7), generator=torch.Generator().manual_seed(0), bins=explorer.bins)
    np.testing.assert_allclose(explorer.h_lines.data["ys"], expected.h.values, rtol=1e-12)
    additive = expected_state_densities("lstm28", 0.5, 0.7, 0, explorer.bins)["h"]
    assert not np.allclose(explorer.h_lines.data["ys"], additive)  # another noise, other states
    assert "evaluated under weight_read" in explorer.status.value
