"""Reusing trained models: a checkpoint (or training state) of the same settings is loaded or resumed,
one of other settings stops the run unless ``--retrain`` (then it is kept aside as ``.bak-<time>``).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from dni.errors import CheckpointConflictError, CheckpointError
from dni.store.checkpoints import TrainedModel, TrainingState, load_checkpoint
from dni.store.layout import checkpoint_path, effective_train_noise
from dni.store.recipe import TrainConfig
from dni.util.io import move_aside


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
    """:func:`guard_training_state` for one model's ``*.partial`` (:class:`dni.store.checkpoints.TrainingState`)."""
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


def converged_before_either_limit(cached: TrainedModel, config: TrainConfig) -> bool:
    """Whether training ``config`` would give ``cached``'s model: the settings differ only in the epoch
    limit, and ``cached`` stopped on its convergence criterion (patience) before both limits.

    Training is deterministic given the settings, and the limit only ends the epoch loop, so raising
    the limit (or lowering it to more than the epochs run) does not retrain a converged model.
    """
    run = len(cached.history)
    return (cached.config.patience is not None and same_settings(replace(cached.config, epochs=config.epochs), config)
            and run < cached.config.epochs and run < config.epochs)
