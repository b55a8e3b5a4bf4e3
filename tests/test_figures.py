"""Probes (dni.nn.probes) and the static bokeh figures (dni_widgets.figures) against independent numbers."""

import json

import numpy as np
import pytest
import torch
from dni_widgets.figures import (
    accuracy_figure,
    accuracy_sources,
    heatmap_figure,
    state_figure,
    weight_figure,
)

from dni.data import load_sequences
from dni.evaluation.evaluate import evaluate
from dni.nn.models import build_model
from dni.nn.probes import state_distributions, weight_histogram, weight_power
from dni.store.checkpoints import TrainedModel
from dni.store.recipe import TrainConfig


@pytest.fixture(scope="module")
def small_results():
    data = load_sequences("subset", "test").take(slice(0, 200))
    models = []
    for s in (0.0, 0.5):
        torch.manual_seed(0)
        models.append(TrainedModel(build_model("rnn28", s), TrainConfig(preset="rnn28", sigma_train=s)))
    return evaluate(models, [0.0, 0.5, 1.0], 3, data=data, progress=False)


def test_accuracy_figure_plots_the_mean_over_repeats_and_the_baseline(small_results):
    ds = small_results
    fig = accuracy_figure(ds, "rnn28")
    lines = [r for r in fig.renderers if r.glyph.__class__.__name__ == "Line"]
    expected = ds.accuracy.sel(arch="rnn28", sigma_train=0.5).values.mean(axis=-1) * 100
    assert any(np.allclose(r.data_source.data.get("value", []), expected) for r in lines)
    baseline = [r for r in lines if r.glyph.line_color == "red"][0]
    assert np.allclose(baseline.data_source.data["y"], ds.accuracy.sel(arch="rnn28", sigma_train=0.0, sigma_val=0.0).mean().item() * 100)
    err = accuracy_sources(ds, "rnn28", error_rate=True)[0.5]["value"]
    assert np.allclose(err, 100 - expected)


def test_heatmap_marks_the_selected_cell(small_results):
    fig = heatmap_figure(small_results, "rnn28", selected=(0.5, 1.0))
    marker = fig.select_one({"name": "selected"})
    assert marker.data_source.data == {"x": [1.0], "y": [0.5]}


def test_state_distributions_are_densities_of_the_traced_states():
    torch.manual_seed(0)
    model = build_model("lstm28")
    x = load_sequences("subset", "test").x[:64]
    stats = state_distributions(model, x, 0.0, bins=40)
    h_width = stats.h_value.values[1] - stats.h_value.values[0]
    c_width = stats.c_value.values[1] - stats.c_value.values[0]
    assert np.allclose(stats.h.sum("h_value") * h_width, 1.0) and np.allclose(stats.c.sum("c_value") * c_width, 1.0)
    assert stats.h_value.min() > -1 and stats.h_value.max() < 1  # h is bounded by tanh: its own grid
    _, trace = model.trace(x)
    assert np.allclose(stats.h_std.values, trace.h.std(dim=(0, 2)).numpy(), rtol=1e-5)
    # an independent histogram of step 5's h
    counts, _ = np.histogram(trace.h[:, 4].numpy().ravel(), bins=np.linspace(-1, 1, 41))
    assert np.allclose(stats.h.sel(step=5).values, counts / counts.sum() / h_width)
    v = stats.c_value.values[20]
    assert stats.sizes["step"] == 28 and stats.noise_c.sel(c_value=v).item() == pytest.approx(np.exp(-v**2 / 2) / np.sqrt(2 * np.pi))
    noisy = state_distributions(model, x, 1.0, generator=torch.Generator().manual_seed(0))
    assert (noisy.h_std > stats.h_std).all()  # noise spreads the states (paper Fig. 3)
    fig = state_figure(noisy, "c")
    assert len(fig.renderers) == 30  # 28 steps + the N(0, 1) curve + the overflow bins
    key = fig.select_one({"name": "key: step"})
    assert (key.color_mapper.low, key.color_mapper.high, len(key.color_mapper.palette)) == (1, 28, 28)  # every step keyed
    _, noisy_trace = model.trace(x, noise=1.0, generator=torch.Generator().manual_seed(0))
    c = noisy_trace.c.numpy()  # (B, T, H)
    below, above = (c < -3).mean(axis=(0, 2)), (c > 3).mean(axis=(0, 2))
    np.testing.assert_allclose(noisy.c_below.values, below)
    np.testing.assert_allclose(noisy.c_above.values, above)
    width = noisy.c_value.values[1] - noisy.c_value.values[0]
    inside = ((c >= -3) & (c <= 3)).mean(axis=(0, 2))
    np.testing.assert_allclose(noisy.c.sum("c_value").values * width, inside, rtol=1e-6)  # densities relative to all states
    bars = fig.select_one({"name": "overflow"}).data_source.data
    np.testing.assert_allclose(bars["top"], [below.mean() / width, above.mean() / width])


