"""Deep Noise Injection training (paper §I, §III): train with noise σtrain on in every forward pass.

Adam on the cross-entropy of the noisy logits; a validation split is cut from the training set
(the test set is kept for the final evaluation, :mod:`dni.evaluation.evaluate`).
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from dni._version import __version__
from dni.data import SequenceData, load_sequences
from dni.errors import InvalidArgumentError
from dni.nn.models import build_model
from dni.nn.presets import get_preset
from dni.noise.base import PrefetchedGaussian, prefetch_pays_off
from dni.noise.session import noise_for
from dni.store.checkpoints import TrainedModel, TrainingState
from dni.store.recipe import OPTIMISERS, TrainConfig
from dni.util.progress import tqdm

SPLIT_SEED = 20180101
"""The validation split does not depend on the training seed: every model of a sweep sees the same split."""


def split_train_validation(train: SequenceData, val_fraction: float) -> tuple[SequenceData, SequenceData]:
    """A fixed random split (seed :data:`SPLIT_SEED`) of the training digits into train/validation."""
    n_val = int(round(len(train) * val_fraction))
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    return train.take(perm[n_val:]), train.take(perm[:n_val])


@dataclass
class TrainingRun:
    """What every training loop of a config shares: the split, the generators, the batch sizes."""

    fit: SequenceData
    val: SequenceData
    shuffle: torch.Generator  # batch order (seed), and the dropout masks if any
    noise: torch.Generator  # σtrain noise (seed + 1)
    batch_sizes: list[int]  # of one epoch, in order

    @classmethod
    def prepare(cls, config: "TrainConfig", train_data: SequenceData | None) -> "TrainingRun":
        if train_data is None:
            train_data = load_sequences(config.data, "train", get_preset(config.preset).data)
        fit, val = split_train_validation(train_data, config.val_fraction)
        sizes = [min(config.batch_size, len(fit) - start) for start in range(0, len(fit), config.batch_size)]
        return cls(fit, val, torch.Generator().manual_seed(config.seed),
                   torch.Generator(device=config.device).manual_seed(config.seed + 1), sizes)

    @property
    def steps(self) -> int:
        return self.fit.x.shape[1]


class BestEpoch:
    """Tracks the best validation accuracy of one model (the convergence criterion, ``patience``)."""

    def __init__(self, patience: int | None):
        self.patience, self.best, self.epoch, self.since, self.state = patience, -1.0, 0, 0, None

    def update(self, epoch: int, val_accuracy: float, state_dict) -> None:
        if val_accuracy > self.best:
            self.best, self.epoch, self.since = val_accuracy, epoch, 0
            self.state = {k: v.detach().clone() for k, v in state_dict().items()} if self.patience else None
        else:
            self.since += 1

    @property
    def converged(self) -> bool:
        return self.patience is not None and self.since >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "epoch": self.epoch, "since": self.since, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.best, self.epoch, self.since, self.state = saved["best"], saved["epoch"], saved["since"], saved["state"]


def validation_record(model, val: SequenceData, config: "TrainConfig") -> dict:
    """Validation accuracy/loss at σtrain (a fixed noise seed, comparable across epochs) and clean."""
    if not len(val):
        return {}
    gen = torch.Generator(device=config.device).manual_seed(config.seed + 2)
    record = {}
    noise = noise_for(config.train_noise, config.sigma_train)
    record["val_accuracy"], record["val_loss"] = accuracy_and_loss(model, val, noise, gen, device=config.device)
    record["val_accuracy_clean"], _ = accuracy_and_loss(model, val, 0.0, device=config.device)
    return record


def selection_accuracy(record: dict, config: "TrainConfig") -> float | None:
    """The validation accuracy of an epoch's ``record`` that selects the model (best epoch, patience,
    learning-rate schedule): at σtrain, or at σ 0 with ``config.select_on == "clean"``; None without a split."""
    return record.get("val_accuracy_clean" if config.select_on == "clean" else "val_accuracy")


@torch.no_grad()  # inference: dni.nn.choose_path then picks the grad-off path, whose noise draws validation has always used
def accuracy_and_loss(model, data: SequenceData, noise, generator=None, batch_size=1024, device="cpu"):
    """(accuracy, mean cross-entropy) of ``model`` on ``data`` under ``noise`` (one noisy pass)."""
    model.eval()
    correct, loss = 0, 0.0
    for start in range(0, len(data), batch_size):
        x = data.x[start : start + batch_size].to(device)
        y = data.y[start : start + batch_size].to(device)
        logits = model(x, noise=noise, generator=generator)
        correct += int((logits.argmax(1) == y).sum())
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
    return correct / max(len(data), 1), loss / max(len(data), 1)


def make_optimiser(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimiser`` at ``config.lr`` with ``config.weight_decay`` (:data:`OPTIMISERS`)."""
    if config.optimiser == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimiser == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimiser == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, alpha=0.9, eps=1e-10, weight_decay=config.weight_decay)
    raise InvalidArgumentError(f"unknown optimiser {config.optimiser!r}; choose one of: {', '.join(OPTIMISERS)}")


def learning_rate_schedule(optimiser, config: TrainConfig):
    """``config.lr_patience``'s schedule for ``optimiser`` (stepped with each epoch's validation
    accuracy at σtrain): halve the rate after that many epochs without a new best; None if constant."""
    if not config.lr_patience:
        return None
    # torch's patience counts the epochs it waits beyond the first bad one
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=config.lr_patience - 1, threshold=0)


