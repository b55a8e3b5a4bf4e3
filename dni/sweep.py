"""A σtrain × σval sweep of one preset: train (or reuse) one model per σtrain, evaluate, save.

This is the paper's experiment (§III: σtrain, σval ∈ {0, 0.1, …, 1.0}, 40 repeats) with the
settings as arguments. Checkpoints go to a folder beside the result file; a model whose
checkpoint already exists with the same training config is loaded, not retrained (so is one that
converged before its epoch limit, when only the limit differs: :func:`converged_before_either_limit`;
and one trained on another device: :func:`same_settings`). A model cut off mid-training continues
from its last finished epoch (``<checkpoint>.partial``, removed once the checkpoint is written);
so does a model-batched run (``<preset>_batched_seed<seed>.pt.partial``). The sweep runs in this
process, or as tasks on a Dask cluster (:mod:`dni.distributed`); either way this process alone
writes the checkpoints and the result file (:class:`SweepResultFile`).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import xarray as xr
from .progress import tqdm

from .batched import BATCHABLE_CELLS, BatchedTrainingState, train_batched
from .data import load_sequences
from .devices import validate_device
from .errors import CheckpointConflictError, CheckpointError, InvalidArgumentError
from .draws import validate_draws
from .evaluate import evaluate, validate_repeats, validate_sigmas
from .io import check_writable, check_writable_dir, move_aside
from .models import get_preset
from .noise import NOISELESS
from .noise_spec import PAPER, noise_for, parse_noise
from .results import (
    check_joinable,
    complete_points,
    conflicts_with,
    evaluated_with_other_weights,
    noise_of,
    read_existing_results,
    forget_models,
    merge_results,
    save_results,
    with_model_variables,
    without_incomplete_points,
)
from .train import TrainConfig, TrainedModel, TrainingState, load_checkpoint, save_checkpoint, train

DEFAULT_SIGMA_TRAIN = (0.0, 0.5, 1.0)
PAPER_SIGMAS = tuple(round(0.1 * i, 1) for i in range(11))
MAX_GRID_POINTS = 10_000
"""A σ range with more points is refused: it is a typo (a step of 1e-6, say), not a sweep."""


def parse_sigmas(text: str, name: str = "sigma") -> list[float]:
    """Parse ``"0:1:0.1"`` (start:stop:step, stop included), ``"0,0.5,1"`` or ``"0.3"``."""
    text = str(text).strip()
    if not text:
        raise InvalidArgumentError(f"{name} list is empty; give values like 0,0.5,1 or a range 0:1:0.1")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise InvalidArgumentError(f"{name} range {text!r} must be start:stop:step, e.g. 0:1:0.1")
        start, stop, step = (validate_sigmas([p], name)[0] for p in parts)
        if step <= 0 or stop < start:
            raise InvalidArgumentError(f"{name} range {text!r} needs step > 0 and stop >= start")
        n = int(round((stop - start) / step))
        if start + n * step > stop + 1e-9:
            n -= 1
        if n + 1 > MAX_GRID_POINTS:
            raise InvalidArgumentError(f"{name} range {text!r} has {n + 1:,} points, more than dni's limit of {MAX_GRID_POINTS:,}; "
                                       "use a larger step")
        return validate_sigmas([start + i * step for i in range(n + 1)], name)
    return validate_sigmas([p for p in text.split(",") if p.strip()] or [""], name)


def sigma_label(sigma: float) -> str:
    """σ as it appears in file names: two decimals (``0.50``), or as many as it needs (``0.125``),
    so that two σ never share a file."""
    return f"{sigma:.2f}" if round(sigma, 2) == sigma else f"{sigma:.6f}".rstrip("0")


def checkpoint_path(directory: Path, config: TrainConfig) -> Path:
    """``<preset>[_<train noise>]_sigma<σ>_seed<seed>.pt``; the paper's additive noise is not named (the committed names)."""
    train_noise = effective_train_noise(config)  # σtrain 0 of any kind: the paper's noiseless model
    noise = "" if train_noise == PAPER else "_" + re.sub(r"[^A-Za-z0-9_.]+", "-", train_noise).strip("-")
    return Path(directory) / f"{config.preset}{noise}_sigma{sigma_label(config.sigma_train)}_seed{config.seed}.pt"


