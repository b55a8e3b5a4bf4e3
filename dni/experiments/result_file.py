"""A sweep's result file, written as points finish: the only writer of ``--out``; keeps the points of the
file outside the sweep's grid and never leaves it half-written (:func:`dni.util.io.atomic_path`).
"""

from __future__ import annotations

import time
from pathlib import Path

import xarray as xr

from dni.experiments.config import SweepConfig
from dni.store.checkpoints import TrainedModel
from dni.store.results import (
    check_joinable,
    complete_points,
    conflicts_with,
    evaluated_with_other_weights,
    forget_models,
    merge_results,
    compact_train_seed,
    read_existing_results,
    save_results,
    with_train_seed_dim,
    seed_slice,
    with_seed_slice,
    with_model_variables,
    without_incomplete_points,
)
from dni.util.io import move_aside

_read_existing = read_existing_results



def reusable_points(existing: xr.Dataset | None, config: SweepConfig, models) -> xr.Dataset | None:
    """What of an earlier (possibly interrupted) result file this sweep keeps, else None.

    Everything in it is kept — other presets, σ and repeats too: a sweep never drops a user's
    points — except this sweep's points that lack some of the requested repeats, which become NaN
    and are evaluated again. The file must be joinable (:func:`dni.store.results.conflicts_with`: same
    data, eval seed, and the very weights of ``models`` where it has their points).
    """
    if existing is None:
        return None
    check_joinable(existing, config.out, dataset=config.data, eval_seed=config.seed, models=models, **config.noises, draws=config.draws)
    ours = {(config.preset, st) for st in config.sigma_train}
    return forget_models(without_incomplete_points(existing, ours, config.repeats, config.sigma_val), ours)  # their variables: set afresh


class SweepResultFile:
    """A sweep's result file; the process that runs the sweep is its only writer.

    One training seed's sweep (``config.train_seed``) works on that seed's slice of the file
    (:func:`dni.store.results.seed_slice`); the other seeds' points and models are kept as they are
    and the slice is put back at every write (:func:`dni.store.results.with_seed_slice`).

    It holds what the file held before, as far as this sweep keeps it (:func:`reusable_points`:
    same data, eval seed and weights), plus the points evaluated now (:meth:`add`), and is
    replaced atomically at every write. ``models``: the sweep's trained models, known as they come
    (:meth:`add_model`: a Dask sweep evaluates some models while others still train).
    """

    def __init__(self, config: SweepConfig, started: float, log, to_train=()):
        self.config, self.started, self.log = config, started, log
        self.models: dict[float, TrainedModel] = {}
        self.mine: xr.Dataset | None = None  # the points evaluated by this run
        self.whole = _read_existing(config.out)  # every training seed (a train_seed dim)
        self.whole = with_train_seed_dim(self.whole, config.out) if self.whole is not None else None
        self.train_seed = config.train_seed
        self.existing = seed_slice(self.whole, self.train_seed)  # this sweep's seed, in the one-seed schema
        self.earlier = float(self.existing.attrs.get("sweep_seconds", 0.0)) if self.existing is not None else 0.0  # the runs this one resumes
        self.backup: Path | None = None
        # --retrain: the file holds points of models trained anew now, which may get other weights;
        # the old file is kept as a backup before this run first writes it
        held = {float(s) for s in self.existing.sigma_train.values} if self.existing is not None and config.preset in self.existing.arch.values else set()
        self.back_up = bool(config.retrain and held & {c.sigma_train for c in to_train})

    def add_model(self, *models: TrainedModel) -> None:
        """Models of the sweep now trained (or loaded); with ``--retrain``, the file's points of
        earlier weights of them are evaluated again (:func:`dni.store.results.evaluated_with_other_weights`)."""
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
        whole = with_seed_slice(self.whole, self.train_seed, ds)
        if self.whole is not None and self.backup is None and _same_results(self.whole, whole):  # a finished sweep run again
            self.log(f"{self.config.out} already holds this sweep; left as it was")
            return compact_train_seed(self.whole)
        self._save(ds)
        return compact_train_seed(whole)

    def _keep_backup(self) -> None:
        if self.backup is None and self.config.out.exists():
            self.backup = move_aside(self.config.out)

    def _save(self, ds: xr.Dataset) -> None:
        if self.back_up and self.backup is None:
            self._keep_backup()
            self.log(f"{self.config.out}: --retrain; the old file is kept as {self.backup}")
        save_results(with_seed_slice(self.whole, self.train_seed, ds), self.config.out)

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


def _same_results(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether ``a`` and ``b`` hold the same data and attrs, apart from when and how long they were computed."""
    when = ("created", "sweep_seconds")
    return a.drop_attrs(deep=False).identical(b.drop_attrs(deep=False)) and \
        {k: v for k, v in a.attrs.items() if k not in when} == {k: v for k, v in b.attrs.items() if k not in when}
