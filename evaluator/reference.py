"""Reference statistics of the MNIST test split, per feature space, cached on disk.

The cache key covers the feature network's hash, the data checksum, the neighbourhood sizes
and this module's format version. The key is part of the file name *and* stored inside with a
checksum of the arrays: a stale or damaged file is recomputed, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluator import mnist
from evaluator.metrics import knn
from evaluator.metrics.class_coverage import class_histogram
from evaluator.metrics.context import FeatureReference
from evaluator.paths import resolve_path

FORMAT_VERSION = 1
CACHE_ENV_VAR = "EVALUATOR_CACHE"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "mnist-gan-eval"
REFERENCE_SPLIT = "test"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return resolve_path(cache_dir, CACHE_ENV_VAR, DEFAULT_CACHE_DIR)


@dataclass
class Reference:
    """The reference side of every metric in one feature space."""

    space: str
    stats: FeatureReference
    class_histogram: np.ndarray | None
    key: dict
    cache_path: Path
    cache_status: str  # "hit", "computed", or "recomputed: <why>"

    @property
    def id(self) -> str:
        return f"mnist-{REFERENCE_SPLIT}"


def _array_checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _key(extractor, data_sha256: str, ks: tuple[int, ...]) -> dict:
    return {
        "format": FORMAT_VERSION,
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "split": REFERENCE_SPLIT,
        "data_sha256": data_sha256,
        "ks": list(ks),
    }


def _cache_path(cache_dir: Path, key: dict) -> Path:
    key_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"reference-{key['extractor']}-{key_hash}.npz"


def _load(path: Path, key: dict) -> tuple[dict[str, np.ndarray] | None, str]:
    """Arrays from a cache file if it matches `key` and its checksum; else (None, why)."""
    if not path.exists():
        return None, "no cache file"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as err:  # noqa: BLE001 - any unreadable cache is simply recomputed
        return None, f"unreadable cache ({err.__class__.__name__})"
    if meta.get("key") != key:
        return None, "cache key mismatch"
    if meta.get("checksum") != _array_checksum(arrays):
        return None, "cache checksum mismatch"
    return arrays, "hit"


def _save(path: Path, key: dict, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"key": key, "checksum": _array_checksum(arrays)})
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, meta=np.array(meta), **arrays)
        os.replace(tmp, path)  # atomic: readers never see a half-written cache
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_reference(extractor, data_root=None, cache_dir=None, ks: tuple[int, ...] = (3,),
                   backend_name: str = "auto", device: str = "cpu") -> Reference:
    """Reference statistics for `extractor`: from the cache when valid, else computed and cached."""
    data_sha256 = mnist.split_checksum(REFERENCE_SPLIT, data_root)
    key = _key(extractor, data_sha256, tuple(sorted(set(ks))))
    path = _cache_path(resolve_cache_dir(cache_dir), key)
    arrays, why = _load(path, key)
    status = "hit"
    if arrays is None:
        arrays = _compute(extractor, data_root, key["ks"], backend_name, device)
        _save(path, key, arrays)
        status = "computed" if why == "no cache file" else f"recomputed: {why}"
    stats = FeatureReference(
        features=arrays["features"], mean=arrays["mean"], covariance=arrays["covariance"],
        covariance_sqrt=arrays["covariance_sqrt"],
        radii_sq={k: arrays[f"radii_sq_k{k}"] for k in key["ks"]},
    )
    histogram = arrays.get("class_histogram")
    return Reference(extractor.name, stats, histogram, key, path, status)


def _compute(extractor, data_root, ks: list[int], backend_name: str, device: str) -> dict:
    images = mnist.load_split(REFERENCE_SPLIT, data_root).images
    extracted = extractor(images)
    features = np.ascontiguousarray(extracted.features, dtype=np.float32)
    backend = knn.make_backend(backend_name, features.shape[1], device)
    stats = FeatureReference.from_features(features, tuple(ks), backend)
    arrays = {"features": stats.features, "mean": stats.mean, "covariance": stats.covariance,
              "covariance_sqrt": stats.covariance_sqrt}
    arrays.update({f"radii_sq_k{k}": stats.radii_sq[k] for k in ks})
    if getattr(extracted, "probabilities", None) is not None:
        arrays["class_histogram"] = class_histogram(extracted.probabilities)
    return arrays
