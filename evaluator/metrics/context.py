"""What a metric sees: generated features against a cached reference, with shared work cached."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from evaluator.metrics import knn
from evaluator.metrics.fid import gaussian_fit, psd_sqrt


@dataclass
class FeatureReference:
    """Reference statistics in one feature space (see evaluator.reference)."""

    features: np.ndarray  # float32 (M, d)
    mean: np.ndarray  # float64 (d,)
    covariance: np.ndarray  # float64 (d, d)
    covariance_sqrt: np.ndarray  # float64 (d, d)
    radii_sq: dict[int, np.ndarray] = field(default_factory=dict)  # k -> float64 (M,)

    @classmethod
    def from_features(cls, features: np.ndarray, ks: tuple[int, ...] = (3,),
                      backend: knn.KnnBackend | None = None) -> "FeatureReference":
        """Compute every statistic of a reference feature set."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        backend = backend or knn.make_backend("auto", features.shape[1])
        mean, covariance = gaussian_fit(features)
        radii = {k: knn.kth_neighbour_radii_sq(features, k, backend) for k in ks}
        return cls(features, mean, covariance, psd_sqrt(covariance), radii)


@dataclass
class FeatureContext:
    """Generated features vs. a reference in one feature space; intermediates computed once."""

    space: str
    fake: np.ndarray
    reference: FeatureReference
    k: int = 3
    backend: knn.KnnBackend = field(default_factory=knn.KDTreeBackend)

    @property
    def real(self) -> np.ndarray:
        return self.reference.features

    @cached_property
    def fake_gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        return gaussian_fit(self.fake)

    @cached_property
    def real_radii_sq(self) -> np.ndarray:
        cached = self.reference.radii_sq.get(self.k)
        return cached if cached is not None else knn.kth_neighbour_radii_sq(self.real, self.k, self.backend)

    @cached_property
    def fake_radii_sq(self) -> np.ndarray:
        return knn.kth_neighbour_radii_sq(self.fake, self.k, self.backend)

    @cached_property
    def cross(self) -> knn.CrossStatistics:
        """Ball counts both ways and real-to-nearest-fake distances (exact)."""
        return self.backend.cross(self.fake, self.real, self.fake_radii_sq, self.real_radii_sq)


@dataclass
class SampleContext:
    """The validated images and what the MNIST classifier says about them."""

    images: np.ndarray  # uint8 (N, 28, 28)
    probabilities: np.ndarray  # float32 (N, 10), from the mnist classifier
    reference_class_histogram: np.ndarray  # float64 (10,)
    data_root: Path | None = None
    cache_dir: Path | None = None
    device: str = "cpu"
    features: np.ndarray | None = None  # float32 (N, 64): the classifier's penultimate features
    reference_features: np.ndarray | None = None  # the same for the reference digits
    reference_labels: np.ndarray | None = None  # their true digits
