import pytest
import torch

from dni.data import load_sequences
from dni.errors import CheckpointError, InvalidArgumentError, InvalidSigmaError
from dni.store.checkpoints import load_checkpoint, save_checkpoint
from dni.store.recipe import TrainConfig
from dni.training.train import accuracy_and_loss, train


def small_data(n=600):
    return load_sequences("subset", "train").take(slice(0, n))


def test_training_is_reproducible_given_the_seed():
    data = small_data()
    a = train(preset="rnn28", sigma_train=0.5, epochs=1, seed=3, progress=False, train_data=data)
    b = train(preset="rnn28", sigma_train=0.5, epochs=1, seed=3, progress=False, train_data=data)
    c = train(preset="rnn28", sigma_train=0.5, epochs=1, seed=4, progress=False, train_data=data)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert not torch.equal(a.model.cell.weight_hh, c.model.cell.weight_hh)
    assert a.history == b.history and set(a.history[0]) >= {"train_loss", "val_accuracy", "val_accuracy_clean"}


def test_checkpoint_round_trip_gives_an_identical_model(tmp_path):
    trained = train(preset="gru28", sigma_train=0.2, epochs=1, progress=False, train_data=small_data(300))
    path = tmp_path / "m.pt"
    save_checkpoint(trained, path)
    loaded = load_checkpoint(path)
    assert loaded.config == trained.config and loaded.history == trained.history
    x = torch.rand(4, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(x, noise=0.0), trained.model(x, noise=0.0))
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["preset"] == "gru28" and payload["meta"]["dni_version"]


def test_checkpoint_of_another_preset_is_refused(tmp_path):
    trained = train(preset="rnn28", epochs=1, progress=False, train_data=small_data(200))
    save_checkpoint(trained, tmp_path / "r.pt")
    with pytest.raises(CheckpointError, match="holds preset 'rnn28', not 'lstm28'"):
        load_checkpoint(tmp_path / "r.pt", preset="lstm28")


def test_not_a_checkpoint_is_reported(tmp_path):
    (tmp_path / "x.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a dni checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sigma_train": -1}, InvalidSigmaError, ">= 0"),
    ({"sigma_train": float("nan")}, InvalidSigmaError, "finite"),
    ({"epochs": 0}, InvalidArgumentError, "epochs must be an integer >= 1"),
    ({"data": "imagenet"}, InvalidArgumentError, "choose one of: subset, mnist"),
    ({"lr": -0.1}, InvalidArgumentError, "lr must be a positive number"),
])
def test_bad_training_config_is_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        TrainConfig(**kwargs)


def test_lstm28_learns_and_noise_training_pays_off_under_noise(paper_pair):
    """The default run's models: ≥ 90 % clean test accuracy, and σtrain = 1 beats σtrain = 0 at σval = 1."""
    ds, _ = paper_pair
    acc = ds.accuracy.sel(arch="lstm28").mean("seed")
    assert acc.sel(sigma_train=0.0, sigma_val=0.0) >= 0.90
    assert acc.sel(sigma_train=1.0, sigma_val=1.0) > acc.sel(sigma_train=0.0, sigma_val=1.0) + 0.3
    # noise hurts the conventionally trained model a lot (paper: 98.7 % → 12.5 %)
    assert acc.sel(sigma_train=0.0, sigma_val=1.0) < 0.6


def test_independent_accuracy_check_on_a_checkpoint(paper_pair):
    """Recompute one clean accuracy from the checkpoint with the readable reference cell."""
    ds, out = paper_pair
    model = load_checkpoint(out.with_name("pair_checkpoints") / "lstm28_sigma0.00_seed0.pt").model
    test = load_sequences("subset", "test")
    with torch.no_grad():
        pred = torch.cat([model.forward_reference(test.x[i : i + 500]).argmax(1) for i in range(0, len(test), 500)])
    expected = (pred == test.y).double().mean().item()
    assert ds.accuracy.sel(arch="lstm28", sigma_train=0.0, sigma_val=0.0).values == pytest.approx(expected, abs=1e-12)
    assert accuracy_and_loss(model, test, 0.0)[0] == pytest.approx(expected)


def test_patience_stops_at_convergence_and_keeps_the_best_epoch():
    data = small_data(400)
    full = train(preset="rnn28", epochs=6, lr=0.02, progress=False, train_data=data)  # a high lr: the val accuracy wobbles
    accs = [r["val_accuracy"] for r in full.history]
    stopped = train(preset="rnn28", epochs=6, lr=0.02, patience=1, progress=False, train_data=data)
    first_drop = next((i for i in range(1, len(accs)) if accs[i] <= max(accs[:i])), None)
    assert first_drop is not None, f"no early stop to test: {accs}"
    expected_epochs = first_drop + 1
    assert len(stopped.history) == expected_epochs
    assert stopped.history == full.history[:expected_epochs]  # same run up to the stop
    kept = stopped.meta["best_epoch"]
    # the first epoch with the highest validation accuracy up to the stop (a later tie is no improvement)
    assert kept == max(range(expected_epochs), key=lambda i: accs[i]) + 1
    # the kept weights are those of the best epoch: their validation accuracy is the recorded one
    from dni.training.train import validation_record
    assert validation_record(stopped.model, split_val(data), stopped.config)["val_accuracy"] == stopped.history[kept - 1]["val_accuracy"]


