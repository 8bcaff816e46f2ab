"""MNIST access: root resolution, helpful errors, the real data's known facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluator import mnist
from evaluator.errors import DataNotFoundError


def test_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path / "env"))
    assert mnist.resolve_root(tmp_path / "flag") == tmp_path / "flag"
    assert mnist.resolve_root() == tmp_path / "env"
    monkeypatch.delenv(mnist.ENV_VAR)
    assert mnist.resolve_root() == mnist.DEFAULT_ROOT


def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        mnist.load_split("test", tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "t10k-images-idx3-ubyte" in message
    assert "--data-root" in message and "MNIST_ROOT" in message and "download=True" in message


def test_known_facts_of_the_real_data(mnist_root):
    train = mnist.load_split("train", mnist_root)
    test = mnist.load_split("test", mnist_root)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28)
    assert train.labels[0] == 5 and test.labels[0] == 7
    assert np.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.images.mean() / 255 == pytest.approx(0.1307, abs=1e-4)
    assert mnist.all_images(mnist_root).shape == (70000, 28, 28)


def test_checksum_matches_the_shipped_sums(mnist_root):
    sums = dict(line.split()[::-1] for line in (Path(mnist_root) / "MNIST" / "SHA256SUMS").read_text().splitlines()
                if line.strip()) if (Path(mnist_root) / "MNIST" / "SHA256SUMS").exists() else {}
    raw = Path(mnist_root) / "MNIST" / "raw"
    for name in mnist.RAW_FILES["test"]:
        if f"MNIST/raw/{name}" in sums:
            assert mnist.file_sha256(raw / name) == sums[f"MNIST/raw/{name}"]
    assert len(mnist.split_checksum("test", mnist_root)) == 64


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        mnist.load_split("validation")


def test_the_idx_reader_equals_torchvision(mnist_root):
    import torchvision

    for split in ("train", "test"):
        ours = mnist.load_split(split, mnist_root)
        theirs = torchvision.datasets.MNIST(str(mnist_root), train=split == "train", download=False)
        assert np.array_equal(ours.images, theirs.data.numpy())
        assert np.array_equal(ours.labels, theirs.targets.numpy())


@pytest.mark.parametrize("damage", ["truncated", "magic", "empty", "extra"])
def test_a_damaged_idx_file_is_a_clear_error_not_garbage(tmp_path, damage):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    image_bytes = bytes([0, 0, 8, 3]) + np.array([3, 28, 28], dtype=">u4").tobytes() + images.tobytes()
    label_bytes = bytes([0, 0, 8, 1]) + np.array([3], dtype=">u4").tobytes() + bytes([1, 2, 3])
    image_bytes = {"truncated": image_bytes[:-5], "magic": bytes([0, 0, 9, 3]) + image_bytes[4:],
                   "empty": b"", "extra": image_bytes + b"\0"}[damage]
    (raw / "t10k-images-idx3-ubyte").write_bytes(image_bytes)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(label_bytes)
    with pytest.raises(DataNotFoundError, match="t10k-images-idx3-ubyte"):
        mnist.load_split("test", tmp_path)


def test_a_small_valid_idx_split_loads(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    (raw / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + np.array([2, 28, 28], dtype=">u4").tobytes()
                                                 + images.tobytes())
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + np.array([2], dtype=">u4").tobytes()
                                                 + bytes([7, 9]))
    split = mnist.load_split("test", tmp_path)
    assert np.array_equal(split.images, images) and split.labels.tolist() == [7, 9]
