"""Registered metric `density_coverage` (Naeem et al. 2020), with prdc's strict `<`.

density = (1 / kM) * sum over generated g of #{real r : ||g - r|| < radius(r)}
coverage = fraction of real r whose nearest generated sample lies within radius(r)
"""

from __future__ import annotations

import numpy as np

from evaluator.metrics.context import FeatureContext
from evaluator.metrics.registry import MetricValues


def density_coverage(context: FeatureContext) -> MetricValues:
    cross = context.cross
    density = float(cross.fake_in_real_lt.sum()) / (context.k * len(context.fake))
    coverage = float(np.mean(cross.real_nearest_fake_sq < context.real_radii_sq))
    return {"density": density, "coverage": coverage}
