"""Full MNIST through ``torchvision.datasets.MNIST`` (torchvision layout ``<root>/MNIST/raw``).

The root is ``$DNI_DATA_DIR`` when set (it may be read-only: nothing is written there), else
a user cache directory into which torchvision downloads the files on first use. Files already
there are checked first (:mod:`dni.data.integrity`: MD5SUMS when present, idx headers always).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import torch

from dni.data.integrity import check_idx_headers, verify_checksums
from dni.errors import DataNotFoundError

DATA_DIR_ENV = "DNI_DATA_DIR"
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}


def data_root() -> tuple[Path, bool]:
    """(root, user_given): ``$DNI_DATA_DIR`` if set, else dni's user cache directory."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser().resolve(), True
    return Path(platformdirs.user_cache_dir("dni")) / "data", False


def _where_to_put(root: Path, user_given: bool) -> str:
    files = ", ".join(f for name in RAW_FILES.values() for f in name[:2])
    hint = f"put {files} in {root / 'MNIST' / 'raw'}"
    if user_given:
        return f"{hint} (from {DATA_DIR_ENV}), or unset {DATA_DIR_ENV} to download into the user cache"
    return f"{hint}, or check the network (dni downloads MNIST there with torchvision), or set {DATA_DIR_ENV}"


def load_mnist_images(split: str, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Official MNIST ``split`` ("train": 60k, "test": 10k) as uint8 images (N, 28, 28) and labels (N,)."""
    from torchvision.datasets import MNIST

    root, user_given = data_root()
    raw = root / "MNIST" / "raw"
    image_file, label_file, expected = RAW_FILES[split]
    missing = [f for f in (image_file, label_file) if not (raw / f).is_file()]
    hint = _where_to_put(root, user_given)
    if missing and (user_given or not download):
        raise DataNotFoundError(f"MNIST {split} files missing ({', '.join(missing)}): {hint}")
    if not missing:  # (a download is checked by torchvision's own MD5s)
        verify_checksums(raw, (image_file, label_file), hint)
        check_idx_headers(raw / image_file, raw / label_file, hint)
    try:
        ds = MNIST(str(root), train=(split == "train"), download=bool(missing))
    except Exception as err:  # torchvision raises RuntimeError/ValueError/URLError/OSError variously
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataNotFoundError(f"cannot read MNIST {split} data in {raw} ({reason}): {_where_to_put(root, user_given)}") from None
    images, labels = ds.data, ds.targets
    if images.shape != (expected, 28, 28) or labels.shape != (expected,) or int(labels.max()) > 9 or int(labels.min()) < 0:
        raise DataNotFoundError(
            f"MNIST {split} data in {raw} is corrupt (images {tuple(images.shape)}, labels {tuple(labels.shape)}, "
            f"expected {expected} of 28x28): replace the files — {_where_to_put(root, user_given)}"
        )
    return images, labels
