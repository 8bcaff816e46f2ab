"""The metric catalogue: checked registrations, one description per value, read by every table."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluator import metrics
from evaluator.metrics import registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_the_docs_are_the_catalogue():
    assert metrics.markdown_table() in DOCS.read_text()


def test_every_scalar_a_metric_reports_is_described(mnist_root, cache_dir, test_digits):
    from evaluator.pipeline import EvaluationOptions, score_images

    result = score_images(test_digits[:300], EvaluationOptions(expected_count=300, data_root=str(mnist_root),
                                                               cache_dir=str(cache_dir)))
    undescribed = [name for name in result["metrics"] if metrics.describe(name) is None]
    assert undescribed == []
    assert metrics.label("mnist.fid") == "MNIST FID" and metrics.label("memorisation.near_copy_fraction") == "Near-copies"


def test_directions_order_values():
    assert metrics.sort_key("mnist.fid", 1.0) < metrics.sort_key("mnist.fid", 2.0)
    assert metrics.sort_key("mnist.recall", 0.9) < metrics.sort_key("mnist.recall", 0.5)
    assert metrics.sort_key("mnist.density", 1.05) < metrics.sort_key("mnist.density", 0.8)
    assert metrics.describe("mnist.density").arrow() == "≈ 1" and metrics.describe("mnist.fid").arrow() == "↓"
    assert metrics.metric_name("inception", metrics.KEY_METRIC_FID) == "inception.fid"


@pytest.mark.parametrize("arguments,message", [
    (("fid", "features"), "registered twice"),
    (("Bad-Name", "features"), "lower-case"),
    (("extra", "pixels"), "scope"),
])
def test_registration_is_checked(arguments, message):
    value = registry.Value("some_value", "x", "lower", "{}", "x")
    with pytest.raises(ValueError, match=message):
        registry.register_metric(*arguments, lambda context: {}, "x", (value,))


def test_a_value_key_is_reported_by_one_feature_metric_only():
    clash = registry.Value("fid", "x", "lower", "{}", "x")
    with pytest.raises(ValueError, match="reported by two feature metrics"):
        registry.register_metric("another_fid", "features", lambda context: {}, "x", (clash,))
    target = registry.Value("t", "x", "target", "{}", "x")
    with pytest.raises(ValueError, match="needs a target"):
        registry.register_metric("targets", "samples", lambda context: {}, "x", (target,))
    assert "another_fid" not in metrics.METRICS and "targets" not in metrics.METRICS
