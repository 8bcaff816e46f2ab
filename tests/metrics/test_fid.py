"""FID against pytorch-fid's reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance

from evaluator.metrics.fid import frechet_distance, gaussian_fit, psd_sqrt


@pytest.mark.parametrize("dim", [2, 16, 64, 256])
def test_matches_pytorch_fid(rng, dim):
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    real = rng.standard_normal((3000, dim)) @ mixing
    fake = rng.standard_normal((3000, dim)) * 1.2 + 0.3
    mu1, sigma1 = gaussian_fit(fake)
    mu2, sigma2 = gaussian_fit(real)
    expected = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(mu1, sigma1, mu2, sigma2, psd_sqrt(sigma2)) == pytest.approx(expected, rel=1e-6)


def test_gaussian_fit_matches_numpy(rng):
    features = rng.standard_normal((500, 8)).astype(np.float32)
    mean, covariance = gaussian_fit(features)
    np.testing.assert_allclose(mean, features.astype(np.float64).mean(0))
    np.testing.assert_allclose(covariance, np.cov(features.astype(np.float64), rowvar=False))


def test_identical_statistics_give_zero_never_negative(rng):
    features = rng.standard_normal((200, 300))  # fewer rows than dims: a singular covariance
    mu, sigma = gaussian_fit(features)
    value = frechet_distance(mu, sigma, mu, sigma)
    assert 0.0 <= value < 1e-8


def test_is_symmetric_and_grows_with_mean_shift(rng):
    a = rng.standard_normal((2000, 10))
    stats_a = gaussian_fit(a)
    shifts = [frechet_distance(*stats_a, *gaussian_fit(a + s)) for s in (0.1, 0.5, 1.0)]
    assert shifts == sorted(shifts)
    assert shifts[-1] == pytest.approx(10.0, rel=1e-6)  # ||mu diff||^2 = 10 * 1.0^2
    b = rng.standard_normal((2000, 10)) * 2
    assert frechet_distance(*stats_a, *gaussian_fit(b)) == pytest.approx(
        frechet_distance(*gaussian_fit(b), *stats_a), rel=1e-9)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
