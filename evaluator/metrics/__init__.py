"""Metric registry; importing this package registers every built-in metric, in display order."""

# isort: off
from evaluator.metrics import fid_metric  # noqa: F401 - imported for its registration
from evaluator.metrics import precision_recall  # noqa: F401
from evaluator.metrics import density_coverage  # noqa: F401
from evaluator.metrics import class_coverage  # noqa: F401
from evaluator.metrics import memorisation  # noqa: F401
# isort: on
from evaluator.metrics.registry import METRICS, Metric, register, select

__all__ = ["METRICS", "Metric", "register", "select"]
