"""Noisy networks: the readable cells (the reference every fast path is tested against), the unrolled and
fused sequence paths, :func:`choose_path` (the one place that decides which of them runs), the paper's presets
(Tables I–III), stacked models for model-batched training, :func:`~dni.nn.noisify.noisify` for any torch model,
and the probes behind the state and weight figures.

``dni.nn.choose_path`` and ``dni.nn.Path`` load :mod:`dni.nn.paths` (and torch) on first use."""

from dni.util.lazy import lazy_exports

_PUBLIC = {"choose_path": "dni.nn.paths", "Path": "dni.nn.paths"}


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
