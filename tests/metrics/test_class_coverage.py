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
