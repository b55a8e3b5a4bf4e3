"""A σtrain × σval sweep of one preset: train (or reuse) one model per σtrain, evaluate, save.

This is the paper's experiment (§III: σtrain, σval ∈ {0, 0.1, …, 1.0}, 40 repeats) with the
settings as arguments. Checkpoints go to a folder beside the result file; a model whose
checkpoint already exists with the same training config is loaded, not retrained (so is one that
converged before its epoch limit, when only the limit differs: :func:`converged_before_either_limit`;
and one trained on another device: :func:`same_settings`). A model cut off mid-training continues
from its last finished epoch (``<checkpoint>.partial``, removed once the checkpoint is written);
so does a model-batched run (``<preset>_batched_seed<seed>.pt.partial``). The sweep runs in this
process, or as tasks on a Dask cluster (:mod:`dni.experiments.dask_cluster`); either way this process alone
writes the checkpoints and the result file (:class:`SweepResultFile`).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import xarray as xr

from dni.data import load_sequences
from dni.evaluation.evaluate import evaluate
from dni.experiments.config import SweepConfig
from dni.experiments.result_file import SweepResultFile, _read_existing
from dni.experiments.reuse import (
    cached_model,
    guard_model_training_state,
    guard_training_state,
)
from dni.nn.presets import get_preset
from dni.nn.stacked import BATCHABLE_CELLS
from dni.noise.spec import parse_noise
from dni.store.checkpoints import BatchedTrainingState, TrainedModel, save_checkpoint
from dni.store.layout import batched_state_path, checkpoint_path, training_state_path
from dni.store.recipe import TrainConfig
from dni.store.results import check_joinable, merge_results, noise_of, save_results
from dni.training.batched import train_batched
from dni.training.train import train
from dni.util.io import check_writable_dir
from dni.util.progress import tqdm


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
                       **{k: v for k, v in noise_of(existing).items()}, draws=config.draws, grid=True)
    parts.mkdir(parents=True, exist_ok=True)
    results = []
    for train_noise, eval_noise in config.noise_pairs:
        slug = lambda s: re.sub(r"[^A-Za-z0-9_.]+", "-", s).strip("-")  # noqa: E731
        part = parts / f"{config.preset}_train-{slug(train_noise)}_eval-{slug(eval_noise)}.nc"
        log(f"noise pair: trained under {train_noise}, evaluated under {eval_noise} → {part}")
        # a fixed kind (no strength for σval to set: adc, pcm(t=…)) is one point of the grid, at σval 0 (results schema)
        sigma_val = config.sigma_val if parse_noise(eval_noise).scaled else [0.0]
        sub = replace(config, train_noise=train_noise, eval_noise=eval_noise, out=part, checkpoint_dir=config.checkpoint_dir,
                      sigma_val=sigma_val)
        results.append(_run_one(sub, progress, log, client))
    merged = merge_results(([existing] if existing is not None else []) + results)
    save_results(merged, config.out)
    return merged


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
    """Train ``configs`` together (:mod:`dni.training.batched`), saving each as soon as it converges."""
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




def train_sweep_models(config: SweepConfig, *, progress: bool = True, log=print, client=None) -> list[TrainedModel]:
    """The sweep's model per σtrain (and training seed, one seed after the other), reused from
    ``config.checkpoint_dir`` or trained there (:func:`train_models`; on the Dask cluster of ``client``
    when given, :mod:`dni.experiments.dask_cluster`)."""
    if len(config.seeds) > 1:
        return [m for k in config.seeds for m in train_sweep_models(config.for_seed(k), progress=progress, log=log, client=client)]
    if client is not None:
        from dni.experiments.dask_cluster import run_tasks

        return run_tasks(client, config, None, progress=progress, log=log)
    train_data = load_sequences(config.data, "train", get_preset(config.preset).data)
    config.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return train_models([config.train_config(s) for s in config.sigma_train], config.checkpoint_dir, train_data,
                        batch=config.batch_models, progress=progress, log=log, retrain=config.retrain)


def run_sweep(config: SweepConfig | None = None, *, progress: bool = True, log=print, client=None, **overrides) -> xr.Dataset:
    """Train one model per σtrain, evaluate all at every σval × repeats, save the NetCDF file.

    Resumable: trained models are kept as checkpoints as soon as they finish, and the result
    file is rewritten (atomically) after every evaluated (model, σval) point; a sweep started
    again with the same settings reuses both, so an interrupted run continues where it stopped.

    Where it runs: in this process (default); on a Dask cluster with ``config.workers`` (a
    ``LocalCluster`` of that many processes) or ``config.scheduler``, or on the cluster of an open
    ``distributed.Client`` given as ``client`` (:mod:`dni.experiments.dask_cluster`). The results are the same,
    bit for bit, with one torch thread per process.
    """
    config = config or SweepConfig(**overrides)
    from dni.experiments.dask_cluster import sweep_client

    with sweep_client(config, client, log) as cluster:  # before anything is written: an unreachable scheduler stops it
        if len(config.noise_pairs) > 1:
            return _run_noise_grid(config, progress, log, cluster)
        return _run_one(config, progress, log, cluster)


def _run_one(config: SweepConfig, progress: bool, log, client) -> xr.Dataset:
    """:func:`run_sweep` of one (train noise, eval noise) pair: one training seed after the other
    (issue 34), each a sweep of its own models into its slice of the file (:class:`SweepResultFile`),
    so a seed already in the file is reused untouched and a run cut off mid-seed resumes there."""
    if len(config.seeds) > 1:
        result = None
        for k in config.seeds:
            log(f"training seed {k} ({config.seeds.index(k) + 1} of {len(config.seeds)})")
            result = _run_one_seed(config.for_seed(k), progress, log, client)
        return result
    return _run_one_seed(config, progress, log, client)


def _run_one_seed(config: SweepConfig, progress: bool, log, client) -> xr.Dataset:
    """:func:`run_sweep` of one (train noise, eval noise) pair and one training seed."""
    started = time.perf_counter()
    # before any work: a result file this sweep could not join stops it now, not after hours of training
    check_joinable(_read_existing(config.out), config.out, dataset=config.data, eval_seed=config.seed, models=[], **config.noises,
                   draws=config.draws)
    if client is not None:
        from dni.experiments.dask_cluster import run_tasks

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
