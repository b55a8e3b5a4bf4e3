"""The recipe options of issue 26: input scale, initialisation, weight decay, optimiser, dropout.

Each test checks that an option does what it says against an independent computation, and
that the defaults (and the committed checkpoints) are dni's recipe as before.
"""

import math
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dni.cli import main
from dni.data import SequenceData, load_sequences
from dni.errors import CheckpointConflictError, InvalidArgumentError
from dni.experiments.config import SweepConfig
from dni.experiments.reuse import cached_model
from dni.nn.models import SequenceClassifier, build_model
from dni.nn.presets import INITS
from dni.store.checkpoints import load_checkpoint, save_checkpoint
from dni.store.recipe import OPTIMISERS, TrainConfig
from dni.training.train import split_train_validation, train

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "results" / "dni_paper_checkpoints"


def small_data(n=256):
    return load_sequences("subset", "train").take(slice(0, n))


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


# --- defaults and committed checkpoints -------------------------------------------------------

def test_defaults_are_dnis_recipe_and_old_configs_load_with_them():
    c = TrainConfig()
    assert (c.input_scale, c.init, c.weight_decay, c.optimiser, c.dropout) == (1.0, "torch", 0.0, "adam", 0.0)
    old = {k: v for k, v in asdict(TrainConfig(preset="rnn28", lr=5e-4)).items()
           if k not in ("input_scale", "init", "weight_decay", "optimiser", "dropout")}  # a config saved before the options
    assert TrainConfig.from_dict(old) == TrainConfig(preset="rnn28", lr=5e-4)
    # the default init draws exactly what the model always drew (torch.nn-style cells, nn.Linear FC)
    torch.manual_seed(5)
    plain = SequenceClassifier("lstm", 28, 128)
    torch.manual_seed(5)
    built = build_model("lstm28")
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), built.parameters()))
    assert built.input_scale == 1.0 and built.dropout == 0.0


@pytest.mark.skipif(not (COMMITTED / "lstm28_sigma0.00_seed0.pt").is_file(), reason="committed checkpoints not present")
def test_a_committed_checkpoint_loads_and_is_reused_with_the_default_recipe():
    path = COMMITTED / "lstm28_sigma0.00_seed0.pt"
    loaded = load_checkpoint(path)
    assert (loaded.config.input_scale, loaded.config.init, loaded.config.weight_decay, loaded.config.optimiser) == (1.0, "torch", 0.0, "adam")
    assert loaded.model.input_scale == 1.0
    grid = TrainConfig(preset="lstm28", sigma_train=0.0, epochs=100, lr=2e-3, data="mnist", patience=10, lr_patience=5)
    said = []
    reused = cached_model(grid, COMMITTED, log=said.append)
    assert reused is not None and said and said[0].startswith("reusing")
    assert torch.equal(reused.model.cell.weight_hh, loaded.model.cell.weight_hh)
    # the same grid with a recipe option is another model: refused, not silently reused
    with pytest.raises(CheckpointConflictError, match=r"weight_decay 0\.0 → 0\.0001"):
        cached_model(TrainConfig(**{**asdict(grid), "weight_decay": 1e-4}), COMMITTED, log=said.append)


# --- initialisation ---------------------------------------------------------------------------

def test_glorot_init_draws_glorot_uniform_gates_forget_bias_one_and_zero_biases():
    torch.manual_seed(0)
    m = build_model("lstm28", init="glorot")
    I, H, G, C = 28, 128, 4 * 128, 10
    a = math.sqrt(6 / ((I + H) + G))  # TF's kernel (I+H, 4H): fan_in I+H, fan_out 4H
    W = m.cell.weight_on_concat().detach()
    assert W.shape == (G, H + I)
    assert W.abs().max() <= a and W.abs().max() > 0.995 * a
    assert W.var().item() == pytest.approx(a * a / 3, rel=0.03)  # U(-a, a) has variance a²/3
    assert abs(W.mean().item()) < 0.01 * a
    b = m.cell.bias.detach()
    assert torch.equal(b[H : 2 * H], torch.ones(H)) and torch.equal(torch.cat([b[:H], b[2 * H :]]), torch.zeros(3 * H))
    # the 1.0 sits on the forget gate: with zero input and state, c' = σ(f)·c exactly σ(1)·c, and the
    # input, candidate and output gates are at 0 (h' = σ(0)·tanh(c'))
    c = torch.full((2, H), 0.7)
    h1, c1 = m.cell(torch.zeros(2, I), (torch.zeros(2, H), c), noise=0.0)
    assert torch.allclose(c1, torch.sigmoid(torch.tensor(1.0)) * c)
    assert torch.allclose(h1, 0.5 * torch.tanh(c1))
    fc_a = math.sqrt(6 / (H + C))
    assert m.fc.weight.abs().max() <= fc_a and m.fc.weight.abs().max() > 0.97 * fc_a
    assert torch.equal(m.fc.bias.detach(), torch.zeros(C))


