"""A σtrain × σval sweep of one preset: train (or reuse) one model per σtrain, evaluate, save.

This is the paper's experiment (§III: σtrain, σval ∈ {0, 0.1, …, 1.0}, 40 repeats) with the
settings as arguments. Checkpoints go to a folder beside the result file; a model whose
checkpoint already exists with the same training config is loaded, not retrained (so is one that
converged before its epoch limit, when only the limit differs: :func:`converged_before_either_limit`;
and one trained on another device: :func:`same_settings`). A model cut off mid-training continues
from its last finished epoch (``<checkpoint>.partial``, removed once the checkpoint is written);
so does a model-batched run (``<preset>_batched_seed<seed>.pt.partial``). Sweeps that share the
folder split the training: a process locks each model it trains (:func:`model_lock`). The same
sweep in several processes also splits the evaluation, model by model (:func:`result_lock`), into
one result file (:class:`SharedResultFile`).
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import xarray as xr
from filelock import FileLock, Timeout
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
    """These four: the recipe options of :class:`dni.train.TrainConfig` (issue 26), passed to every model."""
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

    def __post_init__(self):
        get_preset(self.preset)
        self.train_noise, self.eval_noise = _noise_labels(self.train_noise, "train_noise"), _noise_labels(self.eval_noise, "eval_noise")
        # σ lists may come as text ("0:1:0.1", "0,0.5,1"), e.g. from papermill -p
        self.sigma_train = parse_sigmas(self.sigma_train, "sigma_train") if isinstance(self.sigma_train, str) else validate_sigmas(self.sigma_train, "sigma_train")
        self.sigma_val = parse_sigmas(self.sigma_val, "sigma_val") if isinstance(self.sigma_val, str) else validate_sigmas(self.sigma_val, "sigma_val")
        self.repeats = validate_repeats(self.repeats)
        self.draws = validate_draws(self.draws)
        self.device = validate_device(self.device)
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
                           weight_decay=self.weight_decay, optimiser=self.optimiser, train_noise=train_noise or self.train_noise)

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


def _run_noise_grid(config: "SweepConfig", progress: bool, log) -> xr.Dataset:
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
        results.append(run_sweep(sub, progress=progress, log=log))
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


def model_lock(checkpoint: Path) -> FileLock:
    """The lock a process holds while it trains the model of ``checkpoint`` (``.locks/<checkpoint>.lock``
    in its folder; the lock files stay, as removing one could let two processes hold it).

    Sweeps that share a checkpoint folder (e.g. one per core, ``OMP_NUM_THREADS=1``) thereby split
    the models between them instead of training one twice. The operating system releases the lock
    when its process ends, however it ends, so a killed process never blocks the others.
    """
    return _lock_in(checkpoint.parent, checkpoint.name)


def _lock_in(folder: Path, name: str) -> FileLock:
    """The lock ``name`` in ``folder/.locks/`` (the lock files stay: removing one could let two processes hold it)."""
    locks = folder / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(locks / (name + ".lock"))


def train_models(configs: list[TrainConfig], directory: Path, train_data=None, *, batch=False, progress=True, log=print,
                 wait: bool = True, retrain: bool = False) -> list[TrainedModel | None]:
    """Trained models for ``configs``: reused from checkpoints, else trained (together if ``batch``) and saved.

    A model another process is training (its :func:`model_lock` is held) is left to it: the others
    are trained first, then this waits for that checkpoint and loads it, or, if that process died,
    goes on from its last finished epoch. With ``wait=False`` it is not waited for (None in its place).
    """
    models = {id(c): cached_model(c, directory, log, retrain) for c in configs}
    todo = [c for c in configs if models[id(c)] is None]
    if batch and len(todo) > 1 and get_preset(todo[0].preset).cell in BATCHABLE_CELLS:
        for c, trained in _train_batched(todo, directory, train_data, progress, log, retrain):
            models[id(c)] = trained
        todo = [c for c in todo if models[id(c)] is None]  # those other processes are training
    busy = []
    for c in todo:
        models[id(c)] = _train_one(c, directory, train_data, progress, log, wait=False, retrain=retrain)
        if models[id(c)] is None:
            busy.append(c)
            log(f"left to the process training it: {checkpoint_path(directory, c)}")
    for c in busy if wait else ():
        log(f"waiting for {checkpoint_path(directory, c)}: another process is training it")
        models[id(c)] = _train_one(c, directory, train_data, progress, log, wait=True, retrain=retrain)
    return [models[id(c)] for c in configs]


def _train_one(config: TrainConfig, directory: Path, train_data, progress, log, *, wait: bool, retrain: bool = False) -> TrainedModel | None:
    """Train and save the model of ``config`` holding its lock; None if another process holds it and not ``wait``."""
    path = checkpoint_path(directory, config)
    with ExitStack() as held:
        if not _try_lock(held, model_lock(path), wait):
            return None
        if (finished := _finished_meanwhile(config, directory, log)) is not None:
            return finished
        partial = training_state_path(path)  # after every epoch: a model cut off mid-training goes on from there
        guard_model_training_state(partial, config, retrain, log)
        trained = train(config, progress=progress, train_data=train_data, state_path=partial, log=log)
        save_checkpoint(trained, path)  # saved at once: an interrupted sweep keeps it
        partial.unlink(missing_ok=True)
        return trained


def _train_batched(configs: list[TrainConfig], directory: Path, train_data, progress, log, retrain: bool = False) -> list[tuple[TrainConfig, TrainedModel]]:
    """Train together those of ``configs`` no other process is training (:mod:`dni.batched`), saving
    each as soon as it converges; [] if another batched run of this preset holds the folder."""
    state = batched_state_path(directory, configs[0])  # after every epoch: a run cut off goes on from there
    with ExitStack() as held:
        if not _try_lock(held, model_lock(state)):
            return []
        locks, mine, done = {}, [], []
        for c in configs:
            lock = model_lock(checkpoint_path(directory, c))
            if not _try_lock(held, lock):
                continue  # another process is training it
            locks[id(c)] = lock
            finished = _finished_meanwhile(c, directory, log)
            if finished is None:
                mine.append(c)
            else:
                done.append((c, finished))
        if not mine:
            return done
        guard_training_state(state, BatchedTrainingState.load(state, mine) is not None, None, mine[0], retrain, log)

        def save(s: int, trained: TrainedModel) -> None:  # each model as soon as it converges: an interrupted run keeps it
            save_checkpoint(trained, checkpoint_path(directory, mine[s]))
            saved.add(s)
            locks[id(mine[s])].release()

        saved = set()
        together = train_batched(mine, progress=progress, train_data=train_data, on_converged=save, state_path=state, log=log)
        for s, trained in enumerate(together):
            if s not in saved:
                save(s, trained)
        state.unlink(missing_ok=True)
        return done + list(zip(mine, together))


def _try_lock(held: ExitStack, lock: FileLock, wait: bool = False) -> bool:
    """Take ``lock`` (waiting for it if ``wait``), released when ``held`` closes; False if another process holds it."""
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return False
    held.callback(lock.release)
    return True


def _finished_meanwhile(config: TrainConfig, directory: Path, log) -> TrainedModel | None:
    """The checkpoint of ``config`` if another process saved it since :func:`train_models` first looked."""
    path = checkpoint_path(directory, config)
    finished = cached_model(config, directory, log=lambda _: None) if path.exists() else None
    if finished is not None:
        log(f"reusing {path}: another process trained it")
    return finished


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


def _drop_retrained(existing: xr.Dataset, config: SweepConfig, models, log) -> xr.Dataset:
    """With ``--retrain``: the points of models whose weights changed are evaluated again; the old file is kept as a backup."""
    problems = conflicts_with(existing, dataset=config.data, eval_seed=config.seed, models=[], **config.noises, draws=config.draws)
    stale = evaluated_with_other_weights(existing, models)
    if problems or not stale:
        return existing
    log(f"{config.out}: {len(stale)} retrained model(s) are evaluated again; the old file is kept as {move_aside(config.out)}")
    return forget_models(existing, {(m.arch, m.sigma_train) for m in stale}, points=True)


def train_sweep_models(config: SweepConfig, *, progress: bool = True, log=print, wait: bool = True) -> list[TrainedModel | None]:
    """The sweep's model per σtrain, reused from ``config.checkpoint_dir`` or trained there (:func:`train_models`;
    ``wait=False``: None for a model another process is training)."""
    train_data = load_sequences(config.data, "train", get_preset(config.preset).data)
    config.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return train_models([config.train_config(s) for s in config.sigma_train], config.checkpoint_dir, train_data,
                        batch=config.batch_models, progress=progress, log=log, wait=wait, retrain=config.retrain)


def result_lock(out: Path, model: str | None = None) -> FileLock:
    """The lock on the result file ``out`` a process holds while it rewrites it, or, with ``model`` (a
    checkpoint's name), while it evaluates that model's points; in ``.locks/`` beside ``out``, as
    :func:`model_lock`'s."""
    return _lock_in(out.parent, out.name + (f".{model}" if model else ""))


class SharedResultFile:
    """A sweep's result file, which the processes running the same sweep write together.

    Every write takes the file's :func:`result_lock`, reads what is there now (other processes'
    points too, as far as :func:`reusable_points` keeps them: same data, eval seed and weights),
    adds the points this process evaluated and replaces the file atomically. ``models`` holds None
    for a model another process is still training; it is loaded once its checkpoint exists, so the
    points that process evaluates are kept.
    """

    def __init__(self, config: SweepConfig, models: list[TrainedModel | None], started: float, log):
        self.config, self.models, self.started, self.log = config, models, started, log
        self.configs = [config.train_config(s) for s in config.sigma_train]
        self.lock = result_lock(config.out)
        self.mine: xr.Dataset | None = None  # the points this process evaluated
        with self.lock:
            self.existing = _read_existing(config.out)
            if self.existing is not None and config.retrain:
                self.existing = _drop_retrained(self.existing, config, self.ready(), log)
        kept = reusable_points(self.existing, config, self.ready())
        self.earlier = float(kept.attrs.get("sweep_seconds", 0.0)) if kept is not None else 0.0  # the runs this one resumes

    def ready(self) -> list[TrainedModel]:
        """The sweep's trained models, loading those other processes have finished since."""
        for i, m in enumerate(self.models):
            if m is None and checkpoint_path(self.config.checkpoint_dir, self.configs[i]).exists():
                self.models[i] = cached_model(self.configs[i], self.config.checkpoint_dir, log=lambda _: None)
        return [m for m in self.models if m is not None]

    def points(self) -> set[tuple[str, float, float]]:
        """The (arch, σtrain, σval) points the file holds now with all repeats, for this sweep's models."""
        with self.lock:
            kept = self._kept()
        return complete_points(kept, self.config.repeats) if kept is not None else set()

    def add(self, new: xr.Dataset) -> None:
        """Write ``new`` (points this process evaluated) into the file, beside what it holds now."""
        new.attrs["dataset"] = self.config.data  # evaluate() calls data it was handed "custom"
        self.mine = new if self.mine is None else merge_results([self.mine, new])
        with self.lock:
            save_results(self._combined(), self.config.out)

    def finish(self) -> xr.Dataset:
        """The whole sweep, written unless the file already holds exactly it."""
        with self.lock:
            ds = self._combined()
            if self.existing is not None and _same_results(self.existing, ds):  # a finished sweep run again
                self.log(f"{self.config.out} already holds this sweep; left as it was")
                return self.existing
            save_results(ds, self.config.out)
        return ds

    def _kept(self) -> xr.Dataset | None:
        now = _read_existing(self.config.out)
        if now is None or (self.existing is not None and now.attrs.get("created") == self.existing.attrs.get("created")):
            now = self.existing  # nobody wrote it since (with --retrain: what is kept of it, the file itself moved aside)
        return reusable_points(now, self.config, self.ready())

    def _combined(self) -> xr.Dataset:
        kept = self._kept()
        ds = merge_results([p for p in (kept, self.mine) if p is not None])
        ds = ds.reindex(sigma_train=sorted({*self.config.sigma_train, *ds.sigma_train.values.tolist()}),
                        sigma_val=sorted({*self.config.sigma_val, *ds.sigma_val.values.tolist()}))
        elapsed = self.earlier + time.perf_counter() - self.started
        others = float(kept.attrs.get("sweep_seconds", 0.0)) if kept is not None else 0.0  # processes alongside this one
        ds.attrs["sweep_seconds"] = round(max(elapsed, others), 1)  # wall time so far, summed over resumes
        return with_model_variables(ds, self.ready())  # every model's, also of those with no point evaluated yet


def run_sweep(config: SweepConfig | None = None, *, progress: bool = True, log=print, **overrides) -> xr.Dataset:
    """Train one model per σtrain, evaluate all at every σval × repeats, save the NetCDF file.

    Resumable: trained models are kept as checkpoints as soon as they finish, and the result
    file is rewritten (atomically) after every (model, σval) point; a sweep started again with
    the same settings reuses both, so an interrupted run continues where it stopped.

    Sweeps with the same settings started in several processes share the work: each trains the
    models no other is training (:func:`train_models`), evaluates, model by model, those no other
    is evaluating (each under its :func:`result_lock`), and writes its points into the one result
    file (:class:`SharedResultFile`). A process that runs out of models of its own waits for the
    others' and takes over any whose process died.
    """
    config = config or SweepConfig(**overrides)
    if len(config.noise_pairs) > 1:
        return _run_noise_grid(config, progress, log)
    started = time.perf_counter()
    # before any work: a result file this sweep could not join stops it now, not after hours of training
    check_joinable(_read_existing(config.out), config.out, dataset=config.data, eval_seed=config.seed, models=[], **config.noises,
                   draws=config.draws)
    test_data = load_sequences(config.data, "test", get_preset(config.preset).data)  # fails early on missing data
    models = train_sweep_models(config, progress=progress, log=log, wait=False)  # None: another process is training it
    result = SharedResultFile(config, models, started, log)
    done = result.points()
    total = len(models) * len(config.sigma_val)
    if done:
        log(f"resuming {config.out}: {len(done)} of {total} points already evaluated")

    def evaluate_model(i: int, *, wait: bool) -> bool:
        """Evaluate model ``i``'s points the file lacks, holding its lock; False if another process holds it."""
        with ExitStack() as held:
            if not _try_lock(held, result_lock(config.out, checkpoint_path(config.checkpoint_dir, result.configs[i]).name), wait):
                return False
            if models[i] is None:  # trained by another process: wait for it (or take it over, if that process died)
                models[i] = train_models([result.configs[i]], config.checkpoint_dir, progress=progress, log=log, retrain=config.retrain)[0]
            done = result.points()
            bar.n = len(done)
            bar.refresh()
            m = models[i]
            todo = [s for s in config.sigma_val if (m.arch, m.sigma_train, s) not in done]
            if todo:
                evaluate([m], todo, config.repeats, data=test_data, seed=config.seed, device=config.device, bar=bar,
                         on_point=result.add, eval_noise=config.eval_noise, draws=config.draws)
        return True

    with tqdm(total=total, initial=len(done), desc="evaluate", disable=not progress, unit="point") as bar:
        left = []  # models other processes are training or evaluating
        for i in range(len(models)):
            result.ready()
            if models[i] is None or not evaluate_model(i, wait=False):
                left.append(i)
        for i in left:
            path = checkpoint_path(config.checkpoint_dir, result.configs[i])
            log(f"waiting for {path}: another process is training it" if models[i] is None else
                f"waiting for the process evaluating {path}")
            evaluate_model(i, wait=True)
    return result.finish()


def _same_results(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether ``a`` and ``b`` hold the same data and attrs, apart from when and how long they were computed."""
    when = ("created", "sweep_seconds")
    return a.drop_attrs(deep=False).identical(b.drop_attrs(deep=False)) and \
        {k: v for k, v in a.attrs.items() if k not in when} == {k: v for k, v in b.attrs.items() if k not in when}