def training_state_path(checkpoint: Path) -> Path:
    """Where the model of ``checkpoint`` keeps its training state while it trains (:class:`dni.train.TrainingState`)."""
    return checkpoint.with_name(checkpoint.name + ".partial")


def batched_state_path(directory: Path, config: TrainConfig) -> Path:
    """Where a model-batched run of ``config.preset`` keeps its state (:class:`dni.batched.BatchedTrainingState`)."""
    return Path(directory) / f"{config.preset}_batched_seed{config.seed}.pt.partial"


def default_checkpoint_dir(out: Path) -> Path:
    return out.with_name(out.stem + "_checkpoints")


def find_checkpoints(ds, directory) -> dict[tuple[str, float], Path]:
    """{(arch, σtrain): checkpoint path} for the models of result set ``ds`` found in ``directory``."""
    found = {}
    for arch in ds.arch.values.tolist():
        for st in ds.sigma_train.values.tolist():
            seed = ds.train_seed.sel(arch=arch, sigma_train=st).item() if "train_seed" in ds else 0
            if seed != seed:  # NaN: this (arch, σtrain) was not run
                continue
            path = checkpoint_path(Path(directory), TrainConfig(preset=arch, sigma_train=st, seed=int(seed),
                                                                train_noise=ds.attrs.get("train_noise", PAPER)))
            if path.exists():
                found[(arch, float(st))] = path
    return found


@dataclass
class SweepConfig:
    """Settings of :func:`run_sweep`; the defaults are the README's main job (a few minutes)."""

    preset: str = "lstm28"
    sigma_train: list[float] = field(default_factory=lambda: list(DEFAULT_SIGMA_TRAIN))
    sigma_val: list[float] = field(default_factory=lambda: list(PAPER_SIGMAS))
    repeats: int = 5
    epochs: int = TrainConfig.epochs
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    seed: int = 0
    data: str = "subset"
    out: Path = Path("dni_sweep.nc")
    checkpoint_dir: Path | None = None
    device: str = "cpu"
    batch_models: bool = False
    """Train the σtrain models that are not trained yet together (:mod:`dni.batched`)."""
    patience: int | None = None
    """Convergence criterion of :class:`dni.train.TrainConfig` (``epochs`` is then the maximum)."""
    lr_patience: int | None = None
    """Learning-rate schedule of :class:`dni.train.TrainConfig` (halve after this many epochs without a new best)."""
    input_scale: float = TrainConfig.input_scale
    init: str = TrainConfig.init
    weight_decay: float = TrainConfig.weight_decay
    optimiser: str = TrainConfig.optimiser
    dropout: float = TrainConfig.dropout
    """These five: the recipe options of :class:`dni.train.TrainConfig` (issue 26), passed to every model."""
    retrain: bool = False
    """Replace checkpoints (and training states) of other settings, keeping each old file as a backup
    (:func:`dni.io.move_aside`); without it such a file stops the sweep (:func:`cached_model`)."""
    train_noise: str | list[str] = PAPER
    """The kind of training noise at strength σtrain, a noise spec (:mod:`dni.noise_spec`), or a list:
    the mismatch grid trains models under each and evaluates each under every ``eval_noise``."""
    eval_noise: str | list[str] = PAPER
    """The kind of inference noise at strength σval, a noise spec, or a list."""
    draws: str = "shared"
    """Evaluation draw scheme (:mod:`dni.draws`, issue 22): "shared" ε across σval (default) or
    "per-point" (how the committed paper numbers were made); recorded in the result's attrs."""
    workers: int | None = None
    """Run the sweep's tasks on a Dask ``LocalCluster`` of this many worker processes, one torch thread
    each (:mod:`dni.distributed`); None: in this process."""
    scheduler: str | None = None
    """Run the sweep's tasks on the Dask cluster of this scheduler address (e.g. ``tcp://host:8786``)."""

    def __post_init__(self):
        get_preset(self.preset)
        self.train_noise, self.eval_noise = _noise_labels(self.train_noise, "train_noise"), _noise_labels(self.eval_noise, "eval_noise")
        # σ lists may come as text ("0:1:0.1", "0,0.5,1"), e.g. from papermill -p
        self.sigma_train = parse_sigmas(self.sigma_train, "sigma_train") if isinstance(self.sigma_train, str) else validate_sigmas(self.sigma_train, "sigma_train")
        self.sigma_val = parse_sigmas(self.sigma_val, "sigma_val") if isinstance(self.sigma_val, str) else validate_sigmas(self.sigma_val, "sigma_val")
        self.repeats = validate_repeats(self.repeats)
        self.draws = validate_draws(self.draws)
        self.device = validate_device(self.device)
        from .distributed import validate_cluster

        self.workers = validate_cluster(self.workers, self.scheduler, self.batch_models)
        for s in self.sigma_train:
            for train_noise in {t for t, _ in self.noise_pairs}:
                self.train_config(s, train_noise)  # bad training settings fail here, before anything is written
        self.out = check_writable(self.out)
        self.checkpoint_dir = check_writable_dir(Path(self.checkpoint_dir) if self.checkpoint_dir else default_checkpoint_dir(self.out))

    def train_config(self, sigma_train: float, train_noise: str | None = None) -> TrainConfig:
        """The training settings of the model at ``sigma_train`` (under ``train_noise``; default: the sweep's one)."""
        if train_noise is None and isinstance(self.train_noise, list):
            raise InvalidArgumentError("a sweep over several train noises has one model per train noise: name it")
        return TrainConfig(preset=self.preset, sigma_train=sigma_train, epochs=self.epochs, batch_size=self.batch_size,
                           lr=self.lr, seed=self.seed, data=self.data, device=self.device, patience=self.patience,
                           lr_patience=self.lr_patience, input_scale=self.input_scale, init=self.init,
                           weight_decay=self.weight_decay, optimiser=self.optimiser, dropout=self.dropout,
                           train_noise=train_noise or self.train_noise)

    @property
    def noises(self) -> dict[str, str]:
        return {"train_noise": self.train_noise, "eval_noise": self.eval_noise}

    @property
    def noise_pairs(self) -> list[tuple[str, str]]:
        """(train noise, eval noise) pairs of the mismatch grid; one for a paper-style sweep."""
        as_list = lambda v: v if isinstance(v, list) else [v]  # noqa: E731
        return [(t, e) for t in as_list(self.train_noise) for e in as_list(self.eval_noise)]


