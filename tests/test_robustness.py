"""dni.robustness: any noisified model over any DataLoader, in dni evaluate's schema (issue 23)."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import dni
from dni.data import load_sequences
from dni.errors import InvalidArgumentError, NotNoisifiedError
from dni.evaluation.evaluate import DIGITS_PER_PASS, evaluate
from dni.nn.models import build_model
from dni.store.checkpoints import TrainedModel
from dni.store.recipe import TrainConfig
from dni.store.results import accuracy_table, load_results, merge_results, save_results

TORCH = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class LastStep(nn.Module):
    """A user's classifier: torch recurrent layer (batch_first) → last output → Linear."""

    def __init__(self, kind, input_size, hidden_size, classes=10):
        super().__init__()
        self.rnn = TORCH[kind](input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, classes)

    def forward(self, x):  # x (B, T, I) → logits (B, C)
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


@torch.no_grad()
def as_torch(preset_model, kind):
    """The torch twin of a preset model: dni's one bias per unit as b_ih, b_hh zero (GRU: b_hn in b_hh)."""
    cell, H = preset_model.cell, preset_model.cell.hidden_size
    user = LastStep(kind, cell.input_size, H)
    user.rnn.weight_ih_l0.copy_(cell.weight_ih)
    user.rnn.weight_hh_l0.copy_(cell.weight_hh)
    user.rnn.bias_ih_l0.copy_(cell.bias)
    user.rnn.bias_hh_l0.zero_()
    if kind == "gru":
        user.rnn.bias_hh_l0[2 * H :] = cell.bias_hn
    user.fc.load_state_dict(preset_model.fc.state_dict())
    return user


@pytest.fixture(scope="module")
def digits():
    return load_sequences("subset", "test").take(slice(0, 600))


def loader_of(data, batch_size=DIGITS_PER_PASS):
    return DataLoader(TensorDataset(data.x, data.y), batch_size=batch_size)


@pytest.mark.parametrize("preset,kind,noise", [("lstm28", "lstm", "additive"), ("gru28", "gru", "additive"),
                                               ("rnn28", "rnn", "programming+adc(bits=6,bound=8)")])
def test_robustness_of_a_noisified_preset_equals_dni_evaluate(digits, preset, kind, noise):
    torch.manual_seed(11)
    trained = TrainedModel(build_model(preset, 0.5), TrainConfig(preset=preset, sigma_train=0.5))
    want = evaluate([trained], [0.0, 0.6], repeats=3, data=digits, seed=4, progress=False, draws="per-point", eval_noise=noise)
    model = dni.noisify(as_torch(trained.model, kind), sigma=0.5)
    got = dni.robustness(model, loader_of(digits), noise, [0.0, 0.6], repeats=3, arch=preset, seed=4, progress=False)
    assert len(set(got.accuracy.sel(sigma_val=0.6).values.ravel().tolist())) > 1  # the repeats' draws differ
    np.testing.assert_array_equal(got.accuracy.values, want.accuracy.values)  # the same draws meet the same digits
    np.testing.assert_allclose(got.loss.values, want.loss.values, rtol=1e-6)
    assert got.accuracy.dims == want.accuracy.dims and got.attrs["eval_noise"] == want.attrs["eval_noise"]
    assert got.attrs["draws"] == "per-point" and got.attrs["test_size"] == len(digits)


class TimeMajorHead(nn.Module):
    """A Linear applied to every step, time-major: its products do not see the batch in dim 0."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(28, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):  # x (B, T, I)
        out, _ = self.rnn(x.transpose(0, 1))  # (T, B, H)
        return self.fc(out)[-1]  # (B, C)


class RowConv(nn.Module):
    """A convolution over the rows (time) of a digit, then a Linear on the flattened features."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(28, 8, 3, stride=2), nn.Linear(8 * 13, 10)

    def forward(self, x):  # x (B, T, I)
        return self.fc(torch.tanh(self.conv(x.transpose(1, 2))).flatten(1))


def test_batched_repeats_equal_looped_ones_and_an_unbatchable_model_falls_back(digits):
    torch.manual_seed(12)
    data = digits.take(slice(0, 100))
    for model, batchable in ((LastStep("lstm", 28, 16), True), (RowConv(), True), (TimeMajorHead(), False)):
        noisy = dni.noisify(model)
        for noise in ("weight_read", "programming"):  # programming: one chip per repeat, batched or not
            runs = [dni.robustness(noisy, loader_of(data, 40), noise, [0.3], repeats=3, progress=False, batch_repeats=b)
                    for b in (True if batchable else None, False)]  # True: batched or an error
            np.testing.assert_array_equal(runs[0].loss.values, runs[1].loss.values)
            assert len(set(runs[0].loss.values.ravel().tolist())) == 3
        if not batchable:
            with pytest.raises(InvalidArgumentError, match="cannot be batched"):
                dni.robustness(noisy, loader_of(data, 40), "additive", [0.3], repeats=2, progress=False, batch_repeats=True)


