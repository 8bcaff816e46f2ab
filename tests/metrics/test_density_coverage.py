"""Density and coverage equal the `prdc` package on the same features."""

from __future__ import annotations

import numpy as np
import pytest
from prdc import compute_prdc

from evaluator.metrics import knn
from evaluator.metrics.context import FeatureContext, FeatureReference
from evaluator.metrics.density_coverage import density_coverage


@pytest.mark.parametrize("dim,backend", [(4, "kdtree"), (4, "brute"), (64, "brute"), (64, "kdtree")])
@pytest.mark.parametrize("k", [3, 5])
def test_equals_prdc(rng, dim, backend, k):
    real = rng.standard_normal((600, dim)).astype(np.float32)
    fake = (rng.standard_normal((500, dim)) * 1.1 + 0.15).astype(np.float32)
    chosen = knn.make_backend(backend, dim)
    context = FeatureContext("t", fake, FeatureReference.from_features(real, (k,), chosen), k, chosen)
    expected = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    values = density_coverage(context)
    assert values["density"] == pytest.approx(expected["density"], abs=1e-12)
    assert values["coverage"] == pytest.approx(expected["coverage"], abs=1e-12)


def test_real_against_itself_is_near_one(rng):
    real = rng.standard_normal((800, 8)).astype(np.float32)
    backend = knn.KDTreeBackend()
    context = FeatureContext("t", real.copy(), FeatureReference.from_features(real, (3,), backend), 3, backend)
    values = density_coverage(context)
    assert values["coverage"] == 1.0
    assert values["density"] == pytest.approx(1.0, abs=0.1)
