"""The small real MNIST subset shipped inside the package (no download needed).

``mnist_subset.npz`` holds the first :data:`TRAIN_SIZE` digits of the official training file and
the first :data:`TEST_SIZE` digits of the official test file (``train-images-idx3-ubyte``,
``t10k-images-idx3-ubyte``), unchanged, as uint8. :func:`build_subset` regenerates it.
"""

from __future__ import annotations

import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from dni.errors import DataNotFoundError

TRAIN_SIZE = 6000
TEST_SIZE = 2000
SUBSET_FILE = "mnist_subset.npz"


def subset_path() -> Path:
    return Path(str(resources.files("dni.data") / SUBSET_FILE))


def load_subset_images(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded ``split`` ("train" or "test") as uint8 images (N, 28, 28) and labels (N,)."""
    path = subset_path()
    try:
        with np.load(path) as f:
            images, labels = f[f"{split}_images"], f[f"{split}_labels"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise DataNotFoundError(
            f"embedded MNIST subset {path} is missing or corrupt ({err}); reinstall dni or run "
            "`python -m dni.data.subset` with full MNIST available"
        ) from None
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def build_subset(out: Path | None = None) -> Path:
    """Cut the subset from full MNIST (see :mod:`dni.data.mnist`) and write it atomically."""
    from dni.data.mnist import load_mnist_images
    from dni.util.io import atomic_path

    arrays = {}
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        images, labels = load_mnist_images(split)
        arrays[f"{split}_images"] = images[:size].numpy()
        arrays[f"{split}_labels"] = labels[:size].numpy().astype(np.uint8)
    out = Path(out) if out else subset_path()
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return out


if __name__ == "__main__":
    print(build_subset())
