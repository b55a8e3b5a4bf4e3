"""The names the noise layer offers, torch-free (the command line's help and checks need them before any
work): the paper's kind, every kind's name (:mod:`dni.noise.kinds` registers exactly these) and the
evaluation draw schemes (:mod:`dni.noise.draws`).
"""

from __future__ import annotations

from dni.errors import InvalidArgumentError

PAPER = "additive"
"""The paper's spec (label): additive Gaussian noise of σ after every product, eq. 2."""
KIND_NAMES = ("pcm", "programming", "weight_read", "dac", "additive", "output_relative", "adc")
"""Every kind of :mod:`dni.noise.kinds`, in its order of composition within a tile (that module checks it
registers exactly these)."""

SCHEMES = ("shared", "per-point")
"""Evaluation draw schemes: "shared" (this module, the default for new results) and "per-point"
(fresh ε per (σval, repeat), how the committed paper numbers were made)."""
DEFAULT = "shared"
UNRECORDED = "per-point"
"""The scheme of a result file without a ``draws`` attribute (made before issue 22)."""


def validate_draws(draws) -> str:
    """``draws`` as one of :data:`SCHEMES`, or a one-line error listing them."""
    if draws not in SCHEMES:
        raise InvalidArgumentError(f"draws must be one of {', '.join(SCHEMES)}, got {draws!r}")
    return draws
