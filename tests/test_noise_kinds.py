"""The noise kinds of dni.noise.kinds (issue 19): each kind's equation checked against an
independent computation, off = the noiseless network, statistics with tolerances from the sample
size, quantisation on hand-made inputs, straight-through gradients, and bad specs as one line."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dni.nn.models import build_model, load_torch_recurrent
from dni.noise.kinds import KINDS
from dni.noise.session import NoiseSession, noise_for
from dni.noise.spec import parse_noise

Z = 5.0  # standard errors a statistic may be off by


def session(text, sigma=0.0, seed=0, repeats=1):
    gens = [torch.Generator().manual_seed(seed + r) for r in range(repeats)] if repeats > 1 else torch.Generator().manual_seed(seed)
    return NoiseSession(parse_noise(text).at(sigma), gens, repeats)


def within(sample_std, expected_std, n):
    """|s − σ| < Z·σ/√(2n): the standard error of a sample std of n normal values."""
    assert abs(sample_std - expected_std) < Z * expected_std / math.sqrt(2 * n), (sample_std, expected_std, n)


@pytest.fixture(scope="module")
def product():
    torch.manual_seed(1)
    W = torch.randn(64, 40, dtype=torch.float64) * 0.3  # (N, M)
    b = torch.randn(64, dtype=torch.float64)
    x = torch.randn(500, 40, dtype=torch.float64)  # (rows, M)
    x[:250] *= 10  # two input ranges: relative kinds must scale with them
    return W, b, x


# --- off is exactly the noiseless network ---------------------------------------------------------

@pytest.mark.parametrize("text", ["additive", "output_relative", "weight_read", "programming",
                                  "programming+weight_read+output_relative"])
def test_strength_zero_is_the_noiseless_lstm_through_the_general_path(text):
    """At σ = 0 a spec draws nothing and the general path (stepping the readable cell) is nn.LSTM."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(28, 128, batch_first=True).double()
    model = build_model("lstm28").double()
    load_torch_recurrent(model.cell, lstm)
    x = torch.rand(6, 28, 28, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    noise = NoiseSession(parse_noise(text).at(0.0), gen)
    assert noise.is_noiseless
    with torch.no_grad():
        out, _ = lstm(x)
        logits = model(x, noise=noise, generator=gen)
        expected = F.linear(out[:, -1], model.fc.weight, model.fc.bias)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-12)
    assert torch.equal(gen.get_state(), state)  # not one number drawn


def test_noise_for_the_paper_spec_is_the_fast_path_and_others_at_zero_are_noiseless():
    from dni.noise.base import AdditiveGaussian

    assert noise_for("additive", 0.3) == AdditiveGaussian(0.3)
    assert noise_for("weight_read", 0.0) == AdditiveGaussian(0.0)
    assert noise_for("weight_read", 0.2).label == "weight_read(sigma=0.2)"


def test_fine_quantisers_are_nearly_the_noiseless_network(product):
    W, b, x = product
    y = F.linear(x, W, b)
    fine = session("dac(bits=24,bound=100)+adc(bits=24,bound=1000)").product("p", W, b, x)
    assert (fine - y).abs().max().item() < 1000 / (2 ** 23 - 1) + 40 * 0.3 * 4 * 100 / (2 ** 23 - 1)


# --- statistics of each kind -------------------------------------------------------------------------

def test_additive_adds_sigma_times_unit_noise(product):
    W, b, x = product
    z = session("additive", 0.4).product("p", W, b, x) - F.linear(x, W, b)
    within(z.std().item(), 0.4, z.numel())
    assert abs(z.mean().item()) < Z * 0.4 / math.sqrt(z.numel())


def test_output_relative_scales_with_the_largest_input(product):
    W, b, x = product
    z = session("output_relative", 0.1).product("p", W, b, x) - F.linear(x, W, b)  # (rows, N)
    scale = x.abs().amax(1, keepdim=True)  # max_j |x_j| per row
    unit = z / scale
    within(unit.std().item(), 0.1, unit.numel())
    big, small = z[:250].std().item(), z[250:].std().item()  # rows scaled ×10 get ×10 the noise
    assert 8 < big / small < 12.5


