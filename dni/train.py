"""Deep Noise Injection training (paper §I, §III): train with noise σtrain on in every forward pass.

Adam on the cross-entropy of the noisy logits; a validation split is cut from the training set
(the test set is kept for the final evaluation, :mod:`dni.evaluate`).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from .progress import tqdm

from . import __version__
from .data import DATA_SOURCES, SequenceData, load_sequences
from .errors import CheckpointError, InvalidArgumentError
from .io import atomic_path
from .models import SequenceClassifier, build_model, check_init, get_preset
from .noise import PrefetchedGaussian, prefetch_pays_off, validate_sigma
from .noise_spec import PAPER, noise_for, parse_noise

SPLIT_SEED = 20180101
"""The validation split does not depend on the training seed: every model of a sweep sees the same split."""


@dataclass
class TrainConfig:
    """Everything that determines a trained model; stored in its checkpoint (JSON-able)."""

    preset: str = "lstm28"
    sigma_train: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    data: str = "subset"
    val_fraction: float = 0.1
    clip_grad_norm: float | None = 5.0
    device: str = "cpu"
    patience: int | None = None
    """Convergence criterion: stop once validation accuracy at σtrain has not improved for this many
    epochs (``epochs`` is then the maximum) and keep the weights of the best epoch. None: train all
    ``epochs`` and keep the last weights."""
    lr_patience: int | None = None
    """Halve the learning rate once validation accuracy at σtrain has not improved for this many
    epochs (torch's ReduceLROnPlateau); None: a constant learning rate."""
    # The recipe options of issue 26 (how the paper's models may have been trained); the defaults are
    # dni's recipe, and a checkpoint config saved before they existed loads with them.
    input_scale: float = 1.0
    """The model multiplies every input by this (255: raw 0–255 pixels instead of [0, 1]), at training
    and evaluation alike (:class:`dni.models.SequenceClassifier`)."""
    init: str = "torch"
    """Parameter initialisation, one of :data:`dni.models.INITS` (``glorot``: TF 1.x BasicLSTMCell's)."""
    weight_decay: float = 0.0
    """L2 weight decay λ on every trainable value (biases too): λ·w is added to each gradient (torch's
    ``weight_decay``, i.e. the loss gets λ/2·Σw², TF's ``λ·tf.nn.l2_loss``), after gradient clipping."""
    optimiser: str = "adam"
    """One of :data:`OPTIMISERS`, all at ``lr``."""
    dropout: float = 0.0
    """Dropout on the output: the probability of zeroing each unit of h_T before the FC layer in training
    (inverted dropout; none in evaluation; :class:`dni.models.SequenceClassifier`)."""
    train_noise: str = PAPER
    """The kind of noise injected in training, at strength σtrain: a noise spec's label
    (:mod:`dni.noise_spec`; ``additive`` is the paper's eq. 2, and what a checkpoint saved before
    noise specs existed was trained with)."""

    def __post_init__(self):
        get_preset(self.preset)
        self.sigma_train = validate_sigma(self.sigma_train, "sigma_train")
        self.train_noise = parse_noise(self.train_noise).label
        if self.data not in DATA_SOURCES:
            raise InvalidArgumentError(f"unknown data {self.data!r}; choose one of: {', '.join(DATA_SOURCES)}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise InvalidArgumentError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.val_fraction < 1:
            raise InvalidArgumentError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise InvalidArgumentError(f"patience must be an integer >= 1 (or None), got {self.patience!r}")
        if self.patience is not None and self.val_fraction == 0:
            raise InvalidArgumentError("patience needs a validation split: set val_fraction > 0")
        if self.lr_patience is not None and (not isinstance(self.lr_patience, int) or self.lr_patience < 1):
            raise InvalidArgumentError(f"lr_patience must be an integer >= 1 (or None), got {self.lr_patience!r}")
        if self.lr_patience is not None and self.val_fraction == 0:
            raise InvalidArgumentError("lr_patience needs a validation split: set val_fraction > 0")
        if not (isinstance(self.input_scale, (int, float)) and math.isfinite(self.input_scale) and self.input_scale > 0):
            raise InvalidArgumentError(f"input_scale must be a positive number (e.g. 255 for raw pixels), got {self.input_scale!r}")
        check_init(self.init, get_preset(self.preset).cell)
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise InvalidArgumentError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise InvalidArgumentError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")
        if self.optimiser not in OPTIMISERS:
            raise InvalidArgumentError(f"unknown optimiser {self.optimiser!r}; choose one of: {', '.join(OPTIMISERS)}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainedModel:
    """A model with the config that produced it and its per-epoch history."""

    model: SequenceClassifier
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return self.config.preset

    @property
    def sigma_train(self) -> float:
        return self.config.sigma_train


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


@torch.no_grad()
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


OPTIMISERS = {
    "adam": "torch.optim.Adam with its defaults β 0.9, 0.999, ε 1e-8 (TF 1.x AdamOptimizer's too); dni's default",
    "sgd": "plain stochastic gradient descent, no momentum (TF 1.x GradientDescentOptimizer)",
    "rmsprop": "torch.optim.RMSprop with TF 1.x RMSPropOptimizer's defaults: decay 0.9, momentum 0, ε 1e-10 "
               "(TF adds ε inside the square root, torch outside, and TF starts the mean square at 1, torch at 0)",
}
"""The optimisers of ``TrainConfig.optimiser`` (``dni train --optimiser``)."""


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
    when a core is spare (:func:`dni.noise.prefetch_pays_off`).
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
        if "val_accuracy" in record:
            best.update(epoch + 1, record["val_accuracy"], model.state_dict)
            if schedule is not None:
                schedule.step(record["val_accuracy"])  # the next epoch's learning rate
        end_of_epoch()
        if best.converged:
            break
    return history


class TrainingState:
    """Everything a training run needs to go on after an epoch: weights, Adam's moments, the rate
    schedule, the best epoch so far (and its weights), the history, and the states of the batch
    order and noise generators. Resuming from it gives the run that was cut off, bit for bit (tested).
    """

    @staticmethod
    def save(path, config: TrainConfig, model, optimiser, schedule, best: BestEpoch, run: TrainingRun, history, seconds: float):
        payload = {"config": asdict(config), "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                   "schedule": schedule.state_dict() if schedule is not None else None,
                   "best": best.state_dict(),
                   "history": history, "shuffle": run.shuffle.get_state(), "noise": run.noise.get_state(), "seconds": seconds}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @staticmethod
    def load(path, config: TrainConfig) -> "TrainingState | None":
        """The saved state if ``path`` holds one of exactly ``config`` (device too), else None."""
        try:
            payload = torch.load(path, map_location=config.device, weights_only=True)
            if TrainConfig.from_dict(payload["config"]) != config:
                return None
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 — a cut-off or foreign file is not resumed from, only overwritten
            return None
        state = TrainingState()
        state.payload = payload
        return state

    @staticmethod
    def peek(path) -> "tuple[TrainConfig, list[dict]] | None":
        """(config, history so far) of the state in ``path``; None if it cannot be read."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            return TrainConfig.from_dict(payload["config"]), payload["history"]
        except Exception:  # noqa: BLE001 — being written, or not a training state
            return None

    def restore(self, model, optimiser, schedule, best: BestEpoch, run: TrainingRun, history: list) -> float:
        """Put the saved state into these objects; returns the seconds the earlier runs took."""
        p = self.payload
        model.load_state_dict(p["model"])
        optimiser.load_state_dict(p["optimiser"])
        if schedule is not None and p["schedule"] is not None:
            schedule.load_state_dict(p["schedule"])
        best.load_state_dict(p["best"])
        history.extend(p["history"])
        run.shuffle.set_state(p["shuffle"].cpu())
        run.noise.set_state(p["noise"].cpu())
        return float(p["seconds"])


def save_checkpoint(trained: TrainedModel, path) -> None:
    """Write state dict + JSON-able config, history and metadata to ``path`` atomically."""
    payload = {
        "state_dict": trained.model.state_dict(),
        "config": asdict(trained.config),
        "history": trained.history,
        "meta": {**trained.meta, "dni_version": __version__},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path, preset: str | None = None) -> TrainedModel:
    """Load a checkpoint into an identical model; ``preset`` (if given) must match its preset."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(payload["config"])
        state_dict = payload["state_dict"]
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `dni train`") from None
    except Exception as err:
        raise CheckpointError(f"{path} is not a dni checkpoint ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if preset is not None and config.preset != preset:
        raise CheckpointError(f"checkpoint {path} holds preset {config.preset!r}, not {preset!r}; pass a {preset} checkpoint or --preset {config.preset}")
    model = build_model(config.preset, config.sigma_train, input_scale=config.input_scale, train_noise=config.train_noise,
                        dropout=config.dropout)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit preset {config.preset!r}: {str(err).splitlines()[0]}") from None
    model.eval()
    return TrainedModel(model, config, payload.get("history", []), payload.get("meta", {}))


__all__ = ["TrainConfig", "TrainedModel", "train", "save_checkpoint", "load_checkpoint", "accuracy_and_loss"]
