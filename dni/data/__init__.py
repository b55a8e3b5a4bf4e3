"""Data sets as sequences: MNIST image rows (B, 28, 28) and pen strokes (B, 50, 2).

``data`` names where digits come from: ``"subset"`` — the real MNIST subset embedded in the
package (:mod:`dni.data.subset`); ``"mnist"`` — full MNIST via torchvision (:mod:`dni.data.mnist`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dni.data.mnist import load_mnist_images
from dni.data.subset import load_subset_images
from dni.errors import InvalidArgumentError

DATA_SOURCES = ("subset", "mnist")


@dataclass
class SequenceData:
    """x (N, T, I) float32 sequences, y (N,) int64 labels; ``images`` (N, 28, 28) uint8 kept for viewing.

    For pen strokes also ``lengths`` (N,) — the true number of pen points before padding or
    truncation to T — and ``strokes``, the full (L_i, 4) rows of each digit.
    """

    x: torch.Tensor
    y: torch.Tensor
    images: torch.Tensor
    lengths: torch.Tensor | None = None
    strokes: list | None = None

    def __len__(self):
        return len(self.y)

    def take(self, index) -> "SequenceData":
        idx = torch.arange(len(self))[index]
        return SequenceData(self.x[idx], self.y[idx], self.images[idx],
                            None if self.lengths is None else self.lengths[idx],
                            None if self.strokes is None else [self.strokes[i] for i in idx.tolist()])


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


def load_sequences(data: str, split: str, kind: str = "rows", progress: bool = True) -> SequenceData:
    """Digits of ``split`` as the sequences a preset reads (``kind`` = ``Preset.data``).

    "rows": (N, 28, 28) image rows (paper §III-A); "strokes": (N, 50, 2) pen-stroke moves
    (paper §III-B, :mod:`dni.data.strokes`), converted once and cached.
    """
    images, labels = load_images(data, split)
    if kind == "rows":
        return SequenceData(image_rows(images), labels, images)
    if kind == "strokes":
        from dni.data.stroke_store import load_strokes
        from dni.data.strokes import to_model_input, unpack

        rows, offsets = load_strokes(data, split, images.numpy(), progress=progress)
        sequences = unpack(rows, offsets)
        x, lengths = to_model_input(sequences)  # (N, 50, 2), (N,)
        return SequenceData(torch.from_numpy(x), labels, images, torch.from_numpy(lengths), sequences)
    raise InvalidArgumentError(f"unknown sequence kind {kind!r}; choose 'rows' or 'strokes'")
