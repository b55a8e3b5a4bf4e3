"""Model-batched training (dni.training.batched) against training the models one after another."""

import pytest
import torch

from dni.data import load_sequences
from dni.errors import InvalidArgumentError
from dni.nn.models import build_model
from dni.nn.stacked import StackedClassifier
from dni.noise.base import ReplayNoise
from dni.store.recipe import TrainConfig
from dni.training.batched import train_batched
from dni.training.train import train


@pytest.fixture(scope="module")
def data():
    return load_sequences("subset", "train").take(slice(0, 400))


@pytest.mark.parametrize("preset", ["lstm28", "rnn28"])
def test_batched_training_at_sigma_zero_equals_separate_training(preset, data):
    configs = [TrainConfig(preset=preset, sigma_train=0.0, epochs=1, seed=s) for s in (0,)] * 2
    together = train_batched(configs, progress=False, train_data=data)
    alone = train(configs[0], progress=False, train_data=data)
    for m in together:
        for p, q in zip(m.model.parameters(), alone.model.parameters()):
            assert torch.allclose(p, q, atol=1e-5)
    assert together[0].history[0]["val_accuracy_clean"] == alone.history[0]["val_accuracy_clean"]


def test_batched_learning_rate_schedules_are_per_model_and_equal_separate_training(data):
    """With --lr-patience each stacked model halves its own rate on its own validation accuracy.
    At σ = 0 a model trained together with another equals the model trained alone, rate by rate."""
    settings = dict(preset="lstm28", epochs=5, lr=0.005, lr_patience=1)
    alone = train(TrainConfig(**settings), progress=False, train_data=data)
    rates = [r["lr"] for r in alone.history]
    assert min(rates) < 0.005, f"the rate never dropped, nothing to test: {rates}"
    # the second model learns under noise: other validation accuracies, so other rates
    together = train_batched([TrainConfig(**settings), TrainConfig(**settings, sigma_train=0.8)], progress=False, train_data=data)
    assert [r["lr"] for r in together[0].history] == rates
    assert [r["val_accuracy"] for r in together[0].history] == [r["val_accuracy"] for r in alone.history]
    for p, q in zip(together[0].model.parameters(), alone.model.parameters()):
        assert torch.allclose(p, q, atol=1e-5)
    noisy_rates = [r["lr"] for r in together[1].history]
    expected, best = [0.005], -1.0  # recomputed from its own validation accuracies
    for acc in [r["val_accuracy"] for r in together[1].history][:-1]:
        expected.append(expected[-1] if acc > best else expected[-1] / 2)
        best = max(best, acc)
    assert noisy_rates == pytest.approx(expected) and noisy_rates != rates


def test_each_stacked_model_computes_its_own_network_with_its_own_noise():
    """Model s of the stack equals the single model s given the same noise tensors."""
    torch.manual_seed(0)
    models = [build_model("lstm28", s) for s in (0.0, 0.5, 1.0)]
    for i, m in enumerate(models):  # make the three different
        with torch.no_grad():
            m.cell.weight_hh.mul_(1 + i)
    stacked = StackedClassifier(models, [0.0, 0.5, 1.0]).double()
    x = torch.rand(4, 28, 28, dtype=torch.float64)
    z_cell = torch.randn(3, 28, 4, 512, dtype=torch.float64)  # (S, T, B, G) in the stack's gate order (o, i, f, g)
    z_fc = torch.randn(3, 4, 10, dtype=torch.float64)
    logits = stacked(x, ReplayNoise([z_cell, z_fc]))
    from dni.nn.fused import gate_order
    inverse = torch.argsort(gate_order(128, "cpu"))
    for s, m in enumerate(models):
        m = m.double()
        ref = m.forward_reference(x, noise=ReplayNoise([z_cell[s, t][:, inverse] for t in range(28)] + [z_fc[s]]))
        assert torch.allclose(logits[s], ref, atol=1e-10)


