"""Reference statistics: cached, keyed, and never used when stale or damaged."""

from __future__ import annotations

import numpy as np

from evaluator.features import make_extractor
from evaluator.reference import load_reference


def test_computed_then_hit(mnist_root, tmp_path):
    extractor = make_extractor("mnist")
    first = load_reference(extractor, mnist_root, tmp_path)
    assert first.cache_status == "computed" and first.cache_path.exists()
    second = load_reference(extractor, mnist_root, tmp_path)
    assert second.cache_status == "hit"
    np.testing.assert_array_equal(first.stats.covariance, second.stats.covariance)
    assert first.stats.features.shape == (10000, extractor.dim)
    assert first.class_histogram.sum() == 1.0


def test_stale_key_is_recomputed(mnist_root, tmp_path):
    extractor = make_extractor("mnist")
    original = load_reference(extractor, mnist_root, tmp_path)
    extractor.weights_sha256 = "0" * 64  # as if the network changed
    changed = load_reference(extractor, mnist_root, tmp_path)
    assert changed.cache_status == "computed" and changed.cache_path != original.cache_path


def test_damaged_or_tampered_cache_is_recomputed(mnist_root, tmp_path):
    extractor = make_extractor("mnist")
    reference = load_reference(extractor, mnist_root, tmp_path)
    with np.load(reference.cache_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["mean"] = arrays["mean"] + 1.0  # silently wrong statistics
    np.savez(reference.cache_path, **arrays)
    again = load_reference(extractor, mnist_root, tmp_path)
    assert again.cache_status == "recomputed: cache checksum mismatch"
    np.testing.assert_array_equal(again.stats.mean, reference.stats.mean)
    reference.cache_path.write_bytes(b"not a zip")
    assert load_reference(extractor, mnist_root, tmp_path).cache_status.startswith("recomputed: unreadable")


def test_progress_counts_reference_images_only_on_a_miss(mnist_root, tmp_path):
    extractor = make_extractor("mnist")
    seen: list[int] = []
    load_reference(extractor, mnist_root, tmp_path, limit=300, progress=seen.append)
    assert sum(seen) == 300
    seen.clear()
    assert load_reference(extractor, mnist_root, tmp_path, limit=300, progress=seen.append).cache_status == "hit"
    assert seen == []
