"""Registered metric `class_coverage`: which digits the samples show, per the MNIST classifier."""

from __future__ import annotations

import numpy as np

from evaluator.metrics.context import SampleContext
from evaluator.metrics.registry import MetricValues, register

# A digit counts as present when it gets at least this share of samples (a tenth of uniform).
PRESENT_MIN_SHARE = 0.01


def class_histogram(probabilities: np.ndarray) -> np.ndarray:
    """Share of samples predicted as each digit 0..9."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return np.bincount(predicted, minlength=10).astype(np.float64) / max(len(predicted), 1)


@register("class_coverage", "samples",
          "Digit histogram under the classifier, its distance to MNIST's, digits present, confidence")
def class_coverage(context: SampleContext) -> MetricValues:
    histogram = class_histogram(context.probabilities)
    reference = np.asarray(context.reference_class_histogram, dtype=np.float64)
    return {
        "tv_distance": float(0.5 * np.abs(histogram - reference).sum()),
        "digits_present": int((histogram >= PRESENT_MIN_SHARE).sum()),
        "mean_confidence": float(np.asarray(context.probabilities).max(axis=1).mean()),
        "histogram": histogram.round(6).tolist(),
        "reference_histogram": reference.round(6).tolist(),
    }
