"""Metric `fid`: Fréchet distance in the current feature space."""

from __future__ import annotations

from evaluator.metrics.context import FeatureContext
from evaluator.metrics.fid import frechet_distance
from evaluator.metrics.registry import MetricValues


def fid(context: FeatureContext) -> MetricValues:
    mean, covariance = context.fake_gaussian
    reference = context.reference
    return {"fid": frechet_distance(mean, covariance, reference.mean, reference.covariance,
                                    sqrt_sigma2=reference.covariance_sqrt)}