def test_default_init_is_torchs_and_tf_example_draws_a_standard_normal_output_layer():
    torch.manual_seed(0)
    d = build_model("lstm28")
    bound = 1 / math.sqrt(128)
    assert all(p.abs().max() <= bound for p in d.cell.parameters())
    assert d.cell.bias.abs().max() > 0.98 * bound  # not zeros, not a constant 1
    torch.manual_seed(0)
    t = build_model("lstm28", init="tf_example")
    w = torch.cat([t.fc.weight.detach().reshape(-1), t.fc.bias.detach()])  # 1290 draws of N(0, 1)
    assert w.std().item() == pytest.approx(1.0, abs=0.08) and abs(w.mean().item()) < 0.1
    assert t.cell.bias[128:256].eq(1).all()


def test_glorot_init_of_the_vanilla_rnn_and_its_refusal_for_the_gru():
    torch.manual_seed(1)
    m = build_model("rnn28", init="glorot")
    a = math.sqrt(6 / ((28 + 128) + 128))
    W = m.cell.weight_on_concat().detach()
    assert W.abs().max() <= a and W.var().item() == pytest.approx(a * a / 3, rel=0.05)
    assert torch.equal(m.cell.bias.detach(), torch.zeros(128))
    with pytest.raises(InvalidArgumentError, match="lstm and rnn"):
        TrainConfig(preset="gru28", init="glorot")
    with pytest.raises(InvalidArgumentError, match="choose one of: " + ", ".join(INITS)):
        TrainConfig(init="xavier")


# --- input scale ------------------------------------------------------------------------------

def test_input_scale_multiplies_the_input_in_every_forward_path():
    torch.manual_seed(2)
    plain = build_model("lstm28")
    scaled = build_model("lstm28", input_scale=255)
    scaled.load_state_dict(plain.state_dict())  # same weights
    x = load_sequences("subset", "test").x[:16]
    with torch.no_grad():  # inference (unrolled), clean and noisy with the same draws
        assert torch.equal(scaled(x), plain(255 * x))
        assert torch.equal(scaled(x, noise=0.5, generator=torch.Generator().manual_seed(1)),
                           plain(255 * x, noise=0.5, generator=torch.Generator().manual_seed(1)))
        assert not torch.allclose(scaled(x), plain(x))
        assert torch.allclose(scaled.trace(x)[0], plain.trace(255 * x)[0])
        assert torch.allclose(scaled.forward_reference(x), plain(255 * x), atol=1e-5)
    assert torch.allclose(scaled(x), plain(255 * x))  # grad on: the fused training path


def test_input_scale_reaches_training_and_the_checkpoint(tmp_path):
    data = small_data(96)
    scaled = train(preset="lstm28", epochs=1, input_scale=255.0, progress=False, train_data=data)
    raw = SequenceData(data.x * 255, data.y, data.images)  # the same digits as 0–255 pixels
    plain = train(preset="lstm28", epochs=1, progress=False, train_data=raw)
    assert all(torch.equal(p, q) for p, q in zip(scaled.model.parameters(), plain.model.parameters()))
    assert scaled.history == plain.history
    path = tmp_path / "scaled.pt"
    save_checkpoint(scaled, path)
    loaded = load_checkpoint(path)
    assert loaded.config.input_scale == 255.0 and loaded.model.input_scale == 255.0
    x = data.x[:8]
    with torch.no_grad():
        assert torch.equal(loaded.model(x), plain.model(255 * x))


# --- weight decay and optimisers --------------------------------------------------------------

def one_step(data, **options):
    """The weights before and after one training step on the whole fit split (one batch)."""
    config = TrainConfig(preset="rnn28", epochs=1, batch_size=len(data), val_fraction=0.25, **options)
    torch.manual_seed(config.seed)
    before = params(build_model("rnn28", init=config.init))
    return before, params(train(config, progress=False, train_data=data).model)


def gradient(data, before):
    """∂(mean cross-entropy)/∂w of the fit split at ``before``, clipped like the training loop — computed here."""
    config = TrainConfig(preset="rnn28", val_fraction=0.25)
    fit, _ = split_train_validation(data, config.val_fraction)
    m = build_model("rnn28")
    m.load_state_dict(before)
    F.cross_entropy(m(fit.x), fit.y).backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), config.clip_grad_norm)
    return {k: p.grad for k, p in m.named_parameters()}


