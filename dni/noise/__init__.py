"""Analog noise, the physics of one matrix–vector product (paper eq. 2 and the hardware kinds of DESIGN.md).

:mod:`~dni.noise.base` holds the noise models a forward pass computes with (additive Gaussian, prefetched and
per-model draws); :mod:`~dni.noise.kinds` the kinds of analog non-ideality and their registry;
:mod:`~dni.noise.spec` the spec language that names a composition of kinds; :mod:`~dni.noise.session` a spec
at work in one forward pass; :mod:`~dni.noise.draws` the evaluation draws shared across σval. Knows nothing
of models, data or files."""

_OLD_NAMES = ("dni.noise.base", "dni.noise.session", "dni.util.validation")


def __getattr__(name: str):
    """The names of the flat ``dni.noise`` module of dni ≤ 0.1, with a DeprecationWarning naming their new home."""
    import importlib
    import warnings

    for target in _OLD_NAMES:
        module = importlib.import_module(target)
        if hasattr(module, name):
            warnings.warn(f"dni.noise.{name} moved in dni 0.2: import it from {target}", DeprecationWarning, stacklevel=2)
            return getattr(module, name)
    raise AttributeError(f"module 'dni.noise' has no attribute {name!r}")
