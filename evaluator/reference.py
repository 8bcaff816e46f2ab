"""Reference statistics of the MNIST test split, per feature space, cached on disk.

The cache key covers the feature network's hash, the data checksum, the neighbourhood sizes
and this module's format version. The key is part of the file name *and* stored inside with a
checksum of the arrays: a stale or damaged file is recomputed, never silently used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluator import mnist
from evaluator.cache import cache_path, load_arrays, resolve_cache_dir, save_arrays
from evaluator.metrics import knn
from evaluator.metrics.class_coverage import class_histogram
from evaluator.metrics.context import FeatureReference

FORMAT_VERSION = 1
REFERENCE_SPLIT = "test"


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
        limit = self.key.get("limit")
        return f"mnist-{REFERENCE_SPLIT}" + (f"-first{limit}" if limit else "")


def _key(extractor, data_sha256: str, ks: tuple[int, ...], limit: int | None) -> dict:
    key = {
        "limit": limit,
        "format": FORMAT_VERSION,
        "extractor": extractor.name,
        "weights_sha256": extractor.weights_sha256,
        "split": REFERENCE_SPLIT,
        "data_sha256": data_sha256,
        "ks": list(ks),
    }
    preprocessing = getattr(extractor, "preprocessing", None)
    if preprocessing is not None:  # a changed input pipeline changes every feature: a new cache
        key["preprocessing"] = preprocessing
    return key


def load_reference(extractor, data_root=None, cache_dir=None, ks: tuple[int, ...] = (3,),
                   backend_name: str = "auto", device: str = "cpu",
                   limit: int | None = None, progress=None) -> Reference:
    """Reference statistics for `extractor`: from the cache when valid, else computed and cached.
    `progress(n)` is told of every n reference images featurised (only on a cache miss)."""
    data_sha256 = mnist.split_checksum(REFERENCE_SPLIT, data_root)
    key = _key(extractor, data_sha256, tuple(sorted(set(ks))), limit)
    path = cache_path(resolve_cache_dir(cache_dir), f"reference-{extractor.name}", key)
    arrays, why = load_arrays(path, key)
    status = "hit"
    if arrays is None:
        arrays = _compute(extractor, data_root, key["ks"], backend_name, device, limit, progress)
        save_arrays(path, key, arrays)
        status = "computed" if why == "no cache file" else f"recomputed: {why}"
    stats = FeatureReference(
        features=arrays["features"], mean=arrays["mean"], covariance=arrays["covariance"],
        covariance_sqrt=arrays["covariance_sqrt"],
        radii_sq={k: arrays[f"radii_sq_k{k}"] for k in key["ks"]},
    )
    histogram = arrays.get("class_histogram")
    return Reference(extractor.name, stats, histogram, key, path, status)


def _compute(extractor, data_root, ks: list[int], backend_name: str, device: str,
             limit: int | None, progress=None) -> dict:
    images = mnist.load_split(REFERENCE_SPLIT, data_root).images[:limit]
    extracted = extractor(images, progress=progress)
    features = np.ascontiguousarray(extracted.features, dtype=np.float32)
    backend = knn.make_backend(backend_name, features.shape[1], device)
    stats = FeatureReference.from_features(features, tuple(ks), backend)
    arrays = {"features": stats.features, "mean": stats.mean, "covariance": stats.covariance,
              "covariance_sqrt": stats.covariance_sqrt}
    arrays.update({f"radii_sq_k{k}": stats.radii_sq[k] for k in ks})
    if getattr(extracted, "probabilities", None) is not None:
        arrays["class_histogram"] = class_histogram(extracted.probabilities)
    return arrays
