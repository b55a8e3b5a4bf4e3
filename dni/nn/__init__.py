"""Noisy networks: the readable cells (the reference every fast path is tested against), the unrolled and
fused sequence paths, :func:`choose_path` (the one place that decides which of them runs), the paper's presets
(Tables I–III), stacked models for model-batched training, :func:`~dni.nn.noisify.noisify` for any torch model,
and the probes behind the state and weight figures.

``dni.nn.choose_path`` and ``dni.nn.Path`` load :mod:`dni.nn.paths` (and torch) on first use."""

_PUBLIC = {"choose_path": "dni.nn.paths", "Path": "dni.nn.paths"}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dni.nn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