def test_weight_power_and_histogram():
    model = build_model("rnn28")
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert weight_power(model) == pytest.approx((w**2).mean().item())
    hist = weight_histogram(model)
    assert hist.attrs["weight_power"] == pytest.approx(weight_power(model), rel=1e-5)
    assert (hist.sum() * (hist.value[1] - hist.value[0])).item() == pytest.approx(1.0, abs=1e-4)
    fig = weight_figure({0.0: hist})
    assert "mean(w²) = " in fig.legend.items[0].label.value


def test_figures_command_writes_offline_html(small_results, tmp_path, capsys):
    from dni.cli import main
    from dni.store.results import save_results

    save_results(small_results, tmp_path / "r.nc")
    out = tmp_path / "f.html"
    assert main(["figures", str(tmp_path / "r.nc"), "-o", str(out)]) == 0
    html = out.read_text()
    assert "rnn28: test accuracy" in html and "cdn.bokeh.org" not in html  # BokehJS inlined: works offline
    assert main(["figures", str(tmp_path / "missing.nc"), "-o", str(tmp_path / "g.html")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "g.html").exists()


@pytest.mark.parametrize("low, high, ticks", [
    (0.8, 90, [0.5, 1, 2, 5, 10, 20, 50, 100]),
    (1.3, 4.7, [1, 2, 5]),
    (2, 5, [2, 5]),
    (0.013, 0.02, [0.01, 0.02]),
    (12.5, 12.5, [10, 20]),
])
def test_log_ticks_are_1_2_5_and_cover_the_values(low, high, ticks):
    from dni_widgets.figures import log_ticks_125

    assert log_ticks_125(low, high) == ticks
    with pytest.raises(ValueError, match="0 < low"):
        log_ticks_125(0.0, 1.0)


def test_error_rate_view_labels_the_1_to_5_percent_band(small_results):
    from bokeh.models import FixedTicker
    from dni_widgets.figures import accuracy_figure

    ds = small_results.copy(deep=True)
    ds["accuracy"] = ds.accuracy * 0 + 0.985  # 1.5 % error everywhere ...
    ds["accuracy"].loc[{"sigma_val": ds.sigma_val.values[-1]}] = 0.6  # ... and 40 % at the largest σval
    fig = accuracy_figure(ds, ds.arch.values[0], error_rate=True)
    assert isinstance(fig.yaxis.ticker, FixedTicker)
    assert fig.yaxis.ticker.ticks == [1, 2, 5, 10, 20, 50]
    assert (fig.y_range.start, fig.y_range.end) == (1, 50)


def test_figures_command_takes_a_checkpoint_folder_and_adds_states_weights_strokes(tmp_path, capsys):
    """`dni figures --checkpoints FOLDER` (and by default <result>_checkpoints/): sections with headings,
    the state distributions of the paper's three (σtrain, σval) pairs, the weights, the stroke lengths."""
    import shutil

    from dni_widgets.loading import DEMO_DIR

    from dni.cli import main

    out = tmp_path / "f.html"
    assert main(["figures", str(DEMO_DIR / "demo.nc"), "--checkpoints", str(DEMO_DIR / "checkpoints"), "-o", str(out)]) == 0
    html = out.read_text()
    for text in ("Accuracy and error rate under noisy inference (Figs 2a, 2b, 10)", "State distributions per step (Figs 3, 4, 7, 8)",
                 "Weights (Figs 5, 9)", "Stroke sequence lengths (Fig. 6)", "lstm28 h: σtrain 1, σval 1", "lstm_stroke50 c: σtrain 0, σval 1",
                 "lstm28: weight distributions per σtrain"):
        assert json.dumps(text)[1:-1] in html, text  # bokeh's JSON writes σ as \\u03c3
    # the default: the result's own checkpoint folder, as dni sweep lays it out
    shutil.copy(DEMO_DIR / "demo.nc", tmp_path / "r.nc")
    shutil.copytree(DEMO_DIR / "checkpoints", tmp_path / "r_checkpoints")
    assert main(["figures", str(tmp_path / "r.nc"), "-o", str(tmp_path / "g.html")]) == 0
    assert json.dumps("rnn28: weight distributions per σtrain")[1:-1] in (tmp_path / "g.html").read_text()
    # a checkpoint path that does not exist: one line, nothing written
    assert main(["figures", str(tmp_path / "r.nc"), "--checkpoints", str(tmp_path / "nope"), "-o", str(tmp_path / "h.html")]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {tmp_path / 'nope'} does not exist; pass checkpoint files or the folder holding them" in err
    assert not (tmp_path / "h.html").exists()