def _noise_labels(value, name: str) -> str | list[str]:
    """Canonical label(s) of one spec or a list of specs (a one-element list is that spec)."""
    if isinstance(value, (list, tuple)):
        labels = list(dict.fromkeys(parse_noise(v).label for v in value))
        if not labels:
            raise InvalidArgumentError(f"{name} list is empty; give at least one noise spec, e.g. additive")
        return labels[0] if len(labels) == 1 else labels
    return parse_noise(value).label


def noise_parts_dir(out: Path) -> Path:
    """Where a mismatch-grid sweep keeps one result file per noise pair (``<out>_parts/``)."""
    return out.with_name(out.stem + "_parts")


def _run_noise_grid(config: "SweepConfig", progress: bool, log, client=None) -> xr.Dataset:
    """The mismatch grid: one ordinary sweep per (train noise, eval noise) pair into its own file
    (each resumable; models trained under a train noise are trained once and reused by every eval
    noise), merged into ``config.out`` with dims ``train_noise`` and ``eval_noise``."""
    parts = check_writable_dir(noise_parts_dir(config.out))
    existing = _read_existing(config.out)
    if existing is not None:  # a file this grid extends: same data and eval seed
        check_joinable(existing, config.out, dataset=config.data, eval_seed=config.seed, models=[],
                       **{k: v for k, v in noise_of(existing).items()}, draws=config.draws)
    parts.mkdir(parents=True, exist_ok=True)
    results = []
    for train_noise, eval_noise in config.noise_pairs:
        slug = lambda s: re.sub(r"[^A-Za-z0-9_.]+", "-", s).strip("-")  # noqa: E731
        part = parts / f"{config.preset}_train-{slug(train_noise)}_eval-{slug(eval_noise)}.nc"
        log(f"noise pair: trained under {train_noise}, evaluated under {eval_noise} → {part}")
        sub = replace(config, train_noise=train_noise, eval_noise=eval_noise, out=part, checkpoint_dir=config.checkpoint_dir)
        results.append(_run_one(sub, progress, log, client))
    merged = merge_results(([existing] if existing is not None else []) + results)
    save_results(merged, config.out)
    return merged


