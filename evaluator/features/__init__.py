"""Feature extractors by name. Each maps uint8 images (N, 28, 28) to features (N, d)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Extracted(Protocol):
    features: np.ndarray
    probabilities: np.ndarray | None


class FeatureExtractor(Protocol):
    name: str
    dim: int
    weights_sha256: str

    @property
    def id(self) -> str: ...

    def __call__(self, images: np.ndarray, progress: Callable[[int], None] | None = None) -> Any: ...


def _mnist(device: str = "cpu") -> FeatureExtractor:
    from evaluator.features.mnist_cnn import MnistFeatureExtractor

    return MnistFeatureExtractor(device=device)


def _inception(device: str = "cpu") -> FeatureExtractor:
    from evaluator.features.inception import InceptionFeatureExtractor

    return InceptionFeatureExtractor(device=device)


def _vgg16(device: str = "cpu") -> FeatureExtractor:
    from evaluator.features.vgg16 import VGG16FeatureExtractor

    return VGG16FeatureExtractor(device=device)


FEATURE_EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {"mnist": _mnist, "inception": _inception,
                                                                 "vgg16": _vgg16}


def make_extractor(name: str, device: str = "cpu") -> FeatureExtractor:
    if name not in FEATURE_EXTRACTORS:
        raise KeyError(f"unknown feature extractor {name!r}; available: {sorted(FEATURE_EXTRACTORS)}")
    return FEATURE_EXTRACTORS[name](device=device)
