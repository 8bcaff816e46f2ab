"""Bootstrap intervals: the cover lists found in the k-NN pass, and the replicates they give."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics import knn, uncertainty
from evaluator.metrics.context import FeatureContext, FeatureReference
from evaluator.metrics.fid import frechet_distance, gaussian_fit


def direct_lists(real: np.ndarray, fake: np.ndarray, radii_sq: np.ndarray, of_fake: bool,
                 strict: bool) -> list[set[int]]:
    """Per real: every fake covering it, from float64 distances to every fake (no search)."""
    d = ((real[:, None, :].astype(np.float64) - fake[None, :, :].astype(np.float64)) ** 2).sum(-1)
    bound = radii_sq[None, :] if of_fake else radii_sq[:, None]
    inside = d < bound if strict else d <= bound
    return [set(np.flatnonzero(row).tolist()) for row in inside]


def context(real: np.ndarray, fake: np.ndarray, backend: str) -> FeatureContext:
    made = knn.make_backend(backend, real.shape[1])
    return FeatureContext("test", fake, FeatureReference.from_features(real, (3,), made), 3, made)


def check_lists(lists: np.ndarray, truth: list[set[int]], n_fake: int) -> None:
    for row, expected in zip(lists, truth):
        listed = set(row[row < n_fake].tolist())
        if len(expected) <= knn.COVER_LIST_LENGTH:
            assert listed == expected
        else:  # a real covered by many: any COVER_LIST_LENGTH of them, all truly covering
            assert len(listed) == knn.COVER_LIST_LENGTH and listed <= expected


@pytest.mark.parametrize("scale", [1.0, 0.15, 0.02, 4.0, 8.0])  # matched; collapsed (two degrees); spread
def test_the_pass_lists_exactly_the_samples_covering_each_reference_point(scale):
    rng = np.random.default_rng(3)
    real = rng.normal(size=(600, 12)).astype(np.float32)
    fake = (rng.normal(size=(500, 12)) * scale).astype(np.float32)
    found = context(real, fake, "brute")
    cross = found.cross
    assert cross.real_in_fake_lists is not None and cross.fake_in_real_lists is not None
    check_lists(cross.real_in_fake_lists, direct_lists(real, fake, found.fake_radii_sq, True, False), len(fake))
    check_lists(cross.fake_in_real_lists, direct_lists(real, fake, found.real_radii_sq, False, True), len(fake))


def test_a_point_exactly_on_a_ball_is_covered_for_recall_and_not_for_coverage():
    # On a line, k = 1: reals at 0, 10, 20, 30 (each radius 10); fakes at 10, 1, 2, 40, 41 (radii
    # 8, 1, 1, 1, 1). The fake at 10 lies exactly on the balls of the reals at 0 and 20: outside
    # for coverage (strict). The real at 0 lies exactly on the ball of the fake at 1: inside for
    # recall (<=).
    real = np.array([[0.0], [10.0], [20.0], [30.0]], dtype=np.float32)
    fake = np.array([[10.0], [1.0], [2.0], [40.0], [41.0]], dtype=np.float32)
    made = knn.make_backend("brute", 1)
    found = FeatureContext("line", fake, FeatureReference.from_features(real, (1,), made), 1, made)
    cross = found.cross

    def listed(lists: np.ndarray) -> list[set[int]]:
        return [set(row[row < len(fake)].tolist()) for row in lists]

    assert listed(cross.fake_in_real_lists) == [{1, 2}, {0, 1, 2}, set(), set()]
    assert listed(cross.real_in_fake_lists) == [{1}, {0}, set(), set()]


def test_both_backends_give_the_same_replicates():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(400, 8)).astype(np.float32)
    fake = (rng.normal(size=(300, 8)) * 1.2 + 0.1).astype(np.float32)
    brute = uncertainty.bootstrap(context(real, fake, "brute"), "t", 40)
    tree = uncertainty.bootstrap(context(real, fake, "kdtree"), "t", 40)
    for name in brute:
        np.testing.assert_allclose(brute[name]["replicates"], tree[name]["replicates"], rtol=1e-6)


def test_intervals_bracket_the_estimate_and_shrink_with_more_samples():
    rng = np.random.default_rng(9)
    real = rng.normal(size=(1500, 8)).astype(np.float32)
    widths = []
    for count in (200, 1500):
        fake = rng.normal(size=(count, 8)).astype(np.float32)
        found = context(real, fake, "brute")
        precision = float((found.cross.fake_in_real_le > 0).mean())
        entry = uncertainty.add_intervals(uncertainty.bootstrap(found, "t", 100),
                                          {"t.precision": precision, "t.recall": 0.5, "t.fid": 0.1,
                                           "t.density": 1.0, "t.coverage": 0.5})["t.precision"]
        low, high = entry["interval"]
        assert low <= precision <= high
        widths.append(high - low)
    assert widths[1] < widths[0]


def weighted_fid(features: np.ndarray, weights: np.ndarray, reference: FeatureReference) -> float:
    """The definition: the Gaussian of the reweighted samples, then fid.frechet_distance."""
    n = len(features)
    mean = weights @ features / n
    centred = features - mean
    covariance = (centred * weights[:, None]).T @ centred / (n - 1)
    return frechet_distance(mean, covariance, reference.mean, reference.covariance)


@pytest.mark.parametrize("dim", [6, 64, 200])  # packed second moments up to PACKED_MAX_DIM; one by one above
def test_fid_replicates_equal_the_frechet_distance_of_the_reweighted_samples(dim):
    rng = np.random.default_rng(dim)
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    real = (rng.normal(size=(1200, dim)) @ mix).astype(np.float32)
    fake = (rng.normal(size=(1000, dim)) @ (1.3 * mix) + 0.2).astype(np.float64)
    reference = FeatureReference.from_features(real, (3,), knn.make_backend("brute", dim))
    weights = np.stack([np.ones(len(fake))] + [np.bincount(rng.integers(0, len(fake), len(fake)),
                                                           minlength=len(fake)) for _ in range(5)]).astype(float)
    found = uncertainty.fid_replicates(fake, weights, reference)
    expected = [weighted_fid(fake, w, reference) for w in weights]
    np.testing.assert_allclose(found, expected, rtol=1e-9)
    mean, covariance = gaussian_fit(fake)  # all-ones weights: the point estimate itself
    assert found[0] == pytest.approx(frechet_distance(mean, covariance, reference.mean, reference.covariance),
                                     rel=1e-9)
    assert len(set(np.round(found[1:], 6))) == 5  # the replicates differ from one another
