"""Metric `class_coverage`: which digits the samples show, per the MNIST classifier, with
the samples it cannot recognise kept apart.

The classifier names a digit for anything, often confidently: digits under σ 0.4 noise all become
one digit with confidence 0.993, above real digits' 0.95. So a histogram over every sample mixes
bad images with missing modes. Here a sample is *recognisable* when its classifier features lie
where real digits' do: its squared Mahalanobis distance to the nearest class mean (class-
conditional Gaussians with a shared covariance, fitted to the reference digits' features; Lee et
al. 2018) is within what 99.5% of the reference digits reach. The digit histogram, its distance to
MNIST's and the digits present are computed over the recognisable samples only, so they measure
mode coverage; `recognisable_fraction` measures the rest.
"""

from __future__ import annotations

import numpy as np

from evaluator.metrics.context import SampleContext
from evaluator.metrics.registry import MetricValues

# A digit counts as present when it gets at least this share of samples (a tenth of uniform).
PRESENT_MIN_SHARE = 0.01
RECOGNISABLE_PERCENTILE = 99.5  # of the reference digits' own distances
RIDGE = 1e-6


def class_histogram(probabilities: np.ndarray) -> np.ndarray:
    """Share of samples predicted as each digit 0..9."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return np.bincount(predicted, minlength=10).astype(np.float64) / max(len(predicted), 1)


class DigitModel:
    """Class-conditional Gaussians with a shared covariance over the classifier's features."""

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        features = np.asarray(features, dtype=np.float64)
        self.means = np.stack([features[labels == digit].mean(axis=0) for digit in range(10)])
        centred = features - self.means[labels]
        covariance = centred.T @ centred / len(features) + RIDGE * np.eye(features.shape[1])
        # Whitening by the Cholesky factor (covariance = L Lᵀ) turns each Mahalanobis distance into a
        # Euclidean one, ‖L⁻¹(x − μ)‖²: ten small matrix products instead of a three-operand einsum
        # (0.72 s → 0.01 s for 10K samples in 64-d, 2-core CPU).
        self.whitening = np.linalg.inv(np.linalg.cholesky(covariance)).T
        self.threshold = float(np.percentile(self.distance(features), RECOGNISABLE_PERCENTILE))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean."""
        whitened = np.asarray(features, dtype=np.float64) @ self.whitening
        best = np.full(len(features), np.inf)
        for mean in self.means @ self.whitening:
            offset = whitened - mean
            best = np.minimum(best, np.einsum("nd,nd->n", offset, offset))
        return best


def class_coverage(context: SampleContext) -> MetricValues:
    probabilities = np.asarray(context.probabilities)
    reference = np.asarray(context.reference_class_histogram, dtype=np.float64)
    values: MetricValues = {"mean_confidence": float(probabilities.max(axis=1).mean())}
    if context.features is not None and context.reference_features is not None:
        model = DigitModel(context.reference_features, np.asarray(context.reference_labels))
        recognisable = model.distance(context.features) <= model.threshold
        values["recognisable_fraction"] = float(recognisable.mean())
        values["settings"] = {"recognisable_percentile": RECOGNISABLE_PERCENTILE,
                              "mahalanobis_threshold": round(model.threshold, 3)}
    else:
        recognisable = np.ones(len(probabilities), dtype=bool)
    histogram = class_histogram(probabilities[recognisable]) if recognisable.any() else np.zeros(10)
    values.update({
        "tv_distance": float(0.5 * np.abs(histogram - reference).sum()),
        "digits_present": int((histogram >= PRESENT_MIN_SHARE).sum()),
        "histogram": histogram.round(6).tolist(),
        "reference_histogram": reference.round(6).tolist(),
    })
    return values