def test_weight_read_equals_fresh_weight_noise_in_distribution(product):
    """Sampled as σ·max|W|·‖x‖·ε; compared with explicit (W + σ·max|W|·E)·x over many E."""
    W, b, x = product
    sigma, row = 0.05, x[:8]  # 8 input vectors
    n = 3000
    gen = torch.Generator().manual_seed(3)
    E = torch.randn(n, *W.shape, generator=gen, dtype=torch.float64)
    explicit = torch.einsum("snm,rm->srn", W + sigma * W.abs().max() * E, row) + b  # (n, 8, N)
    noise = session("weight_read", sigma, seed=4)
    sampled = torch.stack([noise.product("p", W, b, row) for _ in range(n)])  # (n, 8, N)
    expected = sigma * W.abs().max() * row.norm(dim=1)  # (8,) std per output element
    for r in range(8):
        within((explicit[:, r] - F.linear(row[r], W, b)).std().item(), expected[r].item(), n * W.shape[0])
        within((sampled[:, r] - F.linear(row[r], W, b)).std().item(), expected[r].item(), n * W.shape[0])


def test_programming_noise_is_fixed_per_chip_and_independent_between_chips(product):
    W, b, x = product
    noise = session("programming", 0.2, repeats=3)
    rows = x[:20].repeat(3, 1)  # 3 repeats (chips) of the same 20 inputs
    first = noise.product("p", W, b, rows).view(3, 20, -1)
    again = noise.product("p", W, b, rows).view(3, 20, -1)
    assert torch.equal(first, again)  # the same chip for every digit of a repeat
    chips = noise.chip("p", W) - W  # (3, N, M)
    for c in chips:
        within(c.std().item(), 0.2 * W.abs().max().item(), c.numel())
    corr = np.corrcoef(chips.reshape(3, -1).numpy())
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < Z / math.sqrt(W.numel())
    torch.testing.assert_close(first[1], F.linear(x[:20], W + chips[1], b))
    # a new session (a training batch) draws a new chip
    other = session("programming", 0.2, seed=10, repeats=3).chip("p", W) - W
    assert not torch.equal(other, chips)


def test_programming_repeats_do_not_depend_on_how_many_run_together():
    model = build_model("rnn28").eval()
    x = torch.rand(5, 28, 28)
    spec = parse_noise("programming+weight_read").at(0.1)
    gens = lambda: [torch.Generator().manual_seed(100 + r) for r in range(3)]  # noqa: E731
    with torch.no_grad():
        together = model(x, noise=NoiseSession(spec, gens(), 3), repeats=3).view(3, 5, -1)
        alone = model(x, noise=NoiseSession(spec, [gens()[1]], 1), generator=None)
    torch.testing.assert_close(together[1], alone)


# --- quantisation ------------------------------------------------------------------------------------

def test_quantisation_levels_and_clipping_exact():
    adc = parse_noise("adc(bits=3,bound=3)").kinds[0]  # Δ = 3 / (2² − 1) = 1: levels −3 … 3
    v = torch.tensor([-5.0, -2.6, -0.4, 0.5, 0.51, 1.5, 2.49, 7.0])
    assert adc.quantise(v).tolist() == [-3.0, -3.0, -0.0, 0.0, 1.0, 2.0, 2.0, 3.0]  # round half to even
    dac = parse_noise("dac(bits=8,bound=1)").kinds[0]  # Δ = 1/127
    u = torch.linspace(-2, 2, 1001)
    q = dac.quantise(u)
    assert len(torch.unique(q)) == 255 and q.max() == 1 and q.min() == -1
    assert torch.allclose(q * 127, torch.round(q * 127), atol=1e-4)  # on the grid


def test_dac_quantises_the_inputs_and_adc_the_outputs(product):
    W, b, x = product
    step_in, step_out = 2.0 / 31, 20.0 / 127
    y = session("dac(bits=6,bound=2)+adc(bits=8,bound=20)").product("p", W, b, x)
    xq = torch.round(x.clamp(-2, 2) / step_in) * step_in
    expected = torch.round(F.linear(xq, W, b).clamp(-20, 20) / step_out) * step_out
    torch.testing.assert_close(y, expected)


