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
    A mismatch grid (dim ``train_noise``): every model :func:`locate_checkpoints` finds there (CRC-checked).
    """
    if "train_noise" in ds.dims:
        located = locate_checkpoints(ds, [directory])
        return {(arch, st): path for (arch, _, st, _), path in reversed(list(located.items()))}
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


def checkpoint_dirs(result) -> list[Path]:
    """The folders a result file's models may live in, nearest first: ``<result>_checkpoints/`` (as
    ``dni sweep`` writes it), ``<result>/checkpoints/`` (a grid's own folder, e.g. ``results/noise_kinds/``)
    and every other ``*_checkpoints/`` folder beside the result (models a grid reuses, e.g. the paper's
    additive-trained ones in ``results/dni_paper_checkpoints/``). Only existing folders are listed."""
    result = Path(result)
    candidates = [default_checkpoint_dir(result), result.with_suffix("") / "checkpoints",
                  *sorted(result.parent.glob("*_checkpoints"))]
    return [d for d in dict.fromkeys(candidates) if d.is_dir()]


def model_entries(ds) -> list[dict]:
    """One dict per model a result set holds points of: ``train_noise``, ``arch``, ``sigma_train``,
    ``train_seed`` and ``model_crc`` (None where the file records none); works on the paper's schema,
    the mismatch grid (dim ``train_noise``) and files with a ``train_seed`` dim alike."""
    from dni.noise.catalogue import PAPER

    if "model_crc" in ds:
        table = ds["model_crc"].to_dataframe().reset_index()
    else:
        import itertools

        import pandas as pd

        table = pd.DataFrame([{"arch": a, "sigma_train": s} for a, s in itertools.product(ds.arch.values, ds.sigma_train.values)])
        table["model_crc"] = float("nan")
    seeds = ds["train_seed"].to_dataframe().reset_index() if "train_seed" in ds and "train_seed" not in ds.dims else None
    acc = ds.accuracy
    entries = []
    for row in table.to_dict("records"):
        where = {k: row[k] for k in ("train_noise", "arch", "sigma_train", "train_seed") if k in acc.dims and k in row}
        if not bool(acc.sel(where).notnull().any()):
            continue  # no points of this model: it was not run
        seed = row.get("train_seed") if "train_seed" in ds.dims else None
        if seed is None and seeds is not None:
            match = seeds[(seeds.arch == row["arch"]) & (seeds.sigma_train == row["sigma_train"])
                          & ((seeds.train_noise == row["train_noise"]) if "train_noise" in seeds else True)]
            seed = match.train_seed.iloc[0] if len(match) else 0
        crc = row.get("model_crc")
        entries.append({"train_noise": str(row.get("train_noise", ds.attrs.get("train_noise", PAPER))), "arch": str(row["arch"]),
                        "sigma_train": float(row["sigma_train"]), "train_seed": int(seed) if seed == seed and seed is not None else 0,
                        "model_crc": int(crc) if crc == crc and crc is not None else None})
    return entries


_CRC_CACHE: dict = {}


def _file_crc(path: Path) -> int:
    """CRC-32 of the weights in checkpoint ``path`` (cached by path, size and mtime)."""
    from dni.store.checkpoints import load_checkpoint
    from dni.store.results import model_crc

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CRC_CACHE:
        _CRC_CACHE[key] = model_crc(load_checkpoint(path).model)
    return _CRC_CACHE[key]


def locate_checkpoints(ds, directories) -> dict[tuple, Path]:
    """{(arch, train noise, σtrain, train seed): checkpoint path} for the models of ``ds`` found in any of
    ``directories`` (searched in order). A model's file is looked up by name (:func:`checkpoint_path`)
    and accepted only if its weights have the CRC the result records (``model_crc``), so that a folder
    of other weights under the same name is never shown as this result's model."""
    found = {}
    for e in model_entries(ds):
        config = TrainConfig(preset=e["arch"], sigma_train=e["sigma_train"], seed=e["train_seed"], train_noise=e["train_noise"])
        for directory in directories:
            path = checkpoint_path(Path(directory), config)
            if path.exists() and (e["model_crc"] is None or _file_crc(path) == e["model_crc"]):
                found[(e["arch"], e["train_noise"], e["sigma_train"], e["train_seed"])] = path
                break
    return found