def cached_model(config: TrainConfig, directory: Path, log=print, retrain: bool = False, path: Path | None = None,
                 elsewhere: str = "another --checkpoint-dir") -> TrainedModel | None:
    """The model of ``config`` from ``directory`` if it was trained already with these settings; None
    if there is none (or, with ``retrain``, after moving one of other settings aside as a backup).

    A checkpoint of other settings, or one that cannot be read, is never replaced unasked: without
    ``retrain`` it raises :class:`CheckpointConflictError` naming the file and the differing settings.
    ``path``: the checkpoint file when it is not the sweep's name in ``directory`` (``dni train --out``).
    """
    path = Path(path) if path is not None else checkpoint_path(directory, config)  # ``path``: a file of the user's choice
    if not path.exists():
        return None
    try:
        cached = load_checkpoint(path, config.preset)
    except CheckpointError as err:
        return _replace_or_refuse(path, f"cannot be read as a checkpoint of {config.preset} ({err})", retrain, log, elsewhere)
    where = "" if cached.config.device == config.device else f" (trained on {cached.config.device})"
    if same_settings(cached.config, config):
        log(f"reusing {path}{where}")
        if cached.config.train_noise != config.train_noise:  # the σtrain = 0 model of another kind: the same model
            return TrainedModel(cached.model, replace(cached.config, train_noise=config.train_noise), cached.history, cached.meta)
        return cached
    if converged_before_either_limit(cached, config):
        run = len(cached.history)
        log(f"reusing {path}{where}: it converged after {run} of at most {cached.config.epochs} epochs, "
            f"so at most {config.epochs} trains the same model")
        return TrainedModel(cached.model, replace(config, device=cached.config.device), cached.history, cached.meta)
    return _replace_or_refuse(path, f"holds a model trained with other settings ({settings_difference(cached.config, config)})",
                              retrain, log, elsewhere)


def guard_model_training_state(partial: Path, config: TrainConfig, retrain: bool, log) -> None:
    """:func:`guard_training_state` for one model's ``*.partial`` (:class:`dni.train.TrainingState`)."""
    if partial.exists():
        peeked = TrainingState.peek(partial)
        guard_training_state(partial, TrainingState.load(partial, config) is not None, peeked and peeked[0], config, retrain, log)


def settings_difference(old: TrainConfig, new: TrainConfig) -> str:
    """``"epochs 103 → 1, patience 20 → None"``: the training settings (not the device) that differ."""
    a, b = asdict(old), asdict(new)
    return ", ".join(f"{k} {a[k]} → {b[k]}" for k in a if k != "device" and a[k] != b.get(k)) or f"device {old.device} → {new.device}"


def _replace_or_refuse(path: Path, why: str, retrain: bool, log, elsewhere: str = "another --checkpoint-dir") -> None:
    """With ``retrain`` keep ``path`` as a backup (the caller trains anew); else refuse with one line."""
    if not retrain:
        raise CheckpointConflictError(f"{path} {why}; it is not replaced: use {elsewhere}, "
                                      f"or pass --retrain to keep it as {path.name}.bak-<time> and train anew")
    log(f"retraining: {path} {why}; the old file is kept as {move_aside(path)}")
    return None


def guard_training_state(state: Path, resumable: bool, held: TrainConfig | None, config: TrainConfig, retrain: bool, log) -> None:
    """A training state (``*.partial``) this run cannot resume from is hours of someone's work: it is
    never overwritten unasked. ``held``: the config the state was saved for (None if unreadable)."""
    if resumable or not state.exists():
        return
    why = ("cannot be resumed by this run" if held is None else
           f"is the training state of other settings ({settings_difference(held, config)})")
    if not retrain:
        raise CheckpointConflictError(f"{state} {why}; it is not replaced: use another --checkpoint-dir, "
                                      f"or pass --retrain to keep it as {state.name}.bak-<time> and train anew")
    log(f"retraining: {state} {why}; the old file is kept as {move_aside(state)}")


