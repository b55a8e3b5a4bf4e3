"""Which torch devices this machine has, and a check of a ``--device`` before any work."""

from __future__ import annotations

import torch

from .errors import InvalidArgumentError


def available_devices() -> list[str]:
    """The devices torch can use here: ``cpu``, ``cuda:0`` … , ``mps``."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def validate_device(device) -> str:
    """``device`` as given if torch can run on it here, else :class:`InvalidArgumentError` listing what can."""
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
