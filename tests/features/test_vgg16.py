"""The `vgg16` feature space (fc2, as Kynkäänniemi et al. and the course's platform): the code path
with a small random network everywhere, parity with torchvision's VGG-16 where its weights are."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evaluator.errors import WeightsError
from evaluator.features import FEATURE_EXTRACTORS, vgg16


def tiny_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(64, 32), nn.ReLU())


def test_preprocessing_is_torchvisions_imagenet_input(test_digits):
    batch = vgg16.preprocess(torch.from_numpy(test_digits[:2].copy()))
    assert batch.shape == (2, 3, 224, 224)
    gray = [batch[:, c] * std + mean for c, (mean, std) in enumerate(zip(vgg16.IMAGENET_MEAN, vgg16.IMAGENET_STD))]
    torch.testing.assert_close(gray[0], gray[1])  # three equal planes before normalisation
    torch.testing.assert_close(gray[0], gray[2])
    black = vgg16.preprocess(torch.zeros(1, 28, 28, dtype=torch.uint8))
    for channel, (mean, std) in enumerate(zip(vgg16.IMAGENET_MEAN, vgg16.IMAGENET_STD)):
        torch.testing.assert_close(black[0, channel], torch.full((224, 224), -mean / std))


def test_the_code_path_with_a_small_random_network(test_digits):
    extractor = vgg16.VGG16FeatureExtractor(network=tiny_network(), dim=32, batch_size=7)
    features = extractor(test_digits[:20]).features
    assert features.shape == (20, 32) and features.dtype == np.float32 and (features >= 0).all()
    again = vgg16.VGG16FeatureExtractor(network=tiny_network(), dim=32, batch_size=20)(test_digits[:20]).features
    np.testing.assert_allclose(features, again, atol=1e-5)
    assert extractor.id.startswith("vgg16-fc2-")


def test_precision_and_recall_in_the_vgg16_space(monkeypatch, mnist_root, tmp_path, test_digits):
    from evaluator.pipeline import EvaluationOptions, score_images

    monkeypatch.setitem(FEATURE_EXTRACTORS, "vgg16", lambda device="cpu": vgg16.VGG16FeatureExtractor(
        network=tiny_network(), dim=32))
    options = EvaluationOptions(expected_count=100, data_root=str(mnist_root), cache_dir=str(tmp_path),
                                feature_spaces=("vgg16",), metrics=("precision_recall",), reference_limit=100)
    result = score_images(test_digits[:100], options)
    assert 0.9 <= result["metrics"]["vgg16.precision"] <= 1.0 and "vgg16.recall" in result["metrics"]


def test_missing_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="IMAGENET1K_V1"):
        vgg16.VGG16FeatureExtractor()


def test_the_network_stops_at_fc2_after_its_relu():
    network = vgg16.fc2_network()  # random weights: the structure only
    assert isinstance(network[-1], nn.ReLU) and network[-2].out_features == vgg16.FEATURE_DIM
    with torch.inference_mode():
        assert network(torch.zeros(1, 3, 224, 224)).shape == (1, vgg16.FEATURE_DIM)


@pytest.mark.skipif(not vgg16.weights_path().is_file(), reason="torchvision's VGG-16 weights are not in the torch "
                                                               "hub cache here")
def test_parity_with_torchvisions_vgg16(test_digits):
    from torchvision.models import vgg16 as torchvision_vgg16

    reference = torchvision_vgg16(weights=None)
    reference.load_state_dict(torch.load(vgg16.weights_path(), map_location="cpu", weights_only=True))
    reference.eval()
    captured = {}
    reference.classifier[4].register_forward_hook(lambda module, args, output: captured.setdefault("fc2", output))
    batch = vgg16.preprocess(torch.from_numpy(test_digits[:4].copy()))
    with torch.inference_mode():
        reference(batch)
    ours = vgg16.VGG16FeatureExtractor()(test_digits[:4]).features
    np.testing.assert_allclose(ours, captured["fc2"].numpy(), atol=1e-4)
