"""Class coverage from classifier probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.metrics.class_coverage import class_coverage, class_histogram
from evaluator.metrics.context import SampleContext


def one_hot(labels, confidence=0.9):
    probabilities = np.full((len(labels), 10), (1 - confidence) / 9)
    probabilities[np.arange(len(labels)), labels] = confidence
    return probabilities


def context(labels, reference=None, confidence=0.9):
    reference = np.full(10, 0.1) if reference is None else reference
    return SampleContext(np.zeros((len(labels), 28, 28), np.uint8), one_hot(np.array(labels), confidence),
                         reference)


def test_uniform_samples_match_uniform_reference():
    values = class_coverage(context(np.arange(1000) % 10))
    assert values["tv_distance"] == pytest.approx(0.0)
    assert values["digits_present"] == 10
    assert values["mean_confidence"] == pytest.approx(0.9)


def test_mode_collapse_to_one_digit():
    values = class_coverage(context([7] * 500, confidence=0.99))
    assert values["digits_present"] == 1
    assert values["tv_distance"] == pytest.approx(0.9)
    assert values["histogram"][7] == 1.0


def test_rare_digit_below_share_threshold_is_absent():
    labels = [0] * 995 + [1] * 5  # 0.5% ones
    assert class_coverage(context(labels))["digits_present"] == 1
    assert class_histogram(one_hot(np.array(labels)))[1] == pytest.approx(0.005)


@pytest.fixture(scope="module")
def digits_context(mnist_root, test_digits, train_digits):
    """The real classifier's features and probabilities, against the test split as reference."""
    from evaluator import mnist
    from evaluator.features import make_extractor

    extractor = make_extractor("mnist")
    reference = extractor(test_digits)
    labels = mnist.load_split("test", mnist_root).labels

    def make(images):
        extracted = extractor(images)
        return SampleContext(images, extracted.probabilities, class_histogram(reference.probabilities),
                             features=extracted.features, reference_features=reference.features,
                             reference_labels=labels)

    return make


def test_unrecognisable_samples_are_kept_apart_from_missing_modes(digits_context, train_digits):
    rng = np.random.default_rng(0)
    digits = train_digits[:2000]
    real = class_coverage(digits_context(digits))
    assert real["recognisable_fraction"] > 0.98 and real["digits_present"] == 10 and real["tv_distance"] < 0.05
    noisy = np.round(np.clip(digits / 255.0 + rng.normal(0, 0.4, digits.shape), 0, 1) * 255).astype(np.uint8)
    bad = class_coverage(digits_context(noisy))
    # The classifier is confident about one digit; the samples are simply not digits.
    assert bad["mean_confidence"] > 0.9 and bad["recognisable_fraction"] < 0.01
    # Mode collapse onto ones: good digits, one mode. Recognisable, with the missing modes counted.
    ones = digits[digits_context(digits).probabilities.argmax(1) == 1][:200]
    collapsed = class_coverage(digits_context(ones))
    assert collapsed["recognisable_fraction"] > 0.95 and collapsed["digits_present"] == 1
    assert collapsed["tv_distance"] > 0.85