def same_settings(a: TrainConfig, b: TrainConfig) -> bool:
    """Whether ``a`` and ``b`` train the same model, up to the device it ran on.

    The device changes the random draws (a CUDA generator is not the CPU's), not the training: a
    checkpoint trained on a GPU serves a sweep run on the CPU and the other way round. So does the
    kind of training noise at a strength where it is off (σtrain = 0): that is the noiseless model.
    """
    return replace(a, device=b.device, train_noise=effective_train_noise(a)) == replace(b, train_noise=effective_train_noise(b))


def effective_train_noise(config: TrainConfig) -> str:
    """``config.train_noise``, or the paper's label where it draws nothing at σtrain (every kind at 0 is the same model)."""
    return PAPER if noise_for(config.train_noise, config.sigma_train) == NOISELESS else config.train_noise


def converged_before_either_limit(cached: TrainedModel, config: TrainConfig) -> bool:
    """Whether training ``config`` would give ``cached``'s model: the settings differ only in the epoch
    limit, and ``cached`` stopped on its convergence criterion (patience) before both limits.

    Training is deterministic given the settings, and the limit only ends the epoch loop, so raising
    the limit (or lowering it to more than the epochs run) does not retrain a converged model.
    """
    run = len(cached.history)
    return (cached.config.patience is not None and same_settings(replace(cached.config, epochs=config.epochs), config)
            and run < cached.config.epochs and run < config.epochs)


def train_models(configs: list[TrainConfig], directory: Path, train_data=None, *, batch=False, progress=True, log=print,
                 retrain: bool = False) -> list[TrainedModel]:
    """Trained models for ``configs``: reused from checkpoints, else trained (together if ``batch``) and saved.

    Every checkpoint and training state of other settings is refused (or, with ``retrain``, moved
    aside) before the first model trains (:func:`cached_model`, :func:`guard_model_training_state`).
    """
    models = {id(c): cached_model(c, directory, log, retrain) for c in configs}
    todo = [c for c in configs if models[id(c)] is None]
    if batch and len(todo) > 1 and get_preset(todo[0].preset).cell in BATCHABLE_CELLS:
        for c, trained in _train_batched(todo, directory, train_data, progress, log, retrain):
            models[id(c)] = trained
        return [models[id(c)] for c in configs]
    for c in todo:
        guard_model_training_state(training_state_path(checkpoint_path(directory, c)), c, retrain, log)
    for c in todo:
        models[id(c)] = _train_one(c, directory, train_data, progress, log)
    return [models[id(c)] for c in configs]


def _train_one(config: TrainConfig, directory: Path, train_data, progress, log) -> TrainedModel:
    """Train and save the model of ``config``, going on from its training state if a run was cut off."""
    path = checkpoint_path(directory, config)
    partial = training_state_path(path)  # after every epoch: a model cut off mid-training goes on from there
    trained = train(config, progress=progress, train_data=train_data, state_path=partial, log=log)
    save_checkpoint(trained, path)  # saved at once: an interrupted sweep keeps it
    partial.unlink(missing_ok=True)
    return trained


def _train_batched(configs: list[TrainConfig], directory: Path, train_data, progress, log, retrain: bool = False) -> list[tuple[TrainConfig, TrainedModel]]:
    """Train ``configs`` together (:mod:`dni.batched`), saving each as soon as it converges."""
    state = batched_state_path(directory, configs[0])  # after every epoch: a run cut off goes on from there
    guard_training_state(state, BatchedTrainingState.load(state, configs) is not None, None, configs[0], retrain, log)
    saved = set()

    def save(s: int, trained: TrainedModel) -> None:  # each model as soon as it converges: an interrupted run keeps it
        save_checkpoint(trained, checkpoint_path(directory, configs[s]))
        saved.add(s)

    together = train_batched(configs, progress=progress, train_data=train_data, on_converged=save, state_path=state, log=log)
    for s, trained in enumerate(together):
        if s not in saved:
            save(s, trained)
    state.unlink(missing_ok=True)
    return list(zip(configs, together))


