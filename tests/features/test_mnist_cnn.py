"""The committed MNIST feature network: integrity, accuracy, useful features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluator.errors import WeightsError
from evaluator.features import make_extractor, mnist_cnn


@pytest.fixture(scope="module")
def extractor():
    return make_extractor("mnist")


def test_weights_match_recorded_sha256():
    assert mnist_cnn.sha256_of(mnist_cnn.WEIGHTS_PATH) == mnist_cnn.recorded_sha256()


def test_accuracy_on_test_split_is_at_least_99_3(extractor, mnist_root):
    from evaluator import mnist

    split = mnist.load_split("test", mnist_root)
    predicted = extractor(split.images).probabilities.argmax(1)
    assert (predicted == split.labels).mean() >= 0.993


def test_features_shape_and_no_dead_units(extractor, test_digits):
    out = extractor(test_digits[:3000])
    assert out.features.shape == (3000, mnist_cnn.FEATURE_DIM) and out.features.dtype == np.float32
    assert out.probabilities.shape == (3000, 10)
    np.testing.assert_allclose(out.probabilities.sum(1), 1.0, rtol=1e-5)
    assert (out.features.std(axis=0) > 1e-3).all(), "every feature dimension must vary"


def test_batching_does_not_change_features(test_digits):
    small = mnist_cnn.MnistFeatureExtractor(batch_size=7)(test_digits[:50]).features
    large = mnist_cnn.MnistFeatureExtractor(batch_size=1000)(test_digits[:50]).features
    np.testing.assert_allclose(small, large, rtol=1e-4, atol=1e-5)


def test_corrupt_or_missing_weights_are_refused(tmp_path):
    bad = tmp_path / "w.pt"
    bad.write_bytes(mnist_cnn.WEIGHTS_PATH.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WeightsError, match="SHA-256"):
        mnist_cnn.load_network(bad)
    with pytest.raises(WeightsError, match="train-mnist-features"):
        mnist_cnn.load_network(tmp_path / "absent.pt")


def test_unknown_extractor_name():
    with pytest.raises(KeyError, match="available"):
        make_extractor("vgg")


def test_folded_batch_norm_keeps_the_features_and_the_classes(test_digits):
    plain = mnist_cnn.load_network()
    folded = mnist_cnn.fold_batch_norm(plain)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules()), "the original is left as it was"
    images = mnist_cnn.normalise(torch.from_numpy(test_digits[:500].copy()))
    with torch.inference_mode():
        expected, found = plain.features(images), folded.features(images)
        np.testing.assert_allclose(found.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
        assert torch.equal(plain.head(expected).argmax(1), folded.head(found).argmax(1))
    extracted = mnist_cnn.MnistFeatureExtractor()(test_digits[:500]).features
    np.testing.assert_allclose(extracted, expected.numpy(), rtol=1e-4, atol=1e-4)