def test_the_result_works_with_table_merge_figures_and_the_cli(digits, tmp_path, capsys):
    from dni_widgets.figures import accuracy_figure

    from dni.cli import main

    torch.manual_seed(13)
    data = digits.take(slice(0, 120))
    conventional, dnied = LastStep("rnn", 28, 16), LastStep("rnn", 28, 16)
    parts = [dni.robustness(dni.noisify(m, sigma=s), loader_of(data, 60), "additive", [0.0, 0.5], 2, arch="mine", progress=False)
             for m, s in ((conventional, 0.0), (dnied, 0.5))]
    merged = merge_results(parts)
    assert merged.sigma_train.values.tolist() == [0.0, 0.5] and merged.attrs["metric"] == "accuracy"
    assert "mine: test accuracy (%), mean of 2 repeat(s) on custom" in accuracy_table(merged)
    path = save_results(merged, tmp_path / "mine.nc")
    xr.testing.assert_identical(load_results(path).accuracy, merged.accuracy)
    assert main(["table", str(path)]) == 0
    assert "σtrain\\σval" in capsys.readouterr().out
    fig = accuracy_figure(merged, "mine")
    assert fig.renderers
    from dni_widgets.explorer import Explorer

    explorer = Explorer(merged, {})  # no checkpoints, not a preset: the accuracy views only
    np.testing.assert_allclose(explorer.curves.data["ys"][1], merged.accuracy.sel(arch="mine", sigma_train=0.5).mean("seed") * 100)
    assert "no checkpoint for mine" in explorer.fig_weights.title.text and "unknown preset 'mine'" in explorer.fig_digit.title.text


class Adder(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru, self.out = nn.GRU(2, 8, batch_first=True), nn.Linear(8, 1)

    def forward(self, x):
        return self.out(self.gru(x)[0][:, -1]).squeeze(-1)  # (B,)


def test_mse_and_a_user_metric():
    from dni.experiments.examples import adding_problem

    torch.manual_seed(14)
    x, y = adding_problem(64, 10, seed=1)
    model = dni.noisify(Adder())
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    ds = dni.robustness(model, loader, "additive", [0.0, 1.0], 2, metric="mse", progress=False)
    with torch.no_grad():
        clean = float(((model.eval()(x) - y) ** 2).mean())
    np.testing.assert_allclose(ds.accuracy.sel(sigma_val=0.0).values, clean, rtol=1e-6)
    assert (ds.accuracy.sel(sigma_val=1.0) > clean).all()  # noise hurts
    assert ds.attrs["metric"] == "mse" and "test mse" in accuracy_table(ds)
    mae = dni.robustness(model, loader, "additive", [0.0], 1, metric=lambda out, t: (out - t).abs(), progress=False)
    with torch.no_grad():
        np.testing.assert_allclose(mae.accuracy.item(), float((model(x) - y).abs().mean()), rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="cannot merge results of different metrics"):
        merge_results([ds, dni.robustness(model, loader, "additive", [0.0], 2, progress=False, metric=lambda o, t: o * 0)])


def test_bad_input_is_one_line():
    with pytest.raises(NotNoisifiedError, match="no noisified layer"):
        dni.robustness(nn.GRU(2, 3), [(torch.zeros(1, 2, 2), torch.zeros(1))], progress=False)
    model = dni.noisify(Adder())
    with pytest.raises(InvalidArgumentError, match=r"loader batch 0 is a list of 3, not an \(x, y\) pair") as err:
        dni.robustness(model, [[torch.zeros(2, 3, 2), torch.zeros(2), torch.zeros(2)]], progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(InvalidArgumentError, match="loader batch 0 is a Tensor"):
        dni.robustness(model, [torch.zeros(2, 3, 2)], progress=False)
    with pytest.raises(InvalidArgumentError, match="unknown metric 'f1'"):
        dni.robustness(model, [(torch.zeros(2, 3, 2), torch.zeros(2))], metric="f1", progress=False)


@pytest.mark.parametrize("metric, shape", [(lambda out, t: out.sum(), r"\(\)"),  # a scalar (a batch mean or sum?)
                                           (lambda out, t: torch.ones(len(t), 10), r"\(4, 10\)"),  # logits, not per-example values
                                           (lambda out, t: out[:-1], r"\(3,\)")])  # a wrong length
def test_a_metric_that_does_not_return_one_value_per_example_is_refused(metric, shape):
    """Issue 36.4: only (B,) per-example values are stored; anything else is one line, not a wrong number."""
    model = dni.noisify(Adder())
    with pytest.raises(InvalidArgumentError, match=rf"the metric returned shape {shape} for a batch of 4 examples; it must return one value per example") as err:
        dni.robustness(model, [(torch.zeros(4, 3, 2), torch.zeros(4))], sigma_val=[0.0], metric=metric, progress=False)
    assert "\n" not in str(err.value)
