"""Registered metric `memorisation`: nearest MNIST image (train + test, 70,000) in pixel space.

Exact nearest neighbours without a 10K x 70K x 784 brute force (15 s on 2 cores): each image x
is lifted to (P(x - m), ||(I - P)(x - m)||) with P the top principal components. The lifted
distance is a lower bound of the pixel distance (Pythagoras plus the reverse triangle inequality
on the residual), so after an exact re-rank of the lifted candidates, any query whose best pixel
distance is below the next lower bound is certified; the rest fall back to full brute force.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from evaluator import mnist
from evaluator.cache import cache_path, load_arrays, resolve_cache_dir, save_arrays
from evaluator.metrics import knn
from evaluator.metrics.context import SampleContext
from evaluator.metrics.registry import MetricValues, register

# Pixel values in [0, 1]; L2 distance over 784 pixels. Below this a sample is a near-copy.
# No MNIST test digit is this close to a training digit (measured minimum 0.83, 0.1st
# percentile 1.10), so a sample this close is a copy, not a new handwriting of the digit.
NEAR_COPY_DISTANCE = 0.8
# The result is flagged when more than this fraction of samples are near-copies.
FLAG_FRACTION = 0.01
PCA_COMPONENTS = 128
# Candidates re-ranked exactly per round; queries not certified go on to the next round.
CANDIDATE_ROUNDS = (16, 256)


@dataclass
class NearestImages:
    distance: np.ndarray  # float64 (N,), L2 in [0, 1] pixel units
    index: np.ndarray  # int64 (N,), into train (0..59999) then test (60000..69999)
    certified_fraction: float  # share resolved without the brute-force fallback


class PixelIndex:
    """Exact nearest-neighbour search among a fixed set of 28x28 images."""

    def __init__(self, images: np.ndarray, components: int = PCA_COMPONENTS,
                 device: str = "cpu", precomputed: dict[str, np.ndarray] | None = None) -> None:
        self.images = np.asarray(images, dtype=np.uint8)
        self.pixels = _to_pixels(images)
        self.backend = knn.BruteForceBackend(device=device)
        if precomputed is not None:
            self.mean, self.basis, self.lifted = (precomputed[k] for k in ("mean", "basis", "lifted"))
            return
        self.mean = self.pixels.mean(axis=0, dtype=np.float64)
        # Any orthonormal basis gives a valid bound; a 10K subsample finds a tight one fast.
        sample = self.pixels[:: max(1, len(self.pixels) // 10_000)] - self.mean.astype(np.float32)
        covariance = (sample.T @ sample).astype(np.float64) / len(sample)
        _, vectors = np.linalg.eigh(covariance)
        self.basis = np.ascontiguousarray(vectors[:, ::-1][:, :components], dtype=np.float32)
        self.lifted = self._lift(self.pixels)

    def arrays(self) -> dict[str, np.ndarray]:
        """What `precomputed` takes back (the images and the PCA lift)."""
        return {"images": self.images, "mean": self.mean, "basis": self.basis, "lifted": self.lifted}

    def _lift(self, pixels: np.ndarray) -> np.ndarray:
        centred = pixels - self.mean.astype(np.float32)
        projected = centred @ self.basis
        residual_sq = (centred * centred).sum(1) - (projected * projected).sum(1)
        residual = np.sqrt(np.clip(residual_sq, 0.0, None))
        return np.hstack([projected, residual[:, None]]).astype(np.float32)

    def nearest(self, images: np.ndarray) -> NearestImages:
        queries = _to_pixels(images)
        lifted = self._lift(queries)
        best_sq = np.full(len(queries), np.inf)
        index = np.zeros(len(queries), dtype=np.int64)
        todo = np.arange(len(queries))
        tol = self.backend.rel_tol * (float((lifted**2).sum(1).max())
                                      + float((self.lifted**2).sum(1).max()))
        for fetch in CANDIDATE_ROUNDS:
            if len(todo) == 0 or fetch >= len(self.pixels):
                break
            candidates = self.backend.nearest(lifted[todo], self.lifted, fetch)
            self._keep_best(queries, todo, candidates, best_sq, index)
            # Every non-candidate has a lifted distance >= the last candidate's (up to float32
            # ranking error), and a pixel distance >= its lifted distance.
            last_bound = knn.candidate_sq_distances(lifted[todo], self.lifted, candidates[:, -1:])[:, 0]
            todo = todo[best_sq[todo] > last_bound - tol]
        certified = 1.0 - len(todo) / max(len(queries), 1)
        if len(todo):
            full = self.backend.nearest(queries[todo], self.pixels,
                                        min(len(self.pixels), 1 + knn.EXTRA_CANDIDATES))
            self._keep_best(queries, todo, full, best_sq, index)
        return NearestImages(np.sqrt(best_sq), index, certified)

    def _keep_best(self, queries: np.ndarray, rows: np.ndarray, candidates: np.ndarray,
                   best_sq: np.ndarray, index: np.ndarray) -> None:
        """Exact pixel distances to candidates; keep each row's best so far (in place)."""
        exact = knn.candidate_sq_distances(queries[rows], self.pixels, candidates)
        pick = exact.argmin(axis=1)
        found_sq = exact[np.arange(len(rows)), pick]
        better = found_sq < best_sq[rows]
        best_sq[rows[better]] = found_sq[better]
        index[rows[better]] = candidates[np.arange(len(rows)), pick][better]


def _to_pixels(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.reshape(len(images), -1), dtype=np.float32) / 255.0


INDEX_FORMAT = 1


@lru_cache(maxsize=2)
def mnist_pixel_index(data_root: str | None, device: str = "cpu",
                      cache_dir: str | None = None) -> PixelIndex:
    """Index over all 70,000 MNIST images (train then test): from the on-disk cache when its
    key (both splits' checksums, components, format) and checksum match, else built and cached."""
    key = {"format": INDEX_FORMAT, "components": PCA_COMPONENTS,
           "train": mnist.split_checksum("train", data_root), "test": mnist.split_checksum("test", data_root)}
    path = cache_path(resolve_cache_dir(cache_dir), "pixel-index", key)
    arrays, _ = load_arrays(path, key)
    if arrays is not None:
        return PixelIndex(arrays.pop("images"), device=device, precomputed=arrays)
    index = PixelIndex(mnist.all_images(data_root), device=device)
    save_arrays(path, key, index.arrays())
    return index


@register("memorisation", "samples",
          "Near-copies of MNIST digits: nearest training/test image in pixel space")
def memorisation(context: SampleContext) -> MetricValues:
    root = None if context.data_root is None else str(context.data_root)
    cache_dir = None if context.cache_dir is None else str(context.cache_dir)
    nearest = mnist_pixel_index(root, context.device, cache_dir).nearest(context.images)
    near_copy = nearest.distance < NEAR_COPY_DISTANCE
    fraction = float(near_copy.mean())
    return {
        "near_copy_fraction": fraction,
        "nn_distance_median": float(np.median(nearest.distance)),
        "nn_distance_min": float(nearest.distance.min()),
        "flagged": fraction > FLAG_FRACTION,
        "settings": {
            "near_copy_distance": NEAR_COPY_DISTANCE,
            "flag_fraction": FLAG_FRACTION,
            "certified_fraction": nearest.certified_fraction,
        },
    }
