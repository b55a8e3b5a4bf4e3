"""The flat module names of dni ≤ 0.1 (``dni.sweep``, ``dni.noise_spec``, …), still importable with a
:class:`DeprecationWarning` that names the new home. Each old name is a module whose attributes are
looked up in the modules its contents moved to (the layered tree, :mod:`dni`)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED: dict[str, tuple[str, ...]] = {
    "dni.batched": ('dni.training.batched', 'dni.nn.stacked', 'dni.store.checkpoints'),
    "dni.cells": ('dni.nn.cells',),
    "dni.cross_grid": ('dni.paper.cross_grid',),
    "dni.devices": ('dni.util.validation',),
    "dni.distributed": ('dni.experiments.dask_cluster',),
    "dni.draws": ('dni.noise.draws',),
    "dni.evaluate": ('dni.evaluation.evaluate', 'dni.util.validation'),
    "dni.examples": ('dni.experiments.examples',),
    "dni.fused": ('dni.nn.fused',),
    "dni.io": ('dni.util.io',),
    "dni.models": ('dni.nn.models',),
    "dni.noise_spec": ('dni.noise.kinds', 'dni.errors', 'dni.noise.spec', 'dni.noise.session'),
    "dni.notebook_run": ('dni.experiments.notebook_run',),
    "dni.notebook_sweep": ('dni.experiments.papermill_jobs',),
    "dni.probes": ('dni.nn.probes',),
    "dni.progress": ('dni.util.progress',),
    "dni.recurrence": ('dni.nn.recurrence',),
    "dni.report": ('dni.paper.report',),
    "dni.reproduction": ('dni.paper.reproduction',),
    "dni.results": ('dni.store.results',),
    "dni.sweep": ('dni.experiments.sweep', 'dni.util.validation', 'dni.store.checkpoints', 'dni.experiments.config', 'dni.experiments.reuse', 'dni.experiments.result_file'),
    "dni.train": ('dni.training.train', 'dni.store.checkpoints'),
}
"""Old module → the modules that now hold its names (the first is where most of it went). ``dni.noisify`` and
``dni.robustness`` are the public functions now (:mod:`dni`), not module aliases."""


class _MovedModule(types.ModuleType):
    def __getattr__(self, name: str):
        for target in MOVED[self.__name__]:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"{self.__name__}.{name} does not exist; its module moved to {', '.join(MOVED[self.__name__])}")


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return _MovedModule(spec.name)

    def exec_module(self, module):
        warnings.warn(f"{module.__name__} moved in dni 0.2: import from {' / '.join(MOVED[module.__name__])}",
                      DeprecationWarning, stacklevel=3)


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