def test_per_model_gradient_clipping_matches_torch(data):
    torch.manual_seed(0)
    models = [build_model("rnn28", 0.0) for _ in range(2)]
    stacked = StackedClassifier(models, [0.0, 0.0])
    for p in stacked.parameters():
        p.grad = torch.randn_like(p) * torch.tensor([10.0, 0.01]).view(-1, *[1] * (p.dim() - 1))
    expected = []
    for s in range(2):
        grads = [p.grad[s].clone() for p in stacked.parameters()]
        total = torch.sqrt(sum((g ** 2).sum() for g in grads))
        expected.append([g * min(1.0, 5.0 / (total.item() + 1e-6)) for g in grads])
    stacked.clip_grad_norm_(5.0)
    for s in range(2):
        for p, e in zip(stacked.parameters(), expected[s]):
            assert torch.allclose(p.grad[s], e, rtol=1e-5)


def test_batched_training_refuses_mixed_settings(data):
    with pytest.raises(InvalidArgumentError, match="these differ: \\['epochs'\\]"):
        train_batched([TrainConfig(epochs=1), TrainConfig(epochs=2, sigma_train=0.5)], train_data=data)
    with pytest.raises(InvalidArgumentError, match="supports lstm, rnn cells, not gru"):
        train_batched([TrainConfig(preset="gru28")], train_data=data)


def test_sweep_with_batched_models_writes_checkpoints_that_load(tmp_path, capsys):
    from dni.cli import main
    from dni.store.checkpoints import load_checkpoint

    out = tmp_path / "b.nc"
    assert main(["--quiet", "sweep", "--preset", "rnn28", "--epochs", "1", "--sigma-train", "0,1", "--sigma-val", "0,1",
                 "--repeats", "2", "--batch-models", "--out", str(out)]) == 0
    ck = load_checkpoint(tmp_path / "b_checkpoints" / "rnn28_sigma1.00_seed0.pt")
    assert ck.config.sigma_train == 1.0 and ck.meta["model_batched"] == 2


def test_batched_patience_stops_each_model_at_its_own_best(data):
    from dni.training.train import split_train_validation, validation_record

    configs = [TrainConfig(preset="rnn28", sigma_train=s, epochs=6, lr=0.02, patience=1) for s in (0.0, 0.5)]
    val = split_train_validation(data, 0.1)[1]
    for m in train_batched(configs, progress=False, train_data=data):
        accs = [r["val_accuracy"] for r in m.history]
        # recorded until the first epoch without improvement (patience 1), or to the end
        drops = [i for i in range(1, len(accs)) if accs[i] <= max(accs[:i])]
        assert drops in ([], [len(accs) - 1])  # the only epoch without improvement is the last one recorded
        assert len(accs) == 6 or drops == [len(accs) - 1]  # stopped early only because of it
        best = m.meta["best_epoch"]
        assert accs[best - 1] == max(accs)
        assert validation_record(m.model, val, m.config)["val_accuracy"] == accs[best - 1]  # best weights kept


def test_inline_and_prefetched_per_model_noise_train_identically(data):
    configs = [TrainConfig(preset="lstm28", sigma_train=s, epochs=1) for s in (0.3, 1.0)]
    a = train_batched(configs, progress=False, train_data=data, prefetch_noise=True)
    b = train_batched(configs, progress=False, train_data=data, prefetch_noise=False)
    for m, n in zip(a, b):
        assert all(torch.equal(p, q) for p, q in zip(m.model.parameters(), n.model.parameters()))