def test_straight_through_gradient_is_the_identity_inside_the_bound():
    adc = parse_noise("adc(bits=4,bound=2)").kinds[0]
    v = torch.tensor([-3.0, -1.9, -0.3, 0.0, 0.7, 1.99, 2.5], requires_grad=True)
    adc.quantise(v).sum().backward()
    assert v.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_composition_follows_the_tile_order(product):
    """programming → weight_read → dac → product → additive → adc, drawn in that order."""
    W, b, x = product
    text = "adc(bits=10,bound=30)+additive+dac(bits=8,bound=25)+weight_read+programming"
    spec = parse_noise(text).at(0.1)
    assert spec.label == "programming(sigma=0.1)+weight_read(sigma=0.1)+dac(bits=8,bound=25)+additive(sigma=0.1)+adc(bits=10,bound=30)"
    y = NoiseSession(spec, torch.Generator().manual_seed(7)).product("p", W, b, x)
    g = torch.Generator().manual_seed(7)
    chip = W + 0.1 * W.abs().max() * torch.randn(W.shape, generator=g, dtype=W.dtype)
    xq = torch.round(x.clamp(-25, 25) / (25 / 127)) * (25 / 127)
    pre = F.linear(xq, chip, b)
    pre = pre + 0.1 * W.abs().max() * xq.norm(dim=1, keepdim=True) * torch.randn(pre.shape, generator=g, dtype=W.dtype)
    pre = pre + 0.1 * torch.randn(pre.shape, generator=g, dtype=W.dtype)
    expected = torch.round(pre.clamp(-30, 30) / (30 / 511)) * (30 / 511)
    torch.testing.assert_close(y, expected)


# --- every path: training, evaluation, the result ---------------------------------------------------

def test_training_under_a_kind_back_propagates_and_is_recorded(tmp_path):
    from dni.data import load_sequences
    from dni.store.checkpoints import load_checkpoint, save_checkpoint
    from dni.store.layout import checkpoint_path
    from dni.store.recipe import TrainConfig
    from dni.training.train import train

    data = load_sequences("subset", "train").take(slice(0, 256))
    trained = train(preset="rnn28", sigma_train=0.2, train_noise="output_relative", epochs=1, progress=False, train_data=data)
    assert trained.config.train_noise == "output_relative"
    path = checkpoint_path(tmp_path, trained.config)
    assert path.name == "rnn28_output_relative_sigma0.20_seed0.pt"
    save_checkpoint(trained, path)
    loaded = load_checkpoint(path)
    assert loaded.config == trained.config and loaded.model.noise.label == "output_relative(sigma=0.2)"
    # a checkpoint saved before noise specs existed (no train_noise) is the paper's additive noise
    assert TrainConfig.from_dict({"preset": "rnn28"}).train_noise == "additive"


def test_evaluation_under_a_kind_records_it_and_keeps_the_paper_seeds():
    import zlib

    from conftest import REPO

    from dni.evaluation.evaluate import evaluate, repeat_seed
    from dni.store.checkpoints import load_checkpoint

    old = np.random.SeedSequence([0, zlib.crc32(b"rnn28"), 500000, 300000, 2]).generate_state(1, np.uint64)[0] >> 1
    assert repeat_seed(0, "rnn28", 0.5, 0.3, 2) == int(old)  # the committed results' seeds are unchanged
    assert repeat_seed(0, "rnn28", 0.5, 0.3, 2, eval_noise="weight_read") != int(old)
    model = load_checkpoint(REPO / "widgets" / "demo" / "checkpoints" / "rnn28_sigma0.50_seed0.pt")
    ds = evaluate(model, [0.0, 0.3], 3, eval_noise="programming", progress=False)
    assert ds.attrs["eval_noise"] == "programming" and ds.attrs["train_noise"] == "additive"
    acc = ds.accuracy.sel(arch="rnn28", sigma_train=0.5)
    assert len(set(acc.sel(sigma_val=0.3).values.tolist())) == 3  # three chips, three accuracies
    assert acc.sel(sigma_val=0.3).mean() < acc.sel(sigma_val=0.0).mean()
    quantised = evaluate(model, [0.0], 2, eval_noise="adc(bits=3,bound=1)", progress=False)
    assert quantised.accuracy.sel(sigma_val=0.0).values[0, 0].tolist()[0] == quantised.accuracy.sel(sigma_val=0.0).values[0, 0].tolist()[1]


