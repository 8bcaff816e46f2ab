"""Both exact k-NN backends give identical results, equal to a naive reference."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics import knn
from evaluator.metrics.context import FeatureContext, FeatureReference
from evaluator.metrics.density_coverage import density_coverage
from evaluator.metrics.precision_recall import precision_recall_metric

BACKENDS = [knn.KDTreeBackend(), knn.BruteForceBackend(block=7)]  # tiny blocks: exercise seams


def naive(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Straight from the definitions, full float64 distance matrices."""
    def dist(a, b):
        return np.sqrt(((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1))

    real_real, fake_fake, fake_real = dist(real, real), dist(fake, fake), dist(fake, real)
    np.fill_diagonal(real_real, np.inf)
    np.fill_diagonal(fake_fake, np.inf)
    real_radius = np.sort(real_real, axis=1)[:, k - 1]
    fake_radius = np.sort(fake_fake, axis=1)[:, k - 1]
    return {
        "precision": float(np.mean((fake_real <= real_radius[None, :]).any(axis=1))),
        "recall": float(np.mean((fake_real.T <= fake_radius[None, :]).any(axis=1))),
        "density": float((fake_real < real_radius[None, :]).sum() / (k * len(fake))),
        "coverage": float(np.mean(fake_real.min(axis=0) < real_radius)),
    }


def ours(real, fake, k, backend) -> dict[str, float]:
    context = FeatureContext("test", fake, FeatureReference.from_features(real, (k,), backend), k, backend)
    return {**precision_recall_metric(context), **density_coverage(context)}


def datasets(rng):
    yield "gaussian-5d", rng.standard_normal((300, 5)).astype(np.float32), \
        (rng.standard_normal((250, 5)) * 1.3 + 0.2).astype(np.float32)
    yield "gaussian-40d", rng.standard_normal((200, 40)).astype(np.float32), \
        (rng.standard_normal((220, 40)) + 0.1).astype(np.float32)
    # Integer grid points: many exact ties and duplicates, where `<=` vs `<` and self-exclusion matter.
    grid_real = rng.integers(0, 4, size=(300, 3)).astype(np.float32)
    grid_fake = rng.integers(0, 5, size=(300, 3)).astype(np.float32)
    yield "ties-and-duplicates", grid_real, grid_fake


@pytest.mark.parametrize("k", [1, 3, 5])
def test_backends_identical_and_equal_naive(rng, k):
    for name, real, fake in datasets(rng):
        expected = naive(real, fake, k)
        for backend in BACKENDS:
            assert ours(real, fake, k, backend) == expected, (name, backend.name)


def test_radii_exclude_self_but_count_duplicates():
    points = np.array([[0.0], [0.0], [1.0], [3.0]], dtype=np.float32)
    for backend in BACKENDS:
        radii = knn.kth_neighbour_radii_sq(points, 1, backend)
        np.testing.assert_array_equal(radii, [0.0, 0.0, 1.0, 4.0])


def test_kth_radius_needs_enough_points():
    with pytest.raises(ValueError, match="more than k=3"):
        knn.kth_neighbour_radii_sq(np.zeros((3, 2), np.float32), 3, knn.KDTreeBackend())


def test_auto_choice_by_dimension():
    assert knn.make_backend("auto", knn.KD_TREE_MAX_DIM).name == "kdtree"
    assert knn.make_backend("auto", knn.KD_TREE_MAX_DIM + 1).name == "brute"
    assert knn.make_backend("kdtree", 2048).name == "kdtree"
    with pytest.raises(ValueError, match="unknown k-NN backend"):
        knn.make_backend("annoy", 3)


def test_brute_nearest_self_uses_symmetry_correctly(rng):
    points = rng.standard_normal((50, 6)).astype(np.float32)
    backend = knn.BruteForceBackend(block=4)  # 8-row tiles: many off-diagonal blocks
    np.testing.assert_array_equal(backend.nearest_self(points, 5),
                                  knn.KDTreeBackend().nearest(points, points, 5))


@pytest.mark.parametrize("blocks", [(7, 5), (512, 1024)])  # tiles smaller than the sets, and one tile
def test_tiled_nearest_index_is_the_nearest_point(rng, blocks):
    queries, points = rng.standard_normal((60, 8)), rng.standard_normal((45, 8))
    points[3] = queries[10]  # an exact copy: distance 0
    found = knn.nearest_index(queries, points, *blocks)
    exact = ((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(found, exact.argmin(axis=1))  # random data: no float32 near-ties
    assert found[10] == 3
    assert knn.nearest_index(queries[:0], points).shape == (0,)