def reusable_points(existing: xr.Dataset | None, config: SweepConfig, models) -> xr.Dataset | None:
    """What of an earlier (possibly interrupted) result file this sweep keeps, else None.

    Everything in it is kept — other presets, σ and repeats too: a sweep never drops a user's
    points — except this sweep's points that lack some of the requested repeats, which become NaN
    and are evaluated again. The file must be joinable (:func:`dni.results.conflicts_with`: same
    data, eval seed, and the very weights of ``models`` where it has their points).
    """
    if existing is None:
        return None
    check_joinable(existing, config.out, dataset=config.data, eval_seed=config.seed, models=models, **config.noises, draws=config.draws)
    ours = {(config.preset, st) for st in config.sigma_train}
    return forget_models(without_incomplete_points(existing, ours, config.repeats), ours)  # their variables: set afresh


_read_existing = read_existing_results


def train_sweep_models(config: SweepConfig, *, progress: bool = True, log=print, client=None) -> list[TrainedModel]:
    """The sweep's model per σtrain, reused from ``config.checkpoint_dir`` or trained there
    (:func:`train_models`; on the Dask cluster of ``client`` when given, :mod:`dni.distributed`)."""
    if client is not None:
        from .distributed import run_tasks

        return run_tasks(client, config, None, progress=progress, log=log)
    train_data = load_sequences(config.data, "train", get_preset(config.preset).data)
    config.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return train_models([config.train_config(s) for s in config.sigma_train], config.checkpoint_dir, train_data,
                        batch=config.batch_models, progress=progress, log=log, retrain=config.retrain)


class SweepResultFile:
    """A sweep's result file; the process that runs the sweep is its only writer.

    It holds what the file held before, as far as this sweep keeps it (:func:`reusable_points`:
    same data, eval seed and weights), plus the points evaluated now (:meth:`add`), and is
    replaced atomically at every write. ``models``: the sweep's trained models, known as they come
    (:meth:`add_model`: a Dask sweep evaluates some models while others still train).
    """

    def __init__(self, config: SweepConfig, started: float, log, to_train=()):
        self.config, self.started, self.log = config, started, log
        self.models: dict[float, TrainedModel] = {}
        self.mine: xr.Dataset | None = None  # the points evaluated by this run
        self.existing = _read_existing(config.out)
        self.earlier = float(self.existing.attrs.get("sweep_seconds", 0.0)) if self.existing is not None else 0.0  # the runs this one resumes
        self.backup: Path | None = None
        # --retrain: the file holds points of models trained anew now, which may get other weights;
        # the old file is kept as a backup before this run first writes it
        held = {float(s) for s in self.existing.sigma_train.values} if self.existing is not None and config.preset in self.existing.arch.values else set()
        self.back_up = bool(config.retrain and held & {c.sigma_train for c in to_train})

    def add_model(self, *models: TrainedModel) -> None:
        """Models of the sweep now trained (or loaded); with ``--retrain``, the file's points of
        earlier weights of them are evaluated again (:func:`dni.results.evaluated_with_other_weights`)."""
        for m in models:
            self.models[m.sigma_train] = m
        if not (self.config.retrain and self.existing is not None):
            return
        problems = conflicts_with(self.existing, dataset=self.config.data, eval_seed=self.config.seed, models=[],
                                  **self.config.noises, draws=self.config.draws)
        stale = evaluated_with_other_weights(self.existing, models)
        if problems or not stale:
            return
        self._keep_backup()
        self.log(f"{self.config.out}: {len(stale)} retrained model(s) are evaluated again; the old file is kept as {self.backup}")
        self.existing = forget_models(self.existing, {(m.arch, m.sigma_train) for m in stale}, points=True)

    def points(self) -> set[tuple[str, float, float]]:
        """The (arch, σtrain, σval) points held now with all repeats, for this sweep's models known so far."""
        kept = self._combined(with_models=False)
        return complete_points(kept, self.config.repeats) if kept is not None else set()

    def add(self, new: xr.Dataset) -> None:
        """Write the points of ``new`` into the file, beside what it holds."""
        new.attrs["dataset"] = self.config.data  # evaluate() calls data it was handed "custom"
        self.mine = new if self.mine is None else merge_results([self.mine, new])
        self._save(self._combined())

    def finish(self) -> xr.Dataset:
        """The whole sweep, written unless the file already holds exactly it."""
        ds = self._combined()
        if self.existing is not None and self.backup is None and _same_results(self.existing, ds):  # a finished sweep run again
            self.log(f"{self.config.out} already holds this sweep; left as it was")
            return self.existing
        self._save(ds)
        return ds

    def _keep_backup(self) -> None:
        if self.backup is None and self.config.out.exists():
            self.backup = move_aside(self.config.out)

    def _save(self, ds: xr.Dataset) -> None:
        if self.back_up and self.backup is None:
            self._keep_backup()
            self.log(f"{self.config.out}: --retrain; the old file is kept as {self.backup}")
        save_results(ds, self.config.out)

    def _combined(self, with_models: bool = True) -> xr.Dataset | None:
        models = list(self.models.values())
        kept = reusable_points(self.existing, self.config, models)
        parts = [p for p in (kept, self.mine) if p is not None]
        if not with_models:
            return merge_results(parts) if parts else None
        ds = merge_results(parts) if parts else None
        if ds is None:
            return None
        ds = ds.reindex(sigma_train=sorted({*self.config.sigma_train, *ds.sigma_train.values.tolist()}),
                        sigma_val=sorted({*self.config.sigma_val, *ds.sigma_val.values.tolist()}))
        ds.attrs["sweep_seconds"] = round(self.earlier + time.perf_counter() - self.started, 1)  # wall time so far, summed over resumes
        return with_model_variables(ds, models)  # every model's, also of those with no point evaluated yet


