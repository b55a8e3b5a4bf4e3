"""Where a model's files live in a checkpoint folder: ``<preset>[_<train noise>]_sigma<σ>_seed<seed>.pt``, its
training state beside it (``.partial``), a model-batched run's state, and the folder beside a result file.
"""

from __future__ import annotations

import re
from pathlib import Path

from dni.noise.catalogue import PAPER
from dni.store.recipe import TrainConfig
from dni.util.validation import sigma_label


def checkpoint_path(directory: Path, config: TrainConfig) -> Path:
    """``<preset>[_<train noise>]_sigma<σ>_seed<seed>.pt``; the paper's additive noise is not named (the committed names)."""
    train_noise = effective_train_noise(config)  # σtrain 0 of any kind: the paper's noiseless model
    noise = "" if train_noise == PAPER else "_" + re.sub(r"[^A-Za-z0-9_.]+", "-", train_noise).strip("-")
    return Path(directory) / f"{config.preset}{noise}_sigma{sigma_label(config.sigma_train)}_seed{config.seed}.pt"


def training_state_path(checkpoint: Path) -> Path:
    """Where the model of ``checkpoint`` keeps its training state while it trains (:class:`dni.store.checkpoints.TrainingState`)."""
    return checkpoint.with_name(checkpoint.name + ".partial")


def batched_state_path(directory: Path, config: TrainConfig) -> Path:
    """Where a model-batched run of ``config.preset`` keeps its state (:class:`dni.store.checkpoints.BatchedTrainingState`)."""
    return Path(directory) / f"{config.preset}_batched_seed{config.seed}.pt.partial"


def default_checkpoint_dir(out: Path) -> Path:
    return out.with_name(out.stem + "_checkpoints")


def find_checkpoints(ds, directory, train_seed: int | None = None) -> dict[tuple[str, float], Path]:
    """{(arch, σtrain): checkpoint path} for the models of result set ``ds`` found in ``directory``.

    A result with a ``train_seed`` dim (issue 34): the models of ``train_seed`` (default: its first seed).
    """
    found = {}
    if "train_seed" in ds.dims:
        k = int(ds.train_seed.values[0]) if train_seed is None else int(train_seed)
        if k not in ds.train_seed.values:
            return {}
        held = ds.model_crc.sel(train_seed=k) if "model_crc" in ds else None
    for arch in ds.arch.values.tolist():
        for st in ds.sigma_train.values.tolist():
            if "train_seed" in ds.dims:
                seed = k if held is None or held.sel(arch=arch, sigma_train=st).item() == held.sel(arch=arch, sigma_train=st).item() else float("nan")
            else:
                seed = ds.train_seed.sel(arch=arch, sigma_train=st).item() if "train_seed" in ds else 0
            if seed != seed:  # NaN: this (arch, σtrain) was not run
                continue
            path = checkpoint_path(Path(directory), TrainConfig(preset=arch, sigma_train=st, seed=int(seed),
                                                                train_noise=ds.attrs.get("train_noise", PAPER)))
            if path.exists():
                found[(arch, float(st))] = path
    return found


def effective_train_noise(config: TrainConfig) -> str:
    """``config.train_noise``, or the paper's label where it draws nothing at σtrain (every kind at 0 is the same model)."""
    from dni.noise.base import (
        NOISELESS,  # (torch: imported when asked, not with the module)
    )
    from dni.noise.session import noise_for

    return PAPER if noise_for(config.train_noise, config.sigma_train) == NOISELESS else config.train_noise