def test_sgd_step_is_w_minus_lr_times_gradient_plus_decay():
    data = small_data(128)
    lr, decay = 0.1, 0.05
    before, after = one_step(data, optimiser="sgd", lr=lr)
    g = gradient(data, before)
    for k in before:
        assert torch.allclose(after[k], before[k] - lr * g[k], atol=1e-6), k
    _, decayed = one_step(data, optimiser="sgd", lr=lr, weight_decay=decay)
    for k in before:  # L2 decay adds λ·w to the (clipped) gradient
        assert torch.allclose(decayed[k], before[k] - lr * (g[k] + decay * before[k]), atol=1e-6), k


def test_first_steps_of_adam_and_rmsprop_have_their_sizes():
    data = small_data(128)
    lr = 1e-3
    before, adam = one_step(data, lr=lr)
    _, rms = one_step(data, optimiser="rmsprop", lr=lr)
    g = gradient(data, before)
    for k in before:
        moved = g[k].abs() > 1e-4  # well above the optimisers' ε
        # Adam's first step is lr·sign(g); RMSProp's (decay 0.9, mean square from 0) lr·g/√(0.1·g²) = lr/√0.1·sign(g)
        assert torch.allclose((before[k] - adam[k])[moved], lr * g[k].sign()[moved], rtol=1e-3, atol=1e-7), k
        assert torch.allclose((before[k] - rms[k])[moved], lr / math.sqrt(0.1) * g[k].sign()[moved], rtol=1e-3, atol=1e-7), k


def test_weight_decay_shrinks_the_weights_of_an_adam_run():
    data = small_data(256)
    common = {"preset": "rnn28", "epochs": 2, "progress": False, "train_data": data}
    free = train(**common).model.weights()
    decayed = train(weight_decay=0.1, **common).model.weights()
    assert decayed.pow(2).mean() < 0.9 * free.pow(2).mean()


