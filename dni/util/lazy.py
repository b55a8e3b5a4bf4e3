"""Names a package hands on from its modules, imported on first use (PEP 562), so that importing the package
stays light (``import dni`` and ``import dni.nn`` do not load torch)."""

from __future__ import annotations


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose names ``exports`` maps to the module that defines each."""
    import importlib
    import sys

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
