"""End to end on real MNIST: sensible scores, monotone degradation, a schema-valid result."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from evaluator import mnist
from evaluator.pipeline import EvaluationOptions, evaluate_samples, score_images
from evaluator.results import load_schema
from evaluator.samples import write_samples

N = 2000


@pytest.fixture(scope="module")
def options(mnist_root, cache_dir):
    return EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir))


@pytest.fixture(scope="module")
def fid_only(options):
    return EvaluationOptions(**{**vars(options), "metrics": ("fid",)})


def test_train_digits_score_well_and_the_result_is_schema_valid(train_digits, options, tmp_path):
    result = evaluate_samples(write_samples(train_digits[:N], tmp_path / "s"), options)
    jsonschema.validate(result, load_schema())
    assert result["status"] == "ok"
    metrics = result["metrics"]
    assert metrics["mnist.fid"] < 1.0
    assert metrics["mnist.precision"] > 0.7 and metrics["mnist.recall"] > 0.7
    assert metrics["class_coverage.digits_present"] == 10
    assert metrics["class_coverage.tv_distance"] < 0.05
    assert metrics["memorisation.flagged"] is True  # they *are* MNIST digits
    assert result["flags"][0]["code"] == "memorisation"
    assert result["feature_extractors"]["mnist"]["dim"] == 64
    assert set(result["timings_s"]) >= {"validate", "features.mnist", "reference.mnist", "total"}


def test_noise_scores_badly(rng, options):
    noise = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
    metrics = score_images(noise, options)["metrics"]
    assert metrics["mnist.fid"] > 100
    assert metrics["mnist.precision"] < 0.05
    assert metrics["memorisation.flagged"] is False


def test_fid_rises_monotonically_with_noise(test_digits, rng, fid_only):
    digits = test_digits[:N].astype(np.float64)
    fids = []
    for sigma in (0, 16, 32, 64, 128):
        noisy = np.clip(digits + rng.normal(0, sigma, digits.shape), 0, 255).astype(np.uint8)
        fids.append(score_images(noisy, fid_only)["metrics"]["mnist.fid"])
    assert fids == sorted(fids) and len(set(fids)) == len(fids), fids


def test_fid_rises_monotonically_with_blur(test_digits, fid_only):
    digits = test_digits[:N].astype(np.float64)
    fids = []
    for sigma in (0, 0.5, 1.0, 1.5, 2.0):
        blurred = np.stack([gaussian_filter(d, sigma) for d in digits]) if sigma else digits
        fids.append(score_images(blurred.round().astype(np.uint8), fid_only)["metrics"]["mnist.fid"])
    assert fids == sorted(fids) and len(set(fids)) == len(fids), fids


def test_invalid_folder_gives_a_result_with_the_report(tmp_path, options):
    (tmp_path / "s").mkdir()
    result = evaluate_samples(tmp_path / "s", options)
    jsonschema.validate(result, load_schema())
    assert result["status"] == "invalid_samples" and result["metrics"] == {}
    assert result["validation"]["problem_counts"] == {"missing": N}


def test_a_background_validation_gives_the_same_result_and_must_match_the_folder(train_digits, fid_only, tmp_path):
    from evaluator.samples import BackgroundValidation

    folder = write_samples(train_digits[:N], tmp_path / "s")
    direct = evaluate_samples(folder, fid_only)
    background = evaluate_samples(folder, fid_only, validation=BackgroundValidation(folder, N))
    assert background["metrics"] == direct["metrics"] and background["samples"] == direct["samples"]
    other = write_samples(train_digits[:N], tmp_path / "other")
    for wrong in (BackgroundValidation(other, N), BackgroundValidation(folder, N - 1)):
        with pytest.raises(ValueError, match="background validation"):
            evaluate_samples(folder, fid_only, validation=wrong)
        wrong.close()


def test_copies_hidden_among_a_generators_samples_get_the_data_copying_flag(test_digits, options):
    """Half of the samples eroded test digits, half the kit's: C_T stays above its flag (the kit lies
    far from the data), the gap does not, and the flag says which."""
    from scipy.ndimage import grey_erosion

    from evaluator.metrics import copying
    from tests.metrics.test_copying import kit_samples

    images = kit_samples(N)
    images[::2] = grey_erosion(test_digits[:N:2], footprint=np.ones((1, 2, 2)))
    result = score_images(images, EvaluationOptions(**{**vars(options), "metrics": ("copying",)}))
    metrics = result["metrics"]
    assert metrics["copying.ct"] > copying.FLAG_BELOW and metrics["copying.gap"] < copying.GAP_FLAG_BELOW
    [flag] = [f for f in result["flags"] if f["code"] == "data_copying"]
    assert metrics["copying.flagged"] and f"the gap {metrics['copying.gap']:+.1f}" in flag["message"]


def test_a_flag_from_the_lean_alone_says_so(options, mnist_root, monkeypatch):
    """With the lean's threshold below anything, genuine training digits are flagged by it alone,
    and the message names the lean, not C_T or the gap."""
    from evaluator.metrics import copying

    monkeypatch.setattr(copying, "LEAN_FLAG_ABOVE", -1e9)
    digits = mnist.load_split("train", str(mnist_root)).images[-N:]
    result = score_images(digits, EvaluationOptions(**{**vars(options), "metrics": ("copying",)}))
    metrics = result["metrics"]
    assert metrics["copying.ct"] > copying.FLAG_BELOW and metrics["copying.flagged"]
    [flag] = [f for f in result["flags"] if f["code"] == "data_copying"]
    assert f"the lean {metrics['copying.lean']:+.1f}" in flag["message"]


def test_a_value_a_run_cannot_define_is_left_out_of_a_valid_result(options, tmp_path):
    """64 samples fill none of the copying test's cells: no gap, and the result still meets the
    schema (whose metrics are numbers and booleans, never null)."""
    from tests.metrics.test_copying import kit_samples

    small = EvaluationOptions(**{**vars(options), "expected_count": 64, "metrics": ("copying",)})
    result = evaluate_samples(write_samples(kit_samples(64), tmp_path / "s"), small)
    jsonschema.validate(result, load_schema())
    assert "copying.ct" in result["metrics"] and "copying.gap" not in result["metrics"]
    assert result["details"]["copying.settings"]["held_out_share"]["centred"] < 0.5


def test_copies_among_a_handful_of_samples_are_flagged_without_a_gap(test_digits, options, tmp_path):
    """C_T's flag holds at any count, and its message needs no gap."""
    small = EvaluationOptions(**{**vars(options), "expected_count": 64, "metrics": ("copying",)})
    result = evaluate_samples(write_samples(test_digits[:64], tmp_path / "s"), small)
    assert "copying.gap" not in result["metrics"] and result["metrics"]["copying.flagged"]
    [flag] = [f for f in result["flags"] if f["code"] == "data_copying"]
    assert f"C_T {result['metrics']['copying.ct']:+.1f}" in flag["message"]
