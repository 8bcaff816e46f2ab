"""Metric `precision_recall`: improved precision and recall (Kynkäänniemi et al. 2019).

A real sample's ball has the radius of its k-th nearest real neighbour (itself excluded).
Precision is the fraction of generated samples inside at least one real ball (`<=`); recall
is the fraction of real samples inside at least one generated ball.
"""

from __future__ import annotations

import numpy as np

from evaluator.metrics.context import FeatureContext
from evaluator.metrics.registry import MetricValues


def precision_recall_metric(context: FeatureContext) -> MetricValues:
    cross = context.cross
    return {"precision": float(np.mean(cross.fake_in_real_le > 0)),
            "recall": float(np.mean(cross.real_in_fake_le > 0))}
