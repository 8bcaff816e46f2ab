"""Named metrics. Each metric module registers a function that maps a context to values.

Two scopes:
- "features": computed in every feature space (mnist, inception, ...) from a FeatureContext;
  result names are prefixed with the space, e.g. `mnist.fid`.
- "samples": computed once from the images themselves (SampleContext), e.g. `memorisation.*`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Scope = Literal["features", "samples"]
MetricValues = dict[str, Any]


@dataclass(frozen=True)
class Metric:
    name: str
    scope: Scope
    compute: Callable[[Any], MetricValues]
    description: str


METRICS: dict[str, Metric] = {}


def register(name: str, scope: Scope, description: str) -> Callable:
    """Decorator: add a metric function to the registry under `name`."""

    def decorate(function: Callable[[Any], MetricValues]) -> Callable[[Any], MetricValues]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = Metric(name, scope, function, description)
        return function

    return decorate


def select(names: list[str] | None = None) -> list[Metric]:
    """Metrics by name in registry order (all when `names` is None); unknown names raise."""
    if names is None:
        return list(METRICS.values())
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; available: {sorted(METRICS)}")
    return [metric for metric in METRICS.values() if metric.name in names]
