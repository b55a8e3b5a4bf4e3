"""Data sets as sequences: MNIST image rows (B, 28, 28) and pen strokes (B, 50, 2).

``data`` names where digits come from: ``"subset"`` — the real MNIST subset embedded in the
package (:mod:`dni.data.subset`); ``"mnist"`` — full MNIST via torchvision (:mod:`dni.data.mnist`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidArgumentError
from .mnist import load_mnist_images
from .subset import load_subset_images

DATA_SOURCES = ("subset", "mnist")


@dataclass
class SequenceData:
    """x (N, T, I) float32 sequences, y (N,) int64 labels; ``images`` (N, 28, 28) uint8 kept for viewing."""

    x: torch.Tensor
    y: torch.Tensor
    images: torch.Tensor

    def __len__(self):
        return len(self.y)

    def take(self, index) -> "SequenceData":
        return SequenceData(self.x[index], self.y[index], self.images[index])


def load_images(data: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) and labels (N,) of ``split`` ("train"/"test") from ``data``."""
    if data not in DATA_SOURCES:
        raise InvalidArgumentError(f"unknown data {data!r}; choose one of: {', '.join(DATA_SOURCES)}")
    if split not in ("train", "test"):
        raise InvalidArgumentError(f"unknown split {split!r}; choose 'train' or 'test'")
    return load_subset_images(split) if data == "subset" else load_mnist_images(split)


def image_rows(images: torch.Tensor) -> torch.Tensor:
    """Image rows as a sequence (paper §III-A): uint8 (N, 28, 28) → float (N, T=28, I=28) in [0, 1]."""
    return images.float().div_(255.0)


def load_sequences(data: str, split: str, kind: str = "rows") -> SequenceData:
    """Digits of ``split`` as the sequences a preset reads (``kind`` = ``Preset.data``)."""
    images, labels = load_images(data, split)
    if kind == "rows":
        return SequenceData(image_rows(images), labels, images)
    if kind == "strokes":
        raise InvalidArgumentError("pen-stroke sequences are not implemented yet (see the pen-stroke issue)")
    raise InvalidArgumentError(f"unknown sequence kind {kind!r}; choose 'rows' or 'strokes'")