def test_results_of_different_noise_merge_into_noise_dims():
    """Two one-pair files of different eval noise never mix silently: the merge labels each point."""
    import xarray as xr

    from dni.store.results import merge_results, select_noise

    dims = ("arch", "sigma_train", "sigma_val", "seed")
    a = xr.Dataset({"accuracy": (dims, np.full((1, 1, 1, 1), 0.9))},
                   coords={"arch": ["rnn28"], "sigma_train": [0.0], "sigma_val": [0.5], "seed": [0]},
                   attrs={"dataset": "subset", "eval_seed": 0})
    b = (a * 0 + 0.4).assign_attrs(a.attrs, eval_noise="weight_read")
    merged = merge_results([a, b])
    assert merged.accuracy.dims == ("train_noise", "eval_noise", *dims)
    assert merged.accuracy.sel(train_noise="additive", eval_noise="additive").item() == 0.9
    assert merged.accuracy.sel(train_noise="additive", eval_noise="weight_read").item() == 0.4
    assert select_noise(merged, "additive", "weight_read").attrs["eval_noise"] == "weight_read"


# --- bad specs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("foo", f"unknown noise kind 'foo'; choose one of: {', '.join(KINDS)}"),
    ("weight_read(sigma=-0.1)", "weight_read sigma must be >= 0"),
    ("additive(sigma=nan)", "is not a number"),
    ("adc(bits=0,bound=1)", "adc bits must be an integer from 2 to 24"),
    ("dac(bits=25,bound=1)", "dac bits must be an integer from 2 to 24"),
    ("adc(bits=8,bound=0)", "adc bound must be a number > 0"),
    ("adc", "noise kind 'adc' needs bits and bound"),
    ('{"kind": "adc", "bits": 8', "is not valid JSON"),
    ('[{"bits": 8}]', 'each noise kind needs a "kind" entry'),
    ("programming+programming", "names a kind twice"),
    ("weight_read(bits=2)", "noise kind 'weight_read' takes sigma, not bits"),
    ("[]", "noise spec '[]' lists no kind; give one"),  # issue 36.11: was "unknown noise kind 'none'" later
    ("additive(sigma=0.1,sigma=0.2)", "gives sigma twice; give each setting once"),  # was: the last wins
    ('{"kind": "additive", "sigma": 0.1, "sigma": 0.2}', "gives sigma twice; give each setting once"),
])
def test_bad_specs_are_one_line_errors(text, message):
    from dni.errors import DniError

    with pytest.raises(DniError) as err:
        parse_noise(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_sigma_grid_for_a_spec_without_strength_is_refused(tmp_path, capsys):
    """weight_read(sigma=0.05) or adc(…) at --sigma-val 0,0.5,1: the same evaluation three times — refused
    in one line before any work (API and CLI); one σval is fine."""
    from conftest import REPO

    from dni.cli import main
    from dni.errors import DniError
    from dni.evaluation.evaluate import evaluate
    from dni.store.checkpoints import load_checkpoint

    checkpoint = REPO / "widgets" / "demo" / "checkpoints" / "rnn28_sigma0.50_seed0.pt"
    model = load_checkpoint(checkpoint)
    for spec in ("weight_read(sigma=0.05)", "adc(bits=8,bound=10)", "programming(sigma=0.02)+adc(bits=6,bound=10)"):
        with pytest.raises(DniError, match=r"has no strength for sigma_val to set .* give one value") as err:
            evaluate(model, [0.0, 0.5, 1.0], 2, eval_noise=spec, progress=False)
        assert "\n" not in str(err.value)
    assert evaluate(model, [0.0], 1, eval_noise="adc(bits=8,bound=10)", progress=False).sizes["sigma_val"] == 1
    assert evaluate(model, [0.0, 0.5], 1, eval_noise="weight_read+adc(bits=8,bound=10)", progress=False).sizes["sigma_val"] == 2
    out = tmp_path / "r.nc"
    assert main(["evaluate", str(checkpoint), "--sigma-val", "0,1", "--eval-noise", "weight_read(sigma=0.05)", "--out", str(out)]) == 2
    assert "noise weight_read(sigma=0.05) has no strength" in capsys.readouterr().err and not out.exists()


def test_spec_labels_and_json_round_trip():
    for text in ["additive", "weight_read(sigma=0.05)", "programming(sigma=0.02)+weight_read+adc(bits=8,bound=10)",
                 '[{"kind": "dac", "bits": 6, "bound": 2}, {"kind": "output_relative"}]']:
        spec = parse_noise(text)
        assert parse_noise(spec.label) == spec == parse_noise(spec.to_json())


# --- the mismatch grid -------------------------------------------------------------------------------

def test_mismatch_grid_round_trips_merges_and_resumes(tmp_path):
    """Train under two kinds, evaluate each under two: one file with dims train_noise × eval_noise,
    equal to the per-pair sweeps, σtrain 0 trained once, and a rerun resumes without recomputing."""
    from dni.experiments.sweep import run_sweep
    from dni.store.results import load_results, select_noise

    out = tmp_path / "grid.nc"
    settings = dict(preset="rnn28", epochs=1, sigma_train=[0.0, 0.3], sigma_val=[0.0, 0.3], repeats=2, progress=False)
    logs = []
    grid = run_sweep(out=out, train_noise=["additive", "output_relative"], eval_noise=["additive", "weight_read"],
                     log=logs.append, **settings)
    loaded = load_results(out)
    assert loaded.accuracy.dims == ("train_noise", "eval_noise", "arch", "sigma_train", "sigma_val", "seed")
    assert loaded.train_noise.values.tolist() == ["additive", "output_relative"]
    assert loaded.eval_noise.values.tolist() == ["additive", "weight_read"]
    assert loaded.accuracy.notnull().all()
    assert sorted(p.name for p in (tmp_path / "grid_checkpoints").glob("*.pt")) == [
        "rnn28_output_relative_sigma0.30_seed0.pt", "rnn28_sigma0.00_seed0.pt", "rnn28_sigma0.30_seed0.pt"]
    # each pair equals a sweep of that pair alone (its own file, fresh)
    alone = run_sweep(out=tmp_path / "alone.nc", checkpoint_dir=tmp_path / "grid_checkpoints", train_noise="output_relative",
                      eval_noise="weight_read", log=lambda m: None, **settings)
    view = select_noise(loaded, "output_relative", "weight_read")
    np.testing.assert_array_equal(view.accuracy.values, alone.accuracy.values)
    assert view.attrs["eval_noise"] == "weight_read"
    # σtrain 0 is the same noiseless model under either kind: same clean accuracy
    clean = loaded.accuracy.sel(arch="rnn28", sigma_train=0.0, sigma_val=0.0)
    assert float(clean.min()) == float(clean.max())
    # a rerun resumes every pair and rewrites nothing
    written = out.read_bytes()
    logs.clear()
    again = run_sweep(out=out, train_noise=["additive", "output_relative"], eval_noise=["additive", "weight_read"],
                      log=logs.append, **settings)
    assert sum("left as it was" in m for m in logs) == 4
    np.testing.assert_array_equal(again.accuracy.values, grid.accuracy.values)
    assert load_results(out).accuracy.equals(loaded.accuracy) and len(written) > 0


@pytest.mark.parametrize("argv, message", [
    (["--train-noise", "weight_read(sigma=0.05)"],  # over the default σtrain grid 0, 0.5, 1: three copies of one model
     "noise weight_read(sigma=0.05) has no strength for --sigma-train to set"),
    (["--sigma-train", "0", "--eval-noise", "adc(bits=8,bound=10)"],  # over the default σval grid: was refused after training
     "noise adc(bits=8,bound=10) has no strength for --sigma-val to set"),
])
def test_a_sweep_refuses_a_fixed_strength_spec_over_a_grid_before_any_work(tmp_path, capsys, argv, message):
    """Issue 36.14: refused in one line, nothing trained, nothing written."""
    from dni.cli import main

    code = main(["--quiet", "sweep", "--preset", "rnn28", "--epochs", "1", *argv, "--out", str(tmp_path / "r.nc")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"dni: error: {message}") and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