def test_batched_training_saves_each_model_when_it_converges(tmp_path, monkeypatch, data):
    """A model that meets its convergence criterion is saved at once, so a batched run killed while
    the others still train keeps it; started again, the run reuses it and the others continue from
    the run's saved state, to the models of the run that was not killed."""
    import dni.experiments.sweep
    from dni.experiments.sweep import train_models
    from dni.store.checkpoints import load_checkpoint
    from dni.store.layout import batched_state_path, checkpoint_path
    from dni.store.results import model_crc

    configs = [TrainConfig(preset="rnn28", sigma_train=s, epochs=8, lr=0.02, patience=1) for s in (0.0, 0.5, 1.0)]
    complete = train_batched(configs, progress=False, train_data=data)
    runs = [len(m.history) for m in complete]
    assert min(runs) < max(runs), f"the models stopped together, nothing to test: {runs}"
    first = runs.index(min(runs))

    real_save = dni.experiments.sweep.save_checkpoint

    def save_then_die(trained, path):  # the session ends right after the first model was saved
        real_save(trained, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(dni.experiments.sweep, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_models(configs, tmp_path, data, batch=True, progress=False, log=lambda _: None)
    state = batched_state_path(tmp_path, configs[0])
    assert sorted(p.name for p in tmp_path.glob("*.pt*")) == sorted([checkpoint_path(tmp_path, configs[first]).name, state.name])
    kept = load_checkpoint(checkpoint_path(tmp_path, configs[first]))
    assert kept.history == complete[first].history and model_crc(kept.model) == model_crc(complete[first].model)
    assert kept.meta["epochs_run"] == runs[first] and kept.meta["best_epoch"] == complete[first].meta["best_epoch"]

    # started again: the saved model is reused, the others go on from the run's state after that epoch
    monkeypatch.setattr(dni.experiments.sweep, "save_checkpoint", real_save)
    logs = []
    again = train_models(configs, tmp_path, data, batch=True, progress=False, log=logs.append)
    assert logs == [f"reusing {checkpoint_path(tmp_path, configs[first])}",
                    f"resuming batched training from {state} after epoch {runs[first]}"]
    for m, n in zip(again, complete):
        assert model_crc(m.model) == model_crc(n.model) and m.history == n.history
    assert sorted(p.name for p in tmp_path.glob("*.pt*")) == sorted(checkpoint_path(tmp_path, c).name for c in configs)


@pytest.mark.parametrize("prefetch", [False, True])
def test_batched_training_cut_off_after_an_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, capsys, data, prefetch):
    """The state saved after each epoch of a model-batched run (stacked weights, Adam, each model's
    rate schedule and best epoch, generator states) lets a run cut off mid-training (a GPU session's
    time limit) go on to exactly the models of the run that was not cut off."""
    from dni.cli import main
    from dni.store.checkpoints import BatchedTrainingState, training_states

    configs = [TrainConfig(preset="rnn28", sigma_train=s, epochs=6, lr=0.02, patience=2, lr_patience=1) for s in (0.0, 0.5, 1.0)]
    straight = train_batched(configs, progress=False, train_data=data, prefetch_noise=prefetch)
    assert any(min(r["lr"] for r in m.history) < 0.02 for m in straight), "no rate dropped, nothing to test"

    state = tmp_path / "rnn28_batched_seed0.pt.partial"
    real_save = BatchedTrainingState.save

    def save_then_die(path, configs, stacked, optimiser, rates, bests, histories, epochs_done, *rest):
        real_save(path, configs, stacked, optimiser, rates, bests, histories, epochs_done, *rest)
        if epochs_done == 2:
            raise KeyboardInterrupt  # the time limit hits after epoch 2

    monkeypatch.setattr(BatchedTrainingState, "save", staticmethod(save_then_die))
    with pytest.raises(KeyboardInterrupt):
        train_batched(configs, progress=False, train_data=data, prefetch_noise=prefetch, state_path=state)
    monkeypatch.setattr(BatchedTrainingState, "save", staticmethod(real_save))

    # `dni checkpoints` lists the models in training
    assert [(c.sigma_train, len(h)) for c, h in training_states(state)] == [(0.0, 2), (0.5, 2), (1.0, 2)]
    assert main(["checkpoints", str(tmp_path)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("in training: rnn28")]
    assert len(listed) == 3 and all(", 2 of at most 6 epochs, best so far" in line for line in listed), listed

    # not resumed from: a state of other settings, or one whose model not asked for is still training
    assert BatchedTrainingState.load(state, [TrainConfig(**{**c.__dict__, "lr": 0.01}) for c in configs]) is None
    assert BatchedTrainingState.load(state, configs[:2]) is None
    assert BatchedTrainingState.load(state, configs[::-1]).positions == [2, 1, 0]  # the same models, asked in another order

    logs = []
    resumed = train_batched(configs, progress=False, train_data=data, prefetch_noise=prefetch, state_path=state, log=logs.append)
    assert logs == [f"resuming batched training from {state} after epoch 2"]
    for m, n in zip(resumed, straight):
        assert m.history == n.history
        assert all(torch.equal(p, q) for p, q in zip(m.model.parameters(), n.model.parameters()))
        assert (m.meta["epochs_run"], m.meta["best_epoch"]) == (n.meta["epochs_run"], n.meta["best_epoch"])
