"""Integrity of the MNIST idx files: a corrupted file fails loudly instead of training to ~10 %.

* With an ``MD5SUMS`` file beside the idx files (``md5sum`` format, as in a checked-out data
  folder), each file is checked against it once; the verdict is cached (keyed by path, size and
  modification time) in dni's user cache folder, so later runs do not hash 55 MB again.
* Always, the idx headers (LeCun's format: magic number, item count, 28 × 28) must agree with the
  file size, and images and labels with each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import platformdirs

from dni.errors import DataNotFoundError

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
CHECKSUM_FILE = "MD5SUMS"


def _cache_file() -> Path:
    return Path(platformdirs.user_cache_dir("dni")) / "verified_md5.json"


def read_checksums(raw: Path) -> dict[str, str]:
    """{file name: md5 hex} from ``raw/MD5SUMS``; {} if there is none."""
    path = raw / CHECKSUM_FILE
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _key(file: Path) -> str:
    st = file.stat()
    return f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _load_verdicts() -> dict:
    try:
        return json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_verdicts(verdicts: dict) -> None:
    from dni.util.io import atomic_path

    try:
        _cache_file().parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(_cache_file()) as tmp:
            tmp.write_text(json.dumps(verdicts), encoding="utf-8")
    except OSError:  # a read-only home: verify again next time
        pass


def md5_of(file: Path) -> str:
    digest = hashlib.md5()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksums(raw: Path, names, hint: str) -> None:
    """Check ``names`` in ``raw`` against ``raw/MD5SUMS`` (if present), once per file version."""
    sums = read_checksums(raw)
    if not sums:
        return
    verdicts = _load_verdicts()
    changed = False
    for name in names:
        if name not in sums:
            continue
        file = raw / name
        key = _key(file)
        if verdicts.get(key) == sums[name]:
            continue
        actual = md5_of(file)
        if actual != sums[name]:
            raise DataNotFoundError(f"{file} is corrupt: its MD5 is {actual}, {raw / CHECKSUM_FILE} says {sums[name]}; "
                                    f"replace it — {hint}")
        verdicts[key] = sums[name]
        changed = True
    if changed:
        _save_verdicts(verdicts)


def check_idx_headers(image_file: Path, label_file: Path, hint: str) -> int:
    """The number of digits, after checking both idx headers against each other and the file sizes."""
    def header(file: Path, words: int) -> tuple[int, ...]:
        with open(file, "rb") as fh:
            raw = fh.read(4 * words)
        if len(raw) < 4 * words:
            raise DataNotFoundError(f"{file} is corrupt: too short for an idx header ({len(raw)} bytes); replace it — {hint}")
        return struct.unpack(f">{words}I", raw)

    magic, n_images, rows, cols = header(image_file, 4)
    if magic != IMAGES_MAGIC or (rows, cols) != (28, 28):
        raise DataNotFoundError(f"{image_file} is not an MNIST image file (idx magic {magic:#010x}, {rows}×{cols}); replace it — {hint}")
    if os.path.getsize(image_file) != 16 + n_images * 28 * 28:
        raise DataNotFoundError(f"{image_file} is corrupt: its header says {n_images} images but it holds "
                                f"{os.path.getsize(image_file)} bytes; replace it — {hint}")
    magic, n_labels = header(label_file, 2)
    if magic != LABELS_MAGIC:
        raise DataNotFoundError(f"{label_file} is not an MNIST label file (idx magic {magic:#010x}); replace it — {hint}")
    if os.path.getsize(label_file) != 8 + n_labels:
        raise DataNotFoundError(f"{label_file} is corrupt: its header says {n_labels} labels but it holds "
                                f"{os.path.getsize(label_file)} bytes; replace it — {hint}")
    if n_images != n_labels:
        raise DataNotFoundError(f"{image_file.parent}: {n_images} images but {n_labels} labels; replace the files — {hint}")
    return n_images