def run_sweep(config: SweepConfig | None = None, *, progress: bool = True, log=print, client=None, **overrides) -> xr.Dataset:
    """Train one model per σtrain, evaluate all at every σval × repeats, save the NetCDF file.

    Resumable: trained models are kept as checkpoints as soon as they finish, and the result
    file is rewritten (atomically) after every evaluated (model, σval) point; a sweep started
    again with the same settings reuses both, so an interrupted run continues where it stopped.

    Where it runs: in this process (default); on a Dask cluster with ``config.workers`` (a
    ``LocalCluster`` of that many processes) or ``config.scheduler``, or on the cluster of an open
    ``distributed.Client`` given as ``client`` (:mod:`dni.distributed`). The results are the same,
    bit for bit, with one torch thread per process.
    """
    config = config or SweepConfig(**overrides)
    from .distributed import sweep_client

    with sweep_client(config, client, log) as cluster:  # before anything is written: an unreachable scheduler stops it
        if len(config.noise_pairs) > 1:
            return _run_noise_grid(config, progress, log, cluster)
        return _run_one(config, progress, log, cluster)


def _run_one(config: SweepConfig, progress: bool, log, client) -> xr.Dataset:
    """:func:`run_sweep` of one (train noise, eval noise) pair."""
    started = time.perf_counter()
    # before any work: a result file this sweep could not join stops it now, not after hours of training
    check_joinable(_read_existing(config.out), config.out, dataset=config.data, eval_seed=config.seed, models=[], **config.noises,
                   draws=config.draws)
    if client is not None:
        from .distributed import run_tasks

        return run_tasks(client, config, started, progress=progress, log=log)
    test_data = load_sequences(config.data, "test", get_preset(config.preset).data)  # fails early on missing data
    models = train_sweep_models(config, progress=progress, log=log)
    result = SweepResultFile(config, started, log)
    result.add_model(*models)
    done = result.points()
    total = len(models) * len(config.sigma_val)
    if done:
        log(f"resuming {config.out}: {len(done)} of {total} points already evaluated")
    with tqdm(total=total, initial=len(done), desc="evaluate", disable=not progress, unit="point") as bar:
        for m in models:
            todo = [s for s in config.sigma_val if (m.arch, m.sigma_train, s) not in done]
            if todo:
                evaluate([m], todo, config.repeats, data=test_data, seed=config.seed, device=config.device, bar=bar,
                         on_point=result.add, eval_noise=config.eval_noise, draws=config.draws)
    return result.finish()


def _same_results(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether ``a`` and ``b`` hold the same data and attrs, apart from when and how long they were computed."""
    when = ("created", "sweep_seconds")
    return a.drop_attrs(deep=False).identical(b.drop_attrs(deep=False)) and \
        {k: v for k, v in a.attrs.items() if k not in when} == {k: v for k, v in b.attrs.items() if k not in when}
