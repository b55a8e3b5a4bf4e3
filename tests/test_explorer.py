"""The explorer's widget logic without a browser: controls → bokeh data sources."""

import numpy as np
import pytest
import torch

from dni.probes import state_distributions, weight_histogram
from dni.train import load_checkpoint
from dni_widgets.explorer import DEMO_DIR, Explorer


@pytest.fixture(scope="module")
def explorer():
    return Explorer.demo(digits=64)


def test_sigma_val_slider_recomputes_the_state_distributions(explorer):
    explorer.arch.value = "lstm28"
    explorer.sigma_train.value = 0.0
    before = [list(y) for y in explorer.h_lines.data["ys"]]
    explorer.sigma_val.value = 1.0
    model = load_checkpoint(DEMO_DIR / "checkpoints" / "lstm28_sigma0.00_seed0.pt").model
    x = explorer.test_data("lstm28").x[:64]
    expected = state_distributions(model, x, 1.0, generator=torch.Generator().manual_seed(explorer.seed.value), bins=explorer.bins)
    assert np.allclose(explorer.h_lines.data["ys"], expected.h.values)
    assert np.allclose(explorer.c_lines.data["ys"], expected.c.values)
    assert not np.allclose(before, explorer.h_lines.data["ys"])
    assert len(explorer.h_lines.data["xs"]) == 28  # one curve per step
    print(f"view (c) update: {explorer.timings['states'] * 1000:.0f} ms")


def test_accuracy_view_highlights_the_selection_with_values_from_the_dataset(explorer):
    ds = explorer.results
    explorer.sigma_train.value = 0.5
    explorer.sigma_val.value = 0.7
    widths = dict(zip(explorer.curves.data["sigma_train"], explorer.curves.data["width"]))
    assert widths["0.5"] > widths["0"] and widths["0.5"] > widths["1"]
    expected = ds.accuracy.sel(arch="lstm28", sigma_train=0.5, sigma_val=0.7).mean().item() * 100
    assert explorer.selected_point.data == {"x": [0.7], "y": [pytest.approx(expected)]}
    assert explorer.baseline.location == pytest.approx(ds.accuracy.sel(arch="lstm28", sigma_train=0.0, sigma_val=0.0).mean().item() * 100)
    marker = explorer.heat_holder.children[0].select_one({"name": "selected"})
    assert marker.data_source.data == {"x": [0.7], "y": [0.5]}


def test_weights_view_follows_sigma_train(explorer):
    explorer.sigma_train.value = 1.0
    hist = weight_histogram(load_checkpoint(DEMO_DIR / "checkpoints" / "lstm28_sigma1.00_seed0.pt").model)
    assert np.allclose(np.nan_to_num(explorer.weights.data["density"]), hist.values)
    assert f"{hist.attrs['weight_power']:.4f}" in explorer.fig_weights.title.text


def test_noise_seed_changes_the_draws(explorer):
    explorer.sigma_val.value = 1.0
    a = np.array(explorer.h_lines.data["ys"])
    explorer.seed.value = explorer.seed.value + 1
    assert not np.allclose(a, explorer.h_lines.data["ys"])


def test_stroke_preset_shows_the_pen_path(explorer):
    explorer.arch.value = "lstm_stroke50"
    explorer.digit.value = 3
    data = explorer.test_data("lstm_stroke50")
    rows = data.strokes[3]
    xs = [v for v in explorer.pen.data["x"] if v == v]  # without the NaN breaks between strokes
    assert len(xs) == len(rows)
    assert np.allclose(np.cumsum(rows[:, 0]) + 0.5, xs)
    assert len(explorer.jumps.data["x0"]) == int(rows[:-1, 2].sum())
    assert np.array_equal(explorer.digit_image.data["image"][0], data.images[3].numpy())
    explorer.arch.value = "rnn28"  # no cell state: view (c) says so
    assert explorer.c_lines.data["xs"] == [] and "not an LSTM" in explorer.fig_c.title.text
    assert explorer.pen.data["x"] == []


def test_widget_wraps_the_bokeh_layout(explorer):
    from jupyter_bokeh import BokehModel

    w = explorer.widget
    assert isinstance(w.children[1], BokehModel)