def split_val(data):
    from dni.training.train import split_train_validation

    return split_train_validation(data, 0.1)[1]


def test_lr_patience_halves_the_rate_after_epochs_without_a_new_best():
    data = small_data(400)
    run = train(preset="rnn28", epochs=6, lr=0.02, lr_patience=1, progress=False, train_data=data)
    accs, rates = [r["val_accuracy"] for r in run.history], [r["lr"] for r in run.history]
    expected, best = [0.02], -1.0  # recomputed from the validation accuracies: halve after each epoch with no new best
    for acc in accs[:-1]:
        expected.append(expected[-1] if acc > best else expected[-1] / 2)
        best = max(best, acc)
    assert rates == pytest.approx(expected)
    assert min(rates) < 0.02, f"the rate never dropped: {accs}"
    constant = train(preset="rnn28", epochs=2, lr=0.02, progress=False, train_data=data)
    assert [r["lr"] for r in constant.history] == [0.02, 0.02]
    with pytest.raises(InvalidArgumentError, match="lr_patience must be an integer >= 1"):
        TrainConfig(preset="rnn28", lr_patience=0)


@pytest.mark.parametrize("prefetch", [False, True])
def test_training_cut_off_after_an_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, prefetch):
    """The training state saved after each epoch (weights, Adam, rate schedule, best epoch, generator
    states) lets a run killed mid-training go on to exactly the model of an uninterrupted run."""
    from dni.store.checkpoints import TrainingState

    data = small_data(400)
    config = TrainConfig(preset="rnn28", sigma_train=0.5, epochs=5, lr=0.02, patience=3, lr_patience=1)
    straight = train(config, progress=False, train_data=data, prefetch_noise=prefetch)
    assert len(straight.history) >= 3 and min(r["lr"] for r in straight.history) < 0.02, straight.history

    state = tmp_path / "m.pt.partial"
    real_save = TrainingState.save

    def save_then_die(path, config, model, optimiser, schedule, best, run, history, seconds):
        real_save(path, config, model, optimiser, schedule, best, run, history, seconds)
        if len(history) == 2:
            raise KeyboardInterrupt  # the session ends after epoch 2

    monkeypatch.setattr(TrainingState, "save", staticmethod(save_then_die))
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False, train_data=data, prefetch_noise=prefetch, state_path=state)
    monkeypatch.setattr(TrainingState, "save", staticmethod(real_save))

    logs = []
    other = train(config, progress=False, train_data=data, prefetch_noise=prefetch, state_path=tmp_path / "absent", log=logs.append)
    assert logs == [] and other.history == straight.history  # no state: trained from the start, the same run
    foreign = tmp_path / "copy.pt.partial"
    foreign.write_bytes(state.read_bytes())
    assert train(TrainConfig(**{**config.__dict__, "lr": 0.01}), progress=False, train_data=data, state_path=foreign,
                 log=logs.append).history[0]["lr"] == 0.01 and logs == []  # another config's state is not used
    resumed = train(config, progress=False, train_data=data, prefetch_noise=prefetch, state_path=state, log=logs.append)
    assert logs == [f"resuming training from {state} after epoch 2"]
    assert resumed.history == straight.history
    assert all(torch.equal(p, q) for p, q in zip(resumed.model.parameters(), straight.model.parameters()))
    assert resumed.meta["best_epoch"] == straight.meta["best_epoch"] and resumed.meta["epochs_run"] == straight.meta["epochs_run"]


class _GradSpy(torch.nn.Module):
    """A model that records whether gradients were on at each forward call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.grad = model, []

    def forward(self, x, **kwargs):
        self.grad.append(torch.is_grad_enabled())
        return self.model(x, **kwargs)


@pytest.mark.parametrize("checkpoint, train_noise, sigma", [
    ("dni_paper_checkpoints/lstm28_sigma1.00_seed0.pt", "additive", 1.0),
    ("noise_kinds/checkpoints/lstm28_output_relative_sigma0.78_seed0.pt", "output_relative", 0.78)])
def test_validation_is_inference_grad_off_with_the_inference_paths_draws(checkpoint, train_noise, sigma):
    """Validation picks the kept epoch and stops training, so its noisy accuracy must be the one every earlier model
    was selected on: a forward pass with grad off. With grad on, dni.nn.choose_path takes the training path, whose
    noise draws differ (a misplaced ``@torch.no_grad()`` once did that, changing which epoch a noisy model kept)."""
    import torch.nn.functional as F
    from conftest import REPO

    from dni.noise.session import noise_for
    from dni.training.train import validation_record

    trained = load_checkpoint(REPO / "results" / checkpoint)
    model = _GradSpy(trained.model)
    val = load_sequences("subset", "test").take(slice(0, 500))
    config = trained.config
    assert (config.train_noise, config.sigma_train) == (train_noise, sigma)
    record = validation_record(model, val, config)
    assert model.grad and not any(model.grad)
    gen = torch.Generator().manual_seed(config.seed + 2)  # validation's fixed noise seed
    with torch.no_grad():
        logits = model.model(val.x, noise=noise_for(train_noise, sigma), generator=gen)  # (500, 10): one chunk
    assert record["val_accuracy"] == int((logits.argmax(1) == val.y).sum()) / len(val)
    assert record["val_loss"] == pytest.approx(float(F.cross_entropy(logits, val.y)), rel=1e-6)
