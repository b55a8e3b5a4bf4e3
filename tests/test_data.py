import pytest
import torch
from conftest import needs_full_mnist

from dni.data import image_rows, load_images, load_sequences
from dni.data.mnist import load_mnist_images
from dni.data.subset import TEST_SIZE, TRAIN_SIZE
from dni.errors import DataNotFoundError, InvalidArgumentError


def test_subset_rows_are_real_digits_in_unit_range():
    train = load_sequences("subset", "train")
    test = load_sequences("subset", "test")
    assert train.x.shape == (TRAIN_SIZE, 28, 28) and test.x.shape == (TEST_SIZE, 28, 28)
    assert train.x.dtype == torch.float32 and 0 <= train.x.min() and train.x.max() == 1.0
    counts = torch.bincount(train.y, minlength=10)
    assert counts.min() > 0.07 * TRAIN_SIZE  # every digit class is present in bulk


@needs_full_mnist
def test_subset_is_cut_unchanged_from_the_official_files():
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        full_images, full_labels = load_mnist_images(split)
        sub_images, sub_labels = load_images("subset", split)
        assert torch.equal(sub_images, full_images[:size])
        assert torch.equal(sub_labels, full_labels[:size])


@needs_full_mnist
def test_full_mnist_has_the_official_sizes():
    images, labels = load_mnist_images("test")
    assert images.shape == (10_000, 28, 28) and labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_rows_scale_to_unit_interval():
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    assert torch.allclose(image_rows(images), torch.tensor([[[0.0, 1.0], [0.2, 0.4]]]))


def test_missing_full_mnist_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DNI_DATA_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"put train-images-idx3-ubyte.* in .*MNIST/raw .*DNI_DATA_DIR"):
        load_mnist_images("train")


def test_corrupt_full_mnist_is_reported(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")
    monkeypatch.setenv("DNI_DATA_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=r"(cannot read|corrupt).*MNIST/raw"):
        load_mnist_images("test")


def test_unknown_data_source_lists_choices():
    with pytest.raises(InvalidArgumentError, match="choose one of: subset, mnist"):
        load_images("cifar", "train")


def test_corrupt_subset_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    monkeypatch.setattr("dni.data.subset.subset_path", lambda: bad)
    with pytest.raises(DataNotFoundError, match="missing or corrupt"):
        load_images("subset", "train")
