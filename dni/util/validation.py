"""Argument checks shared by every layer: σ values and grids, repeat counts, devices.

Each check returns the value in canonical form or raises a one-line :class:`dni.errors.DniError` that says
what to fix. Torch-free at import (the command line checks its arguments before loading torch). Checks
bound to one registry stay beside it: noise specs in :mod:`dni.noise.spec`, presets and inits in
:mod:`dni.nn.presets`, draw schemes in :mod:`dni.noise.catalogue`, clusters in :mod:`dni.experiments.config`.
"""

from __future__ import annotations

import math
import numbers
import sys

from dni.errors import InvalidArgumentError, InvalidSigmaError


def validate_sigmas(values, name="sigma_val") -> list[float]:
    """A non-empty list of distinct valid σ, in the given order."""
    if isinstance(values, (int, float, str)):
        values = [values]
    sigmas = [validate_sigma(v, name) for v in values]
    if not sigmas:
        raise InvalidArgumentError(f"{name} list is empty; give at least one value, e.g. 0:1:0.1")
    if len(set(sigmas)) != len(sigmas):
        raise InvalidArgumentError(f"{name} list has duplicates: {sigmas}")
    return sigmas


def validate_repeats(repeats) -> int:
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise InvalidArgumentError(f"repeats must be an integer >= 1, got {repeats!r}")
    return int(repeats)


def available_devices() -> list[str]:
    """The devices torch can use here: ``cpu``, ``cuda:0`` … , ``mps``."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def validate_device(device) -> str:
    """``device`` as given if torch can run on it here, else :class:`InvalidArgumentError` listing what can."""
    import torch

    text = str(device).strip()
    here = ", ".join(available_devices())
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidArgumentError(f"device {text!r} is not a torch device; available here: {here}") from None
    if parsed.type == "cpu":
        return text
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgumentError(f"device {text!r}: this machine has no CUDA GPU (or torch was built without CUDA); available here: {here}")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InvalidArgumentError(f"device {text!r}: there are only {torch.cuda.device_count()} CUDA device(s); available here: {here}")
        return text
    if parsed.type == "mps" and "mps" in available_devices():
        return text
    raise InvalidArgumentError(f"device {text!r} is not available on this machine; available here: {here}")

SIGMA_DECIMALS = 6
"""σ values are rounded to this many decimals so that 0.1*3 and 0.3 name the same grid point."""


def validate_sigma(value, name: str = "sigma") -> float:
    """Return ``value`` as a float σ ≥ 0 rounded to :data:`SIGMA_DECIMALS`, or raise.

    Raises :class:`InvalidSigmaError` for strings that are not numbers, NaN, ±inf and σ < 0.
    """
    if isinstance(value, bool):
        raise InvalidSigmaError(f"{name} must be a number >= 0, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidSigmaError(f"{name} must be a number >= 0, got {value!r}") from None
    if "torch" in sys.modules and isinstance(value, sys.modules["torch"].Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise InvalidSigmaError(f"{name} must be a number >= 0, got {value!r}")
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise InvalidSigmaError(f"{name} must be a finite number >= 0, got {value}")
    if value < 0:
        raise InvalidSigmaError(f"{name} must be >= 0 (it is a standard deviation), got {value}")
    if value != 0 and round(value, SIGMA_DECIMALS) == 0:
        raise InvalidSigmaError(f"{name} {value:g} is below dni's σ precision of 1e-{SIGMA_DECIMALS} (it would be stored as 0); "
                                f"give 0 or a value >= 1e-{SIGMA_DECIMALS}")
    return round(value, SIGMA_DECIMALS)
MAX_GRID_POINTS = 10_000
"""A σ range with more points is refused: it is a typo (a step of 1e-6, say), not a sweep."""


def parse_sigmas(text: str, name: str = "sigma") -> list[float]:
    """Parse ``"0:1:0.1"`` (start:stop:step, stop included), ``"0,0.5,1"`` or ``"0.3"``."""
    text = str(text).strip()
    if not text:
        raise InvalidArgumentError(f"{name} list is empty; give values like 0,0.5,1 or a range 0:1:0.1")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise InvalidArgumentError(f"{name} range {text!r} must be start:stop:step, e.g. 0:1:0.1")
        start, stop, step = (validate_sigmas([p], name)[0] for p in parts)
        if step <= 0 or stop < start:
            raise InvalidArgumentError(f"{name} range {text!r} needs step > 0 and stop >= start")
        n = int(round((stop - start) / step))
        if start + n * step > stop + 1e-9:
            n -= 1
        if n + 1 > MAX_GRID_POINTS:
            raise InvalidArgumentError(f"{name} range {text!r} has {n + 1:,} points, more than dni's limit of {MAX_GRID_POINTS:,}; "
                                       "use a larger step")
        return validate_sigmas([start + i * step for i in range(n + 1)], name)
    return validate_sigmas([p for p in text.split(",") if p.strip()] or [""], name)


def sigma_label(sigma: float) -> str:
    """σ as it appears in file names: two decimals (``0.50``), or as many as it needs (``0.125``),
    so that two σ never share a file."""
    return f"{sigma:.2f}" if round(sigma, 2) == sigma else f"{sigma:.6f}".rstrip("0")


MAX_TRAIN_SEEDS = 32
"""Most training seeds one sweep takes (``--train-seeds``): each is a full set of trained models."""


def parse_train_seeds(text, name: str = "train_seeds") -> list[int]:
    """Training seeds from ``"0,1,2"``, ``"0:4:1"`` (start:stop:step, stop included) or a list of ints.

    Each an int ≥ 0, none twice, at most :data:`MAX_TRAIN_SEEDS`; anything else is one line that says so.
    """
    if isinstance(text, (list, tuple)):
        parts = [str(p).strip() for p in text]
    else:
        text = str(text).strip()
        if ":" in text:
            bits = text.split(":")
            if len(bits) != 3 or not all(b.strip().lstrip("-").isdigit() for b in bits):
                raise InvalidArgumentError(f"{name} range {text!r} must be start:stop:step of integers, e.g. 0:4:1")
            start, stop, step = (int(b) for b in bits)
            if step <= 0 or stop < start:
                raise InvalidArgumentError(f"{name} range {text!r} needs step > 0 and stop >= start")
            count = (stop - start) // step + 1
            if count > MAX_TRAIN_SEEDS:
                raise InvalidArgumentError(f"{name} range {text!r} has {count:,} seeds, more than dni's limit of {MAX_TRAIN_SEEDS} per sweep; "
                                           "run several sweeps")
            parts = [str(k) for k in range(start, stop + 1, step)]
        else:
            parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise InvalidArgumentError(f"{name} list is empty; give training seeds like 0,1,2 or a range 0:2:1")
    seeds = []
    for p in parts:
        if not p.lstrip("-").isdigit():
            raise InvalidArgumentError(f"{name}: {p!r} is not an integer; give training seeds like 0,1,2")
        if int(p) < 0:
            raise InvalidArgumentError(f"{name}: {p} is negative; training seeds are integers >= 0")
        seeds.append(int(p))
    if len(seeds) > MAX_TRAIN_SEEDS:
        raise InvalidArgumentError(f"{name}: {len(seeds)} seeds, more than dni's limit of {MAX_TRAIN_SEEDS} per sweep; run several sweeps")
    dup = sorted({k for k in seeds if seeds.count(k) > 1})
    if dup:
        raise InvalidArgumentError(f"{name}: seed {', '.join(map(str, dup))} given twice; give each training seed once")
    return seeds
