"""Exact pixel-space nearest neighbours and the near-copy flag."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics import memorisation
from evaluator.metrics.memorisation import PixelIndex


def brute_nearest(queries: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = queries.reshape(len(queries), -1).astype(np.float64) / 255
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    dist_sq = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.sqrt(dist_sq.min(1)), dist_sq.argmin(1)


@pytest.mark.parametrize("noise", [0, 20, 120])
def test_index_is_exact(train_digits, test_digits, rng, noise, monkeypatch):
    # Few candidates and components so that every path (certified, next round, brute) runs.
    monkeypatch.setattr(memorisation, "CANDIDATE_ROUNDS", (2, 8))
    reference = train_digits[:3000]
    queries = np.clip(test_digits[:150].astype(int) + rng.normal(0, noise, (150, 28, 28)), 0, 255)
    queries = queries.astype(np.uint8)
    result = PixelIndex(reference, components=16).nearest(queries)
    expected_distance, _ = brute_nearest(queries, reference)
    np.testing.assert_allclose(result.distance, expected_distance, atol=1e-6)
    recomputed = np.sqrt(((queries.reshape(150, -1) / 255.0 - reference[result.index].reshape(150, -1) / 255.0) ** 2).sum(1))
    np.testing.assert_allclose(recomputed, expected_distance, atol=1e-6)


def test_threshold_is_below_every_real_test_to_train_distance(train_digits, test_digits):
    """The documented calibration: no genuine MNIST test digit counts as a near-copy."""
    nearest = PixelIndex(train_digits).nearest(test_digits[:2000])
    assert nearest.distance.min() > memorisation.NEAR_COPY_DISTANCE


def _context(images, mnist_root):
    from evaluator.metrics.context import SampleContext

    return SampleContext(images, np.full((len(images), 10), 0.1), np.full(10, 0.1), mnist_root)


def test_real_digits_are_flagged(train_digits, mnist_root):
    values = memorisation.memorisation(_context(train_digits[:500], mnist_root))
    assert values["flagged"] is True
    assert values["near_copy_fraction"] == 1.0 and values["nn_distance_min"] == 0.0


def test_slightly_perturbed_copies_are_still_near_copies(train_digits, mnist_root, rng):
    copies = np.clip(train_digits[:300].astype(int) + rng.integers(-4, 5, (300, 28, 28)), 0, 255)
    values = memorisation.memorisation(_context(copies.astype(np.uint8), mnist_root))
    assert values["flagged"] and values["near_copy_fraction"] == 1.0


def test_new_handwriting_is_not_flagged(test_digits, mnist_root, rng):
    """Digits that are not in MNIST (here: shifted by two pixels) are not copies."""
    shifted = np.roll(test_digits[:300], 2, axis=2)
    values = memorisation.memorisation(_context(shifted, mnist_root))
    assert not values["flagged"]
    assert values["near_copy_fraction"] <= memorisation.FLAG_FRACTION


def test_samples_from_a_trained_gan_are_not_flagged(mnist_root):
    """The kit's trained vanilla generator makes new digits, not copies."""
    import torch

    from baselines.kit import Generator
    from baselines.train import sha256_file
    from tests.conftest import REPO

    weights = REPO / "submission" / "checkpoints" / "G.pth"
    manifest = REPO / "baselines" / "vanilla" / "checkpoints" / "manifest.json"
    import json

    assert sha256_file(weights) == json.loads(manifest.read_text())["files"]["G.pth"]
    generator = Generator()
    generator.load_state_dict(torch.load(weights, weights_only=True))
    torch.manual_seed(0)
    with torch.no_grad():
        images = ((generator(torch.randn(1000, 100)) + 1) * 127.5).round().to(torch.uint8)
    values = memorisation.memorisation(_context(images.view(-1, 28, 28).numpy(), mnist_root))
    assert not values["flagged"]
    assert values["near_copy_fraction"] < memorisation.FLAG_FRACTION


def test_cached_index_gives_the_same_neighbours(mnist_root, tmp_path, test_digits):
    memorisation.mnist_pixel_index.cache_clear()
    built = memorisation.mnist_pixel_index(str(mnist_root), "cpu", str(tmp_path))
    assert len(list(tmp_path.glob("pixel-index-*.npz"))) == 1
    memorisation.mnist_pixel_index.cache_clear()
    loaded = memorisation.mnist_pixel_index(str(mnist_root), "cpu", str(tmp_path))
    assert loaded is not built
    queries = test_digits[:200]
    first, second = built.nearest(queries), loaded.nearest(queries)
    np.testing.assert_array_equal(first.distance, second.distance)
    np.testing.assert_array_equal(first.index, second.index)
    memorisation.mnist_pixel_index.cache_clear()