def train(config: TrainConfig | None = None, *, progress: bool = True, train_data: SequenceData | None = None,
          prefetch_noise: bool | None = None, state_path=None, log=None, **overrides) -> TrainedModel:
    """Train ``config.preset`` with Deep Noise Injection at ``config.sigma_train``.

    Keyword overrides build the config: ``train(preset="rnn28", sigma_train=0.5)``.
    ``train_data`` replaces the training digits of ``config.data`` (tests, custom data).
    ``prefetch_noise`` draws the σtrain noise in a background thread (the same draws); default:
    when a core is spare (:func:`dni.noise.base.prefetch_pays_off`).
    ``state_path``: after every epoch the whole training state is saved there, and a training run
    of the same config that finds it continues from it, bit for bit the run that was cut off
    (:class:`TrainingState`); the caller deletes it once the model is saved. ``log`` tells of a resume.
    History per epoch: train loss/accuracy (noisy, σtrain), validation accuracy/loss at σtrain
    and clean (σ = 0).
    """
    config = TrainConfig(**{**(asdict(config) if config else {}), **overrides})
    preset = get_preset(config.preset)
    torch.manual_seed(config.seed)  # parameter initialisation
    model = build_model(preset, config.sigma_train, init=config.init, input_scale=config.input_scale,
                        train_noise=config.train_noise, dropout=config.dropout).to(config.device)
    run = TrainingRun.prepare(config, train_data)
    optimiser = make_optimiser(model.parameters(), config)
    schedule = learning_rate_schedule(optimiser, config)
    started = datetime.datetime.now()
    if prefetch_noise is None:
        prefetch_noise = prefetch_pays_off()
    best = BestEpoch(config.patience)
    history: list[dict] = []
    earlier_seconds = 0.0  # of the runs this one resumes
    state = TrainingState.load(state_path, config) if state_path is not None else None
    if state is not None:
        earlier_seconds = state.restore(model, optimiser, schedule, best, run, history)
        if log is not None:
            log(f"resuming training from {state_path} after epoch {len(history)}")
    elapsed = lambda: earlier_seconds + (datetime.datetime.now() - started).total_seconds()  # noqa: E731

    def save_state():
        if state_path is not None:
            TrainingState.save(state_path, config, model, optimiser, schedule, best, run, history, elapsed())

    epochs = tqdm(range(len(history), config.epochs), desc=f"{config.preset} σtrain={config.sigma_train:g}", disable=not progress,
                  unit="epoch", initial=len(history), total=config.epochs)
    if not best.converged:
        _fit(model, config, run, prefetch_noise, optimiser, epochs, progress, best, schedule, history, save_state)
    if best.state is not None:
        model.load_state_dict(best.state)  # the weights of the best validation epoch
    model.eval()
    meta = {"dni_version": __version__, "trained_at": started.isoformat(timespec="seconds"),
            "train_seconds": elapsed(), "train_size": len(run.fit), "val_size": len(run.val),
            "epochs_run": len(history), "best_epoch": best.epoch}
    return TrainedModel(model.cpu(), config, history, meta)


def _training_noise(model, config, run: TrainingRun):
    """σtrain noise for one epoch; drawn ahead in a thread where the fused path makes shapes known.

    One prefetching thread per epoch: at the end of an epoch every draw made has been used, so the
    generator's state is exactly the next epoch's start (what :class:`TrainingState` saves).
    """
    if config.sigma_train == 0 or not model.uses_fused_training():
        return model.noise
    shapes = (shape for size in run.batch_sizes for shape in model.training_noise_shapes(size, run.steps))
    return PrefetchedGaussian(config.sigma_train, run.noise, shapes, device=config.device)


def _fit(model, config, run: TrainingRun, prefetch_noise: bool, optimiser, epochs, progress, best: BestEpoch, schedule,
         history: list[dict], end_of_epoch):
    fit = run.fit
    for epoch in epochs:
        model.train()
        order = torch.randperm(len(fit), generator=run.shuffle)
        total_loss, total_correct = 0.0, 0
        train_noise = _training_noise(model, config, run) if prefetch_noise else model.noise
        try:
            for b in tqdm(range(len(run.batch_sizes)), leave=False, disable=not progress, unit="batch"):
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                x, y = fit.x[idx].to(config.device), fit.y[idx].to(config.device)  # (B, T, I), (B,)
                # σtrain noise (Deep Noise Injection); dropout masks, if any, from the batch-order generator
                logits = model(x, noise=train_noise, generator=run.noise, dropout_generator=run.shuffle)
                loss = F.cross_entropy(logits, y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
                optimiser.step()
                total_loss += float(loss.detach()) * len(idx)
                total_correct += int((logits.argmax(1) == y).sum())
        finally:
            if isinstance(train_noise, PrefetchedGaussian):
                train_noise.close()
        record = {"epoch": epoch + 1, "lr": optimiser.param_groups[0]["lr"], "train_loss": total_loss / len(fit),
                  "train_accuracy": total_correct / len(fit), **validation_record(model, run.val, config)}
        history.append(record)
        epochs.set_postfix({k: f"{v:.2g}" if k == "lr" else f"{v:.3f}" for k, v in record.items() if k != "epoch"})
        chosen = selection_accuracy(record, config)  # at σtrain, or σ 0 with select_on "clean"
        if chosen is not None:
            best.update(epoch + 1, chosen, model.state_dict)
            if schedule is not None:
                schedule.step(chosen)  # the next epoch's learning rate
        end_of_epoch()
        if best.converged:
            break
    return history
