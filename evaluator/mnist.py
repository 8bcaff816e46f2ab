"""Access to MNIST through torchvision, with the data root taken from a flag or `MNIST_ROOT`."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from evaluator.errors import DataNotFoundError
from evaluator.paths import resolve_path

ENV_VAR = "MNIST_ROOT"
DEFAULT_ROOT = Path.home() / ".cache" / "mnist-gan-eval" / "data"
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The MNIST root: the explicit argument, else `$MNIST_ROOT`, else the user cache folder."""
    return resolve_path(root, ENV_VAR, DEFAULT_ROOT)


def _missing_files(root: Path, split: str) -> list[Path]:
    raw = root / "MNIST" / "raw"
    return [raw / name for name in RAW_FILES[split] if not (raw / name).is_file()]


def _not_found_message(root: Path, missing: list[Path]) -> str:
    listed = "\n".join(f"  - {path}" for path in missing)
    return (
        f"MNIST not found under data root '{root}'. Missing:\n{listed}\n"
        "Provide it in one of these ways:\n"
        f"  * pass --data-root DIR or set {ENV_VAR}=DIR, where DIR contains MNIST/raw/ "
        "(torchvision's layout, uncompressed IDX files);\n"
        "  * on a machine with internet access, download it once with\n"
        "      python -c \"import torchvision; torchvision.datasets.MNIST('DIR', download=True)\""
    )


def require_split(split: str, root: str | os.PathLike | None = None) -> Path:
    """The resolved root, after checking the split's files exist (else a helpful error)."""
    resolved = resolve_root(root)
    missing = _missing_files(resolved, split)
    if missing:
        raise DataNotFoundError(_not_found_message(resolved, missing))
    return resolved


@dataclass(frozen=True)
class MnistSplit:
    """One MNIST split as arrays: images uint8 (N, 28, 28) and labels int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray
    sha256: str


def load_split(split: str, root: str | os.PathLike | None = None) -> MnistSplit:
    """Load 'train' or 'test' with torchvision (no download); a clear error if absent."""
    if split not in RAW_FILES:
        raise ValueError(f"split must be one of {sorted(RAW_FILES)}, not {split!r}")
    resolved = resolve_root(root).resolve()
    return _load_split_cached(split, str(resolved))


@lru_cache(maxsize=4)
def _load_split_cached(split: str, root: str) -> MnistSplit:
    raw = require_split(split, root) / "MNIST" / "raw"
    image_file, label_file = RAW_FILES[split]
    images = read_idx(raw / image_file, dims=3)
    labels = read_idx(raw / label_file, dims=1).astype(np.int64)
    if len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise DataNotFoundError(f"cannot read MNIST under {raw}: {len(images)} images of {images.shape[1:]} "
                                f"for {len(labels)} labels")
    images.flags.writeable = False
    labels.flags.writeable = False
    return MnistSplit(images=images, labels=labels, sha256=split_checksum(split, root))


def read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes (the format of LeCun's MNIST page, as torchvision's
    `read_sn3_pascalvincent_tensor` reads it): a 4-byte magic (0, 0, type 0x08, number of
    dimensions), one big-endian uint32 per dimension, then the data. Read directly, because
    importing torchvision costs 1.4 s of every evaluation's start-up."""
    data = Path(path).read_bytes()
    if len(data) < 4 + 4 * dims or data[:4] != bytes([0, 0, 0x08, dims]):
        raise DataNotFoundError(f"cannot read MNIST file {path}: not an IDX file of {dims}-d unsigned bytes")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    if len(data) != 4 + 4 * dims + int(np.prod(shape)):
        raise DataNotFoundError(f"cannot read MNIST file {path}: {len(data)} bytes for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def split_checksum(split: str, root: str | os.PathLike | None = None) -> str:
    """SHA-256 over the split's raw image and label files (the reference-cache key)."""
    raw = require_split(split, root) / "MNIST" / "raw"
    digest = hashlib.sha256()
    for name in RAW_FILES[split]:
        digest.update(name.encode())
        digest.update(file_sha256(raw / name).encode())
    return digest.hexdigest()


@lru_cache(maxsize=32)
def _file_sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime)."""
    stat = os.stat(path)
    return _file_sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


def all_images(root: str | os.PathLike | None = None) -> np.ndarray:
    """All 70,000 MNIST images (train then test), uint8 (70000, 28, 28)."""
    return np.concatenate([load_split("train", root).images, load_split("test", root).images])