# --- bad input, CLI and sweep -----------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"optimiser": "adagrad"}, "unknown optimiser 'adagrad'; choose one of: " + ", ".join(OPTIMISERS)),
    ({"weight_decay": -1e-4}, "weight_decay must be a number >= 0"),
    ({"weight_decay": float("nan")}, "weight_decay must be a number >= 0"),
    ({"input_scale": 0}, "input_scale must be a positive number"),
    ({"input_scale": float("inf")}, "input_scale must be a positive number"),
])
def test_bad_recipe_options_are_one_line_errors(options, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        TrainConfig(**options)
    assert "\n" not in str(err.value)


def test_cli_flags_reach_the_configs(monkeypatch, tmp_path, capsys):
    seen = []

    def capture(config, **kwargs):
        seen.append(config)
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr("dni.training.train.train", capture)
    monkeypatch.setattr("dni.experiments.sweep.run_sweep", capture)
    flags = ["--optimizer", "rmsprop", "--weight-decay", "1e-3", "--init", "glorot", "--input-scale", "255", "--dropout", "0.5"]
    assert main(["train", "--quiet", "--out", str(tmp_path / "m.pt"), *flags]) == 130
    assert main(["sweep", "--quiet", "--sigma-train", "0,1", "--out", str(tmp_path / "s.nc"), *flags]) == 130
    train_config, sweep = seen
    sweep_config = sweep.train_config(1.0)
    for c in (train_config, sweep_config):
        assert (c.optimiser, c.weight_decay, c.init, c.input_scale, c.dropout) == ("rmsprop", 1e-3, "glorot", 255.0, 0.5)
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--weight-decay", "-1"]) == 2
    assert "dni: error: weight_decay must be a number >= 0, got -1.0" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--optimiser", "adagrad"]) == 2
    assert "choose from 'adam', 'sgd', 'rmsprop'" in capsys.readouterr().err


def test_model_batched_training_refuses_the_recipe_options(tmp_path):
    from dni.training.batched import train_batched

    configs = SweepConfig(sigma_train=[0.0, 1.0], weight_decay=1e-3, out=tmp_path / "s.nc")
    with pytest.raises(InvalidArgumentError, match="weight_decay 0.001; drop --batch-models"):
        train_batched([configs.train_config(s) for s in configs.sigma_train], progress=False)
    configs = SweepConfig(sigma_train=[0.0, 1.0], dropout=0.5, out=tmp_path / "d.nc")
    with pytest.raises(InvalidArgumentError, match="not dropout 0.5; drop --batch-models"):
        train_batched([configs.train_config(s) for s in configs.sigma_train], progress=False)


# --- dropout on the output --------------------------------------------------------------------

def test_dropout_zeroes_units_of_the_last_state_in_training_only():
    """Inverted dropout on h_T: in training each unit is zeroed with probability p, the others scaled by 1/(1 − p),
    the mask drawn from the dropout generator; evaluation drops nothing. Reference: the model without dropout."""
    torch.manual_seed(3)
    plain = build_model("lstm28")
    dropped = build_model("lstm28", dropout=0.25)
    dropped.load_state_dict(plain.state_dict())
    x = load_sequences("subset", "test").x[:64]  # (B, T, I)
    dropped.eval()
    with torch.no_grad():
        assert torch.equal(dropped(x), plain(x))  # evaluation: no dropout
    h_last = plain.trace(x)[1].h[:, -1]  # (B, H) h_T without noise
    seen = []
    dropped.fc.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    dropped.train()
    global_state = torch.get_rng_state()
    for forward in (dropped, dropped.forward_reference):  # grad on: the fused path, and the readable step
        logits = forward(x, dropout_generator=torch.Generator().manual_seed(7))
        kept = torch.rand(h_last.shape, generator=torch.Generator().manual_seed(7)) >= 0.25  # (B, H)
        assert torch.allclose(seen[-1], h_last * kept / 0.75, atol=1e-6)
        assert torch.allclose(logits, plain.fc(h_last * kept / 0.75), atol=1e-5)
    assert torch.equal(torch.get_rng_state(), global_state)  # the masks came from the given generator only
    zeroed = (seen[-1] == 0).float().mean().item()  # h_T itself has no exact zeros
    assert abs(zeroed - 0.25) < 0.02, zeroed  # 8192 units: SE 0.005
    # without dropout the generator is not touched: training with dropout 0 draws what it always drew
    plain.train()
    untouched = torch.Generator().manual_seed(7)
    plain(x, dropout_generator=untouched)
    assert torch.equal(untouched.get_state(), torch.Generator().manual_seed(7).get_state())


def test_dropout_reaches_training_and_the_checkpoint_and_resumes_bit_for_bit(tmp_path, monkeypatch):
    from dni.store.checkpoints import TrainingState

    data = small_data(200)
    config = TrainConfig(preset="rnn28", sigma_train=0.5, epochs=3, batch_size=64, lr=0.02, dropout=0.5)
    masks, real_dropped = [], SequenceClassifier._dropped

    def recording(model, h_last, generator=None):  # which units of h_T each training batch dropped
        out = real_dropped(model, h_last, generator)
        if model.training:
            masks.append(out == 0)  # (B, H)
        return out

    monkeypatch.setattr(SequenceClassifier, "_dropped", recording)
    straight = train(config, progress=False, train_data=data, prefetch_noise=True)  # noise drawn ahead in a thread
    assert len(masks) == 9 and not torch.equal(masks[0], masks[1])  # 3 epochs × 3 batches (64, 64, 52): a new mask each
    assert all(abs(m.float().mean().item() - 0.5) < 0.05 for m in masks)
    monkeypatch.undo()
    inline = train(config, progress=False, train_data=data, prefetch_noise=False)
    assert straight.history == inline.history  # the masks do not race the noise thread
    free = train(TrainConfig(**{**config.__dict__, "dropout": 0.0}), progress=False, train_data=data)
    assert free.history[0]["train_loss"] != straight.history[0]["train_loss"]  # dropout changed the training
    path = tmp_path / "m.pt"
    save_checkpoint(straight, path)
    loaded = load_checkpoint(path)
    assert loaded.config.dropout == 0.5 and loaded.model.dropout == 0.5
    real_save = TrainingState.save

    def save_then_die(path, config, model, optimiser, schedule, best, run, history, seconds):
        real_save(path, config, model, optimiser, schedule, best, run, history, seconds)
        if len(history) == 1:
            raise KeyboardInterrupt  # cut off after epoch 1

    monkeypatch.setattr(TrainingState, "save", staticmethod(save_then_die))
    state = tmp_path / "m.pt.partial"
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False, train_data=data, state_path=state)
    monkeypatch.setattr(TrainingState, "save", staticmethod(real_save))
    resumed = train(config, progress=False, train_data=data, state_path=state)
    assert resumed.history == straight.history
    assert all(torch.equal(p, q) for p, q in zip(resumed.model.parameters(), straight.model.parameters()))


@pytest.mark.parametrize("dropout", [-0.1, 1.0, float("nan")])
def test_a_dropout_outside_zero_to_one_is_a_one_line_error(dropout):
    with pytest.raises(InvalidArgumentError, match=r"dropout must be a probability in \[0, 1\), got"):
        TrainConfig(dropout=dropout)
